"""Grading: the student's instant check and an instructor's grader whose verdicts a submission cannot forge.

The student's side, imported by the notebooks (``from course_utils.grading import check``):

- `registry`: the exercises (reference, cases drawn from a seed, how an answer is compared) and the statuses;
  the modules of `per_notebook/` register them, one per notebook.
- `checking`: `check`, the instant feedback in the notebook, and `answers`, what the grader asks a kernel.

The instructor's side (``python -m course_utils.grading``, `cli`):

1. `notebooks`: which exercises a notebook has, which function answers each and its points come from the
   instructor's source notebooks, never from the submission; student versions and nbgrader metadata.
2. `submission`: a copy of the submission runs sealed (`sandbox`: only its own copy writable, nothing else
   of the machine's files but the system, the environment and the package, read-only; no network; its own
   PID namespace; time and memory limits) in a fresh kernel (`kernel`), every cell, past errors, as nbgrader
   does. Before the first cell the grader's own code arms the `tripwire`.
3. The grader then asks the kernel for the outputs of the student's functions on cases drawn with a seed of
   each exercise's own, sent only with that question, as plain data (`plain_data`: numbers, arrays; no
   pickle), and `verdicts` judges them in its own process against the reference it computes itself. While
   it asks, the course's implementation of that exercise is switched off in the kernel.
4. `classroom` grades a class: a submission that calls the reference fails that case; one that names it,
   touches the grading code or reaches into the interpreter, or whose solution is close to another's, the
   course's or the model solution (`similarity`), is flagged, and a flagged pass waits at 0 points for a
   person (`review`); `reports` writes the CSV's companions (feedback pages, written answers to read).
   Rows stream into the CSV as notebooks finish; the same command resumes a stopped run.
5. `cluster` runs the notebooks on Dask (a lab's ``dask worker``s, or Slurm, PBS, ... through dask-jobqueue):
   each task is `submission.run_task` on a worker; the verdicts stay in the grader's process.
"""
from . import per_notebook  # registers every exercise (its modules import only `registry` of this package)
from .checking import NBGRADER_ENV, CheckResult, ExerciseFailed, answers, check, run_cases
from .registry import (BEGIN, CRASHED, END, FAILED, NOT_ATTEMPTED, NOT_SUBMITTED, PASSED, REJECTED, TIMED_OUT, TO_READ,
                       TO_REVIEW, Case, Exercise, ExerciseDefect, compare, draw_cases, exercise, exercises, reaches,
                       register)

__all__ = ["per_notebook", "check", "NBGRADER_ENV", "answers", "run_cases", "CheckResult", "ExerciseFailed", "exercise", "exercises", "register",
           "reaches", "compare", "draw_cases", "Case", "Exercise", "ExerciseDefect", "BEGIN", "END", "PASSED",
           "FAILED", "NOT_ATTEMPTED", "CRASHED", "TIMED_OUT", "NOT_SUBMITTED", "TO_READ", "TO_REVIEW", "REJECTED"]
