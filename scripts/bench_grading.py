"""Grading throughput: a fixed folder of submissions (4 students x notebooks 00 and 04, solved) graded
with 1 and with 2 jobs; torch's threads are divided among the jobs (2 cores: 2x1 against 1x2)."""
import os
import shutil
import tempfile
import time

from course_utils.grading import classroom, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ["00_start_here.ipynb", "04_guided_backprop.ipynb"]
STUDENTS = 4


def _folder():
    tmp = tempfile.mkdtemp(prefix="bench-grading-")
    for s in range(STUDENTS):
        os.makedirs(os.path.join(tmp, f"student{s}"))
        for name in NOTEBOOKS:
            shutil.copy(os.path.join(ROOT, "notebooks", name), os.path.join(tmp, f"student{s}", name))
    return tmp


def _grade(jobs):
    folder = _folder()
    try:
        t0 = time.perf_counter()
        # every student hands in the model solution: flagged as copies, kept (the throughput is what counts here)
        rows = classroom.grade(folder, os.path.join(ROOT, "notebooks"), None, jobs=jobs, seed=0, flagged="keep")
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(folder)
    # the solutions pass; a written answer waits for a person
    assert all(r["status"] in ("passed", registry.TO_READ) for r in rows), [r for r in rows if r["status"] != "passed"]
    n = STUDENTS * len(NOTEBOOKS)
    return seconds, f"{n / seconds * 60:.1f} notebooks/min ({n} notebooks, {jobs} job(s))"


BENCHES = [
    ("grading 8 notebooks, --jobs 1", 120, lambda: _grade(1)),
    # must beat one job; sealed kernels, the tripwire and the copy check (#24) kept it: 90 -> 87 s (1 job), 63 -> 58 s (2)
    ("grading 8 notebooks, --jobs 2", 75, lambda: _grade(2)),
]
