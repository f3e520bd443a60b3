"""The exercises: what each one asks (a reference, its cases, how an answer is compared), registered by
the modules of `course_utils.grading.per_notebook`, and the statuses a verdict can have.

Cases are drawn from a seed (`draw_cases`), so that the student's check, the kernel the grader asks and
the grader's own process all draw the same ones.
"""
from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# the statuses of a row of grades
PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
CRASHED, TIMED_OUT, NOT_SUBMITTED = "crashed", "timed out", "not submitted"
TO_READ = "to read"  # a written answer waits for a person
TO_REVIEW = "to review"  # a flagged pass: 0 points until a person accepts it (`review --accept`)
REJECTED = "rejected"  # a flagged pass a person did not accept


@dataclass
class Case:
    """One input for an exercise: a description a student can read, and the arguments."""

    description: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Exercise:
    id: str
    reference: Callable
    cases: Callable[[np.random.Generator], list]  # rng -> [Case, ...]
    compare: Callable[[Any, Any], str | None] | None = None  # (expected, got) -> None or what differs
    atol: float = 1e-5
    rtol: float = 1e-4
    # the course function(s) the reference wraps: calling one counts as calling the reference (the grader's
    # tripwire switches them off while it asks for answers; the static flags look for their names)
    source: Callable | tuple | None = None
    # (case, expected, got) -> None or what is wrong: judges what the answer *does* (an optimization loop
    # that reaches its goal), instead of comparing it with the reference's value
    behaviour: Callable[[Case, Any, Any], str | None] | None = None

    def verdict(self, case, expected, got) -> str | None:
        """None when `got` is a right answer to `case`, else what is wrong."""
        if self.behaviour is not None:
            return self.behaviour(copy.deepcopy(case), expected, got)
        return self.compare(expected, got) if self.compare else compare(expected, got, self.atol, self.rtol)

    @property
    def implementations(self) -> tuple:
        """The course's functions that answer this exercise: the sources and the reference (lambdas aside)."""
        given = self.source if isinstance(self.source, tuple) else (self.source,) if self.source else ()
        found = [f for f in (*given, self.reference) if getattr(f, "__name__", "<lambda>") != "<lambda>"]
        return tuple(dict.fromkeys(found))


_REGISTRY: dict[str, Exercise] = {}


def register(id, reference, cases, compare=None, atol=1e-5, rtol=1e-4, source=None, behaviour=None):
    """Add an exercise (the modules in course_utils/grading/per_notebook/ call this).

    cases(rng) must depend on `rng` only (never on torch's global generator): the grader draws
    the same cases in its own process and in the student's kernel and compares them.
    behaviour: judge the answer by what it does instead of by its value (`reaches`).
    """
    _REGISTRY[id] = Exercise(id, reference, cases, compare, atol, rtol, source, behaviour)


def reaches(objective, start, share=0.5, bounds=(0.0, 1.0)):
    """A behaviour check for an optimization loop: the answer must be shaped like the reference's, lie within
    `bounds`, and raise objective(case, image) (higher is better) above objective(case, start(case)) by at
    least `share` of what the reference's image gains. Any sound loop passes; one step, a wrong sign, a
    missing regularizer or a result outside the pixel range does not."""
    def behaviour(case, expected, got):
        if not torch.is_tensor(got) and not isinstance(got, np.ndarray):
            return f"result: expected an image tensor of shape {tuple(expected.shape)}, got {short(got)}"
        got = torch.as_tensor(np.asarray(got.detach().cpu() if torch.is_tensor(got) else got)).to(expected.dtype)
        if tuple(got.shape) != tuple(expected.shape):
            return f"result: expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
        if not torch.isfinite(got).all():
            return "result: the image holds NaN or infinite values"
        if bounds is not None and (float(got.min()) < bounds[0] - 1e-6 or float(got.max()) > bounds[1] + 1e-6):
            return (f"result: pixel values must stay within [{bounds[0]:g}, {bounds[1]:g}], got "
                    f"[{float(got.min()):.4g}, {float(got.max()):.4g}]")
        f0, fe, fg = (float(objective(case, t)) for t in (start(case), expected, got))
        need = f0 + share * (fe - f0)
        if not math.isfinite(fg) or fg < need:
            return (f"the objective went from {f0:.4g} (the start) to {fg:.4g}; the reference reaches {fe:.4g}, "
                    f"and at least {need:.4g} is needed")
        return None

    return behaviour


def exercises() -> dict[str, Exercise]:
    """All registered exercises, by id ("00.top_k", "01.normalize_filters", ...): the modules of
    `course_utils.grading.per_notebook`, which the package imports, register them."""
    return dict(_REGISTRY)


def short(x, limit=300):
    if torch.is_tensor(x):
        x = x.detach().cpu()
        s = f"tensor of shape {tuple(x.shape)}: {np.array2string(x.numpy(), threshold=12, precision=4)}"
    elif isinstance(x, np.ndarray):
        s = f"array of shape {x.shape}: {np.array2string(x, threshold=12, precision=4)}"
    else:
        s = repr(x)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def compare(expected, got, atol=1e-5, rtol=1e-4, where="result") -> str | None:
    """None when `got` equals `expected` (numbers and arrays within tolerance), else what differs."""
    if torch.is_tensor(expected) or isinstance(expected, np.ndarray):
        if not (torch.is_tensor(got) or isinstance(got, np.ndarray)):
            return f"{where}: expected a {type(expected).__name__}, got {type(got).__name__} ({short(got)})"
        e = torch.as_tensor(np.asarray(expected.detach().cpu() if torch.is_tensor(expected) else expected))
        g = torch.as_tensor(np.asarray(got.detach().cpu() if torch.is_tensor(got) else got))
        if tuple(e.shape) != tuple(g.shape):
            return f"{where}: expected shape {tuple(e.shape)}, got shape {tuple(g.shape)}"
        if e.dtype == torch.bool or g.dtype == torch.bool or not e.is_floating_point():
            if not torch.equal(e.to(g.dtype) if e.dtype != g.dtype else e, g):
                return f"{where}: expected {short(e)}, got {short(g)}"
            return None
        e, g = e.double(), g.double()
        if not torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            bad = ~torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
            idx = tuple(int(i) for i in bad.nonzero()[0])
            return (f"{where}: {int(bad.sum())} of {e.numel()} values differ; at index {idx} expected "
                    f"{float(e[idx]):.6g}, got {float(g[idx]):.6g} (max difference {float((g - e).abs().nan_to_num(math.inf).max()):.3g})")
        return None
    if isinstance(expected, (float, int)) and not isinstance(expected, bool):
        if isinstance(got, (torch.Tensor, np.ndarray)) and np.asarray(got.detach() if torch.is_tensor(got) else got).size == 1:
            got = float(got)
        if not isinstance(got, (float, int, np.number)) or isinstance(got, bool):
            return f"{where}: expected a number ({expected!r}), got {short(got)}"
        if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            return f"{where}: expected {expected:.6g}, got {float(got):.6g}"
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{where}: expected a {type(expected).__name__} of length {len(expected)}, got {short(got)}"
        if len(got) != len(expected):
            return f"{where}: expected length {len(expected)}, got length {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            msg = compare(e, g, atol, rtol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}, got {short(got)}"
        for k in expected:
            msg = compare(expected[k], got[k], atol, rtol, f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if expected != got:
        return f"{where}: expected {short(expected)}, got {short(got)}"
    return None


class ExerciseDefect(RuntimeError):
    """An exercise of the course that cannot judge anything (it drew no cases): a bug to report, never a pass."""


def draw_cases(ex: Exercise, seed: int) -> list:
    """The exercise's cases drawn with `seed`; an exercise that draws none raises ExerciseDefect (a check
    over zero cases would pass every answer)."""
    cases = list(ex.cases(np.random.default_rng(seed)))
    if not cases:
        raise ExerciseDefect(f"exercise {ex.id} drew no cases with seed {seed}: it cannot judge an answer "
                             f"(a defect of the course: report it)")
    return cases


def exercise(exercise_id: str) -> Exercise:
    """The registered exercise of that id; a wrong id suggests close ones."""
    known = exercises()
    if exercise_id not in known:
        close = difflib.get_close_matches(exercise_id, list(known), n=3)
        raise KeyError(f"no exercise {exercise_id!r}; close: {close}; all: {sorted(known)}")
    return known[exercise_id]
