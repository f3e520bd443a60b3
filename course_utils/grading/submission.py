"""Running one submission: a copy of it, in a fresh sealed kernel, then the kernel asked for its answers.

Nothing here decides a grade (`verdicts` does, in the grader's process): the report says what happened.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import tarfile
import tempfile
import time

from .kernel import Kernel, KernelDied
from .notebooks import cell_source, read_notebook
from .tripwire import answers_cell

COPY_LIMIT = 256 << 20  # bytes of a submission's folder copied beside its notebook (data files it reads)


def fingerprint(path) -> str:
    """The sha256 of a submitted file: what the grades CSV records it graded (a resubmission is graded again)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pack_submission(path) -> bytes:
    """The submitted notebook with the files of its folder (data it reads; not the other notebooks), as a
    gzipped tar: what a sealed run gets, on this machine or sent to a Dask worker. Links stay links (nothing
    outside the folder is read); above COPY_LIMIT, the notebook alone. The original is only read."""
    folder, name = os.path.split(os.path.abspath(path))
    members = [name]
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".ipynb_checkpoints"]
        members += [os.path.relpath(os.path.join(root, f), folder) for f in files if not f.endswith(".ipynb")]
    if sum(os.lstat(os.path.join(folder, m)).st_size for m in members) > COPY_LIMIT:
        members = [name]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for m in members:
            tar.add(os.path.join(folder, m), arcname=m, recursive=False)
    return buffer.getvalue()


def unpack_submission(data: bytes, name: str, scratch) -> str:
    """Unpack `pack_submission`'s tar into scratch/submission and return the notebook's path there. The
    extraction filter refuses a member that would land outside that folder (through a link, an absolute
    name or '..')."""
    dest = os.path.join(scratch, "submission")
    os.makedirs(dest)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="tar")
    return os.path.join(dest, name)


def run_task(task: dict) -> dict:
    """Run one submitted notebook sealed, where this function is called: the grader's threads on this
    machine, or a Dask worker (`cluster`). `task` is plain data (`classroom.make_task`): the packed
    submission (or, on a shared filesystem, its path and sha256), the exercises' ids and functions, their
    seeds, the limits and the threads. Returns `run_submission`'s report, with where it ran; no verdict."""
    t0 = time.monotonic()
    data = task.get("files")
    if data is None:
        path = task["path"]
        if not os.path.isfile(path) or fingerprint(path) != task["sha256"]:
            return {"error": f"{socket.gethostname()} does not see {path} as the grader does (--files shared needs "
                             "a filesystem every worker shares; use --files send)", "answers": {}, "worker_fault": True}
        data = pack_submission(path)
    scratch = tempfile.mkdtemp(prefix="grading-", dir=_scratch_base())
    try:
        spec = {"notebook": unpack_submission(data, task["notebook"], scratch), "exercises": task["exercises"],
                "token": "@@answers-" + secrets.token_hex(8) + "@@", "seeds": task["seeds"],
                "timeout": task["timeout"], "answer_timeout": task["answer_timeout"], "memory": task["memory"],
                "threads": task["threads"]}
        report = run_submission(spec)
    except Exception as e:  # noqa: BLE001 - a notebook the grader could not run is that row's crash, not the class's
        report = {"error": f"the notebook could not be run: {type(e).__name__}: {e}", "answers": {}}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["host"], report["seconds"] = socket.gethostname(), time.monotonic() - t0
    return report


def _scratch_base():
    """Where a run's copy of the submission goes: on a Dask worker, the worker's own folder, which Dask removes
    with the worker, and a killed worker's when the next one starts (a SIGKILL skips run_task's cleanup);
    elsewhere the temporary folder."""
    try:
        from distributed import get_worker
        return get_worker().local_directory
    except (ImportError, ValueError):  # not in a Dask task
        return None


def run_submission(spec: dict) -> dict:
    """Run a submission's cells in a fresh sealed kernel (`sandbox.kernel`: its own copy of the submission
    writable and nothing else, no network, the time and memory limits), then ask it for the answers.

    Before the first cell the grader's own code arms the tripwire (`tripwire.install`); each exercise's
    answers are asked with that exercise's seed, sent only then. Returns {"error", "timed_out", "answers",
    "sandbox"}: what happened, never a verdict.
    """
    t0 = time.monotonic()
    deadline = t0 + spec["timeout"]
    report = {"error": None, "timed_out": False, "answers": {}}
    threads = str(spec["threads"])
    env = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1"}
    nb = read_notebook(spec["notebook"])
    limit = spec["timeout"] + len(spec["exercises"]) * spec["answer_timeout"] + 60
    where, kernel = "while it started", None
    try:
        kernel = Kernel(cwd=os.path.dirname(spec["notebook"]), env=env, quiet=True, startup_timeout=min(120, limit),
                        sealed={"timeout": limit, "memory": spec["memory"]})
        with kernel as k:
            where = "before the first cell"
            ids = [e["id"] for e in spec["exercises"]]
            _, error = k.run(f"import course_utils.grading.tripwire as _t\n_t.install({ids!r})\ndel _t", deadline)
            if error:
                raise RuntimeError(f"the grader could not arm its tripwire: {error[0]}: {error[1]}")
            for index, cell in enumerate(nb["cells"]):
                if cell["cell_type"] != "code":
                    continue
                where = f"in cell {index}"
                try:
                    _, error = k.run(cell_source(cell), deadline)
                except TimeoutError:
                    report["timed_out"] = f"no end after {spec['timeout']:g} s (in cell {index})"
                    if not k.interrupt():
                        return report
                    break
                if error and not report["error"]:
                    report["error"] = f"cell {index} raised {error[0]}: {error[1]}"
            for ex in spec["exercises"]:
                where = f"while answering for {ex['id']}"
                code = answers_cell(ex["id"], ex["function"], spec["seeds"][ex["id"]], spec["token"])
                try:
                    outputs, error = k.run(code, min(time.monotonic(), deadline) + spec["answer_timeout"])
                except TimeoutError:
                    report["answers"][ex["id"]] = {"timed_out": True}
                    if not k.interrupt():
                        return report
                    continue
                text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
                line = next((s for s in text.splitlines() if s.startswith(spec["token"])), None)
                try:
                    report["answers"][ex["id"]] = json.loads(line[len(spec["token"]):]) if line else \
                        {"no_answer": f"{error[0]}: {error[1]}" if error else "no answer"}
                except ValueError:
                    report["answers"][ex["id"]] = {"no_answer": "its answer was not readable"}
    except KernelDied:
        report["error"] = (report["error"] + "; " if report["error"] else "") + f"the kernel died {where}"
    finally:
        report["sandbox"] = kernel.sandbox_result if kernel is not None else None
        report["seconds"] = time.monotonic() - t0
    return report
