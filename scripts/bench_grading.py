"""Grading throughput: a fixed folder of submissions (4 students x notebooks 00 and 04, solved) graded
with 1 and with 2 jobs, and on a Dask LocalCluster of 2 single-threaded workers (the path a lab's machines
or a university's cluster take: tasks, packed submissions, a scheduler; its start is counted);
torch's threads are divided among the notebooks run at once (2 cores: 2x1 against 1x2)."""
import os
import shutil
import tempfile
import time

from course_utils.grading import classroom, cluster, registry

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


def _grade(jobs, dask=False):
    folder = _folder()
    client = None
    try:
        t0 = time.perf_counter()
        client = cluster.connect(cluster="local", workers=jobs) if dask else None
        # every student hands in the model solution: flagged as copies, kept (the throughput is what counts here)
        rows = classroom.grade(folder, os.path.join(ROOT, "notebooks"), None, jobs=jobs, seed=0, flagged="keep",
                               client=client)
        seconds = time.perf_counter() - t0
    finally:
        if client is not None:
            cluster.close(client)
        shutil.rmtree(folder)
    # the solutions pass; a written answer waits for a person
    assert all(r["status"] in ("passed", registry.TO_READ) for r in rows), [r for r in rows if r["status"] != "passed"]
    n = STUDENTS * len(NOTEBOOKS)
    where = f"a LocalCluster of {jobs} workers" if dask else f"{jobs} job(s)"
    return seconds, f"{n / seconds * 60:.1f} notebooks/min ({n} notebooks, {where})"


BENCHES = [
    ("grading 8 notebooks, --jobs 1", 120, lambda: _grade(1)),
    # must beat one job; sealed kernels, the tripwire and the copy check (#24) kept it: 90 -> 87 s (1 job), 63 -> 58 s (2)
    ("grading 8 notebooks, --jobs 2", 75, lambda: _grade(2)),
    # the same 2 notebooks at once as --jobs 2, through Dask (#28): its start and the packing cost a few seconds
    ("grading 8 notebooks, --cluster local (2 workers)", 80, lambda: _grade(2, dask=True)),
]
