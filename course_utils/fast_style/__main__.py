"""`python -m course_utils.fast_style train ...`: train a fast style network (`training.main`)."""
from .training import main

main()
