"""Graded exercises, the student's side: the instant check in the notebook.

In a notebook the student's code sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(nbgrader's markers, in a cell that carries nbgrader's solution metadata). The next cell, a locked
nbgrader test cell, calls ``check("01.normalize_filters", normalize_filters)``, which runs the
function on several cases against the reference implementation in course_utils and says which
case fails, expected versus got, or that all pass.

This check is feedback, not a grade: it runs in the student's kernel, where anything can be
changed. The instructor's grader (`course_utils.grading.classroom`) never trusts it: it asks the kernel
for the function's outputs on fresh cases (`answers`) and judges them in its own process.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from dataclasses import dataclass
from typing import Callable

from .registry import FAILED, NOT_ATTEMPTED, PASSED, Exercise, draw_cases, exercise, short
from .tripwire import answers_cell

NBGRADER_ENV = "NBGRADER_EXECUTION"  # nbgrader sets it while it autogrades or validates


@dataclass
class CheckResult:
    exercise: str
    status: str
    message: str

    def __bool__(self):
        return self.status == PASSED

    def _ipython_display_(self):  # check() has printed the verdict already
        pass


class ExerciseFailed(AssertionError):
    """A check that failed; in Jupyter it shows as its message, without a traceback."""

    def _render_traceback_(self):  # IPython uses this instead of the traceback
        return [f"\033[91m{line}\033[0m" for line in str(self).splitlines()]


def run_cases(ex: Exercise, fn: Callable, seed: int = 0) -> CheckResult:
    """Run `fn` on the exercise's cases (drawn with `seed`) against the reference, here, in this process."""
    cases = draw_cases(ex, seed)
    for k, case in enumerate(cases, 1):
        label = f"Case {k} of {len(cases)} ({case.description})"
        try:
            expected = ex.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            ref_error = None
        except Exception as e:  # noqa: BLE001 - a case where the right answer is an error
            expected, ref_error = None, e
        try:
            got = fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except NotImplementedError:
            return CheckResult(ex.id, NOT_ATTEMPTED, "not attempted yet: the function still raises NotImplementedError.")
        except Exception as e:  # noqa: BLE001 - the student's error is reported, not raised
            if ref_error is not None and isinstance(e, type(ref_error)):
                continue
            return CheckResult(ex.id, FAILED, f"{label}: your function raised {type(e).__name__}: {e}")
        if ref_error is not None:
            return CheckResult(ex.id, FAILED, f"{label}: expected {type(ref_error).__name__} ({ref_error}), "
                                              f"but your function returned {short(got)}")
        msg = ex.verdict(case, expected, got)
        if msg:
            return CheckResult(ex.id, FAILED, f"{label}: {msg}")
    return CheckResult(ex.id, PASSED, f"passed all {len(cases)} cases.")


def check(exercise_id: str, fn: Callable, seed: int = 0) -> CheckResult:
    """Run `fn` on the exercise's cases against the reference; print and return the verdict.

    A failed check raises ExerciseFailed (shown without a traceback), so "Run all" stops at
    the first exercise that needs work. An exercise not attempted yet only prints, so the rest of
    the notebook still runs, except under nbgrader's autograder, where it raises too (nbgrader
    gives a test cell its points unless it raises).
    """
    ex = exercise(exercise_id)
    result = run_cases(ex, fn, seed)
    mark = {PASSED: "\033[32m\u2713", FAILED: "\033[31m\u2717", NOT_ATTEMPTED: "\033[33m\u270e"}[result.status]
    print(f"{mark} {exercise_id}: {result.message}\033[0m")
    if result.status == FAILED or (result.status == NOT_ATTEMPTED and os.environ.get(NBGRADER_ENV)):
        raise ExerciseFailed(f"{exercise_id} {result.status}. {result.message}")
    return result


# ---------------------------------------------------------------- answers for the grader, as plain data

def answers(exercise_id: str, fn: Callable | None, seed: int) -> dict:
    """The student's function run on the cases drawn with `seed`, as plain data: what the grader's code
    (`tripwire.ANSWERS`, the same code the grader sends a kernel) reports, here, in this process.

    Returns {"cases": [{"inputs": fingerprint, "value" or "raised" or "not_attempted"}, ...]}, or
    {"missing": True} when fn is not callable. Nothing here decides a grade: the grader judges.
    """
    token = "@@answers@@"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(answers_cell(exercise_id, "_function_", seed, token), {"_function_": fn})  # noqa: S102
    line = next(s for s in out.getvalue().splitlines() if s.startswith(token))
    return json.loads(line[len(token):])
