"""Graded exercises: instant checks for students, student versions and a grader for instructors.

In a notebook the student's code sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(nbgrader's markers). The next cell calls ``check("01.normalize_filters", normalize_filters)``,
which runs the function on several cases against the reference implementation in
course_utils and says which case fails, expected versus got, or that all pass.

Command line (also behind ``make assignments`` and ``make grade``)::

    python -m course_utils.grading assignments notebooks build/assignments
    python -m course_utils.grading grade SUBMISSIONS [--out grades.csv] [--timeout 600]

SUBMISSIONS holds one folder per student with that student's notebooks in it.
"""
from __future__ import annotations

import argparse
import copy
import csv
import importlib
import json
import math
import os
import pkgutil
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
RESULTS_ENV = "COURSE_GRADING_RESULTS"  # the grader sets it: checks then record and never raise
PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
CRASHED, TIMED_OUT = "crashed", "timed out"


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


_REGISTRY: dict[str, Exercise] = {}


def register(id, reference, cases, compare=None, atol=1e-5, rtol=1e-4):
    """Add an exercise (the modules in course_utils/exercises/ call this)."""
    _REGISTRY[id] = Exercise(id, reference, cases, compare, atol, rtol)


def exercises() -> dict[str, Exercise]:
    """All registered exercises, by id ("00.top_k", "01.normalize_filters", ...)."""
    from . import exercises as package

    for mod in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{mod.name}")
    return dict(_REGISTRY)


def _short(x, limit=300):
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
            return f"{where}: expected a {type(expected).__name__}, got {type(got).__name__} ({_short(got)})"
        e = torch.as_tensor(np.asarray(expected.detach().cpu() if torch.is_tensor(expected) else expected))
        g = torch.as_tensor(np.asarray(got.detach().cpu() if torch.is_tensor(got) else got))
        if tuple(e.shape) != tuple(g.shape):
            return f"{where}: expected shape {tuple(e.shape)}, got shape {tuple(g.shape)}"
        if e.dtype == torch.bool or g.dtype == torch.bool or not e.is_floating_point():
            if not torch.equal(e.to(g.dtype) if e.dtype != g.dtype else e, g):
                return f"{where}: expected {_short(e)}, got {_short(g)}"
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
            return f"{where}: expected a number ({expected!r}), got {_short(got)}"
        if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            return f"{where}: expected {expected:.6g}, got {float(got):.6g}"
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{where}: expected a {type(expected).__name__} of length {len(expected)}, got {_short(got)}"
        if len(got) != len(expected):
            return f"{where}: expected length {len(expected)}, got length {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            msg = compare(e, g, atol, rtol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}, got {_short(got)}"
        for k in expected:
            msg = compare(expected[k], got[k], atol, rtol, f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if expected != got:
        return f"{where}: expected {_short(expected)}, got {_short(got)}"
    return None


def _run_cases(ex: Exercise, fn: Callable, seed: int) -> CheckResult:
    cases = ex.cases(np.random.default_rng(seed))
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
                                              f"but your function returned {_short(got)}")
        msg = ex.compare(expected, got) if ex.compare else compare(expected, got, ex.atol, ex.rtol)
        if msg:
            return CheckResult(ex.id, FAILED, f"{label}: {msg}")
    return CheckResult(ex.id, PASSED, f"passed all {len(cases)} cases.")


def check(exercise_id: str, fn: Callable, seed: int = 0) -> CheckResult:
    """Run `fn` on the exercise's cases against the reference; print and return the verdict.

    A failed check raises ExerciseFailed (shown without a traceback), so "Run all" stops at
    the first exercise that needs work; under the grader it is recorded instead.
    """
    known = exercises()
    if exercise_id not in known:
        import difflib

        close = difflib.get_close_matches(exercise_id, list(known), n=3)
        raise KeyError(f"no exercise {exercise_id!r}; close: {close}; all: {sorted(known)}")
    result = _run_cases(known[exercise_id], fn, seed)
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(result.__dict__) + "\n")
    mark = {PASSED: "\033[32m\u2713", FAILED: "\033[31m\u2717", NOT_ATTEMPTED: "\033[33m\u270e"}[result.status]
    print(f"{mark} {exercise_id}: {result.message}\033[0m")
    if result.status == FAILED and not path:
        raise ExerciseFailed(f"{exercise_id} failed. {result.message}")
    return result


# ---------------------------------------------------------------- student versions

_HINT = "# YOUR CODE HERE (see the text above; the check below tells you when it is right)"


def strip_solutions(source: str) -> str:
    """Replace every BEGIN/END SOLUTION region by a hint and `raise NotImplementedError`.

    Lines in the region that start with `# HINT` are kept for the student.
    """
    out, inside, indent, hints = [], False, "", []
    for line in source.splitlines(keepends=False):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            inside, indent, hints = True, line[: len(line) - len(line.lstrip())], []
            continue
        if stripped.startswith(END):
            if not inside:
                raise ValueError(f"'{END}' without '{BEGIN}'")
            out += hints + [indent + _HINT, indent + "raise NotImplementedError()"]
            inside = False
            continue
        if inside:
            if stripped.startswith("# HINT"):
                hints.append(indent + stripped)
            continue
        out.append(line)
    if inside:
        raise ValueError(f"'{BEGIN}' without '{END}'")
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def student_version(nb: dict) -> dict:
    """A copy of a notebook (as JSON dict) with solutions removed and outputs cleared."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if BEGIN in src:
            cell["source"] = strip_solutions(src)
        cell["outputs"], cell["execution_count"] = [], None
    return nb


def make_assignments(src_dir, out_dir) -> list[str]:
    """Write the student version of every notebook in src_dir to out_dir; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name in sorted(os.listdir(src_dir)):
        if not name.endswith(".ipynb"):
            continue
        with open(os.path.join(src_dir, name)) as f:
            nb = json.load(f)
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            json.dump(student_version(nb), f, indent=1, ensure_ascii=False)
            f.write("\n")
        written.append(path)
    return written


# ---------------------------------------------------------------- grading

_CHECK_CALL = re.compile(r"""check\(\s*["']([\w.\-]+)["']""")


def exercises_in(nb: dict) -> list[str]:
    """The exercise ids a notebook checks, in order."""
    ids = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            ids += [i for i in _CHECK_CALL.findall(src) if i not in ids]
    return ids


def _execute(path, results_path, timeout):
    """Run one notebook to the end (in this process); exit 1 on an error in any cell."""
    from .runner import NotebookError, execute_file

    try:
        execute_file(path, timeout=timeout, env={RESULTS_ENV: results_path, "MPLBACKEND": "Agg"})
    except NotebookError as e:
        print(f"{e.ename}: {e.evalue} (cell {e.cell})", file=sys.stderr)
        sys.exit(1)


def grade_notebook(path, timeout=600) -> tuple[str, list[CheckResult]]:
    """Execute one submitted notebook under a time limit; (notebook status, one result per exercise)."""
    with open(path) as f:
        expected_ids = exercises_in(json.load(f))
    with tempfile.TemporaryDirectory() as tmp:
        results_path = os.path.join(tmp, "results.jsonl")
        open(results_path, "w").close()
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.grading", "_execute", path, results_path,
                                 str(timeout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
            status = "ok" if proc.returncode == 0 else CRASHED
            detail = (err.strip().splitlines() or ["(no message)"])[-1] if proc.returncode else ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the kernel too
            proc.communicate()
            status, detail = TIMED_OUT, f"no result after {timeout} s"
        with open(results_path) as f:
            recorded = {}
            for line in f:
                r = CheckResult(**json.loads(line))
                recorded[r.exercise] = r
    results = []
    for ex in expected_ids:
        if ex in recorded:
            results.append(recorded[ex])
        else:
            results.append(CheckResult(ex, status if status != "ok" else NOT_ATTEMPTED,
                                       detail or "the check was never run"))
    return (status if status == "ok" else f"{status}: {detail}"), results


def grade(submissions_dir, out_csv=None, timeout=600) -> list[dict]:
    """Grade SUBMISSIONS_DIR/<student>/<notebook>.ipynb; write a CSV and print a table."""
    rows = []
    students = sorted(d for d in os.listdir(submissions_dir) if os.path.isdir(os.path.join(submissions_dir, d)))
    if not students:
        raise SystemExit(f"{submissions_dir} holds no student folders (expected SUBMISSIONS/<student>/<notebook>.ipynb)")
    for student in students:
        folder = os.path.join(submissions_dir, student)
        for name in sorted(n for n in os.listdir(folder) if n.endswith(".ipynb")):
            t0 = time.time()
            status, results = grade_notebook(os.path.join(folder, name), timeout)
            print(f"graded {student}/{name} in {time.time() - t0:.0f} s: {status}", file=sys.stderr)
            for r in results:
                rows.append({"student": student, "notebook": name, "exercise": r.exercise, "status": r.status,
                             "score": 1 if r.status == PASSED else 0, "message": r.message})
    if out_csv:
        os.makedirs(os.path.dirname(os.path.abspath(out_csv)), exist_ok=True)
        with open(out_csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["student", "notebook", "exercise", "status", "score", "message"])
            w.writeheader()
            w.writerows(rows)
    print(format_table(rows))
    return rows


def format_table(rows) -> str:
    """The grades as a fixed-width table with a total per student."""
    cols = ["student", "notebook", "exercise", "status", "score"]
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    line = lambda r: "  ".join(str(r[c]).ljust(widths[c]) for c in cols)  # noqa: E731
    out = [line({c: c for c in cols}), "  ".join("-" * widths[c] for c in cols)] + [line(r) for r in rows]
    totals: dict[str, list[int]] = {}
    for r in rows:
        t = totals.setdefault(r["student"], [0, 0])
        t[0] += r["score"]
        t[1] += 1
    out += [""] + [f"{s}: {a}/{b}" for s, (a, b) in totals.items()]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_utils.grading", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assignments", help="write student versions (solutions removed)")
    a.add_argument("src", nargs="?", default="notebooks")
    a.add_argument("out", nargs="?", default="build/assignments")
    g = sub.add_parser("grade", help="execute and grade SUBMISSIONS/<student>/<notebook>.ipynb")
    g.add_argument("submissions")
    g.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    g.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook (default 600)")
    e = sub.add_parser("_execute")  # internal: one notebook, in a child process
    e.add_argument("path")
    e.add_argument("results")
    e.add_argument("timeout", type=float)
    args = p.parse_args(argv)
    if args.cmd == "assignments":
        for path in make_assignments(args.src, args.out):
            print(path)
    elif args.cmd == "grade":
        grade(args.submissions, args.out, args.timeout)
    else:
        _execute(args.path, args.results, args.timeout)


if __name__ == "__main__":
    main()
