"""`python -m course_utils.grading ...`: the grader's command line (`cli`)."""
from .cli import main

main()
