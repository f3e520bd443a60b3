"""Running one submission: a copy of it, in a fresh sealed kernel, then the kernel asked for its answers.

Nothing here decides a grade (`verdicts` does, in the grader's process): the report says what happened.
"""
from __future__ import annotations

import json
import os
import shutil
import time

from .kernel import Kernel, KernelDied
from .notebooks import cell_source, read_notebook
from .tripwire import answers_cell

COPY_LIMIT = 256 << 20  # bytes of a submission's folder copied beside its notebook (data files it reads)


def copy_submission(path, scratch) -> str:
    """Copy the submitted notebook's folder into `scratch` (links stay links: nothing outside the folder is
    read; above COPY_LIMIT, the notebook alone) and return the copy's path. The original is only read."""
    folder = os.path.dirname(os.path.abspath(path))
    size = sum(os.lstat(os.path.join(root, f)).st_size for root, _, files in os.walk(folder) for f in files)
    dest = os.path.join(scratch, "submission")
    if size <= COPY_LIMIT:
        shutil.copytree(folder, dest, symlinks=True, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    else:
        os.makedirs(dest)
        shutil.copyfile(path, os.path.join(dest, os.path.basename(path)))
    return os.path.join(dest, os.path.basename(path))


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
