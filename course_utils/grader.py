"""The instructor's side of grading: student versions, nbgrader metadata, and a grader whose verdicts
cannot be forged from inside a submission.

How a notebook is graded (`grade`):

1. Which exercises a notebook has, which function answers each and its points come from the
   instructor's source notebooks (`--source`), never from the submission: deleting a check cell
   changes nothing.
2. The submission runs in a fresh kernel inside the sandbox (`course_utils.sandbox`: time and
   memory limits, no network, its own PID namespace), every cell, past errors, as nbgrader does.
3. The grader then asks the kernel for the outputs of the student's functions on cases drawn with a
   seed chosen now (`grading.answers`), as plain data (numbers, arrays; no pickle), and judges them
   in its own process against the reference it computes itself. Nothing the kernel prints, writes
   or patches is a verdict; cases that differ from the grader's own are reported as tampering.
4. A submission that uses the reference implementation, or touches the grading code, is flagged
   in the table for the instructor to review.
5. Written questions (a markdown answer cell marked "written question `<id>`", the model answer in its
   solution region) are not scored by a machine: their rows say "to read", and written_answers.html,
   beside the CSV, lists each question with its model answer and every student's answer.

Command line (also behind ``make assignments`` and ``make grade``)::

    python -m course_utils.grader assignments notebooks build/assignments
    python -m course_utils.grader grade SUBMISSIONS --source notebooks --out build/grades.csv --jobs 2
    python -m course_utils.grader metadata notebooks/*.ipynb     # add nbgrader's cell metadata

SUBMISSIONS holds one folder per student with that student's notebooks in it (any depth, so
nbgrader's ``submitted/<student>/<assignment>/`` works as it is).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import copy
import csv
import hashlib
import html
import json
import os
import re
import secrets
import sys
import time

import numpy as np

from . import sandbox
from .grading import BEGIN, CRASHED, END, FAILED, NOT_ATTEMPTED, PASSED, TIMED_OUT, exercise
from .plain_data import fingerprint, from_plain, to_plain

NOT_SUBMITTED = "not submitted"
FIELDS = ["student", "notebook", "exercise", "status", "score", "points", "flags", "message"]


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


# ---------------------------------------------------------------- nbgrader metadata

_CHECK = re.compile(r"""(?<![\w.])check\(\s*["']([\w.\-]+)["']\s*,\s*([A-Za-z_]\w*)""")
# A written question's answer cell: a markdown cell with this marker and a BEGIN/END SOLUTION region holding
# the model answer (the student sees nbgrader's "YOUR ANSWER HERE" in its place).
_WRITTEN = re.compile(r"written question `([\w.\-]+)`")
ANSWER_STUB = "YOUR ANSWER HERE"
TO_READ = "to read"  # a written answer waits for a person


def _grade_id(exercise_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", exercise_id)


def nbgrader_metadata(nb: dict, points: int = 1) -> dict:
    """A copy of a source notebook whose solution cells and check cells carry nbgrader's metadata.

    A cell with a BEGIN/END SOLUTION region becomes a solution cell; a cell that calls
    `check("<id>", fn)` becomes a locked, autograded test cell worth `points` (or what it has).
    Grade ids are stable: the exercise id of the check that follows ("00_top_k", "00_top_k_check").
    """
    nb = copy.deepcopy(nb)
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and BEGIN in _source(cell):
            written = _WRITTEN.findall(_source(cell))
            if not written:
                raise ValueError(f"markdown cell {i} has a solution region but no 'written question `<id>`' marker")
            meta = cell.setdefault("metadata", {})
            old = meta.get("nbgrader", {})
            meta["nbgrader"] = {"grade": True, "grade_id": _grade_id(written[0]), "locked": False,
                                "points": old.get("points", points), "schema_version": 3, "solution": True,
                                "task": False}
            continue
        if cell["cell_type"] != "code":
            continue
        src = _source(cell)
        meta = cell.setdefault("metadata", {})
        checks = _CHECK.findall(src)
        if BEGIN in src:
            following = next((_CHECK.findall(_source(c)) for c in cells[i + 1:]
                              if c["cell_type"] == "code" and _CHECK.findall(_source(c))), None)
            if not following:
                raise ValueError(f"cell {i} has a solution region but no check(...) cell follows it")
            meta["nbgrader"] = {"grade": False, "grade_id": _grade_id(following[0][0]), "locked": False,
                                "schema_version": 3, "solution": True, "task": False}
        elif checks:
            old = meta.get("nbgrader", {})
            meta["nbgrader"] = {"grade": True, "grade_id": _grade_id(checks[0][0]) + "_check", "locked": True,
                                "points": old.get("points", points), "schema_version": 3, "solution": False,
                                "task": False}
    return nb


def graded_exercises(nb: dict) -> list[dict]:
    """[{"id", "function", "points"}] of a source notebook, in order, from its check cells."""
    out, seen = [], set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for ex_id, fn in _CHECK.findall(_source(cell)):
            if ex_id not in seen:
                seen.add(ex_id)
                points = cell.get("metadata", {}).get("nbgrader", {}).get("points", 1)
                out.append({"id": ex_id, "function": fn, "points": points})
    return out


def written_questions(nb: dict) -> list[dict]:
    """[{"id", "points", "question", "model_answer"}] of a source notebook's written questions, in order.
    The question is the markdown cell before the answer cell."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        src = _source(cell)
        if cell["cell_type"] != "markdown" or BEGIN not in src or not _WRITTEN.findall(src):
            continue
        before = nb["cells"][i - 1] if i else None
        question = _source(before) if before is not None and before["cell_type"] == "markdown" else ""
        model = src[src.index(BEGIN) + len(BEGIN):src.index(END)].strip() if END in src else ""
        out.append({"id": _WRITTEN.findall(src)[0], "points": cell.get("metadata", {}).get("nbgrader", {}).get("points", 1),
                    "question": question.strip(), "model_answer": model})
    return out


def written_answer(nb: dict, question_id: str) -> str | None:
    """The text of a submission's answer to a written question (its marker line removed); None when the
    answer cell is gone; "" when it holds only the stub."""
    for cell in nb.get("cells", []):
        src = _source(cell)
        if cell.get("cell_type") == "markdown" and question_id in _WRITTEN.findall(src):
            lines = [ln for ln in src.splitlines() if not _WRITTEN.search(ln)]
            text = "\n".join(lines).strip()
            return "" if text.replace(ANSWER_STUB, "").strip() == "" else text
    return None


# ---------------------------------------------------------------- student versions

HINT = "# YOUR CODE HERE (see the text above; the check below tells you when it is right)"


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
            out += hints + [indent + HINT, indent + "raise NotImplementedError()"]
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
        src = _source(cell)
        if cell["cell_type"] == "markdown" and BEGIN in src:
            cell["source"] = strip_answer(src)
        if cell["cell_type"] != "code":
            continue
        if BEGIN in src:
            cell["source"] = strip_solutions(src)
        cell["outputs"], cell["execution_count"] = [], None
    return nb


def strip_answer(source: str) -> str:
    """A written answer's cell with its model answer replaced by the stub, as nbgrader does."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip().startswith(BEGIN):
            out.append(ANSWER_STUB)
            inside = True
        elif line.strip().startswith(END):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _read(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write(path, nb):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")


def make_assignments(src_dir, out_dir) -> list[str]:
    """Write the student version of every notebook in src_dir to out_dir; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name in sorted(os.listdir(src_dir)):
        if name.endswith(".ipynb"):
            path = os.path.join(out_dir, name)
            _write(path, student_version(_read(os.path.join(src_dir, name))))
            written.append(path)
    return written


# ---------------------------------------------------------------- running a submission (in the sandbox)

def _worker(spec: dict) -> dict:
    """Run the submission's cells, then ask its kernel for the answers; the sandboxed child does this."""
    from .runner import Kernel, KernelDied

    try:  # orphans of the kernel come back to this process, which outlives them (Linux)
        import ctypes

        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    t0 = time.monotonic()
    deadline = t0 + spec["timeout"]
    report = {"error": None, "timed_out": False, "answers": {}}
    threads = str(spec["threads"])
    env = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1"}
    nb = _read(spec["notebook"])
    with Kernel(cwd=spec["cwd"], env=env, transport="ipc", quiet=True, startup_timeout=min(120, spec["timeout"])) as k:
        for index, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            try:
                _, error = k.run(_source(cell), deadline)
            except TimeoutError:
                report["timed_out"] = f"no end after {spec['timeout']:g} s (in cell {index})"
                if not k.interrupt():
                    return report
                break
            except KernelDied:
                report["error"] = f"the kernel died in cell {index}"
                return report
            if error and not report["error"]:
                report["error"] = f"cell {index} raised {error[0]}: {error[1]}"
        for ex in spec["exercises"]:
            code = (f"import course_utils.grading as _grading_\n"
                    f"_grading_.print_answers({ex['id']!r}, globals().get({ex['function']!r}), {spec['seed']}, "
                    f"{spec['token']!r})")
            limit = min(time.monotonic() + spec["answer_timeout"], deadline + spec["answer_timeout"])
            try:
                outputs, error = k.run(code, limit)
            except KernelDied:
                report["error"] = (report["error"] or "") + f"; the kernel died while answering for {ex['id']}"
                return report
            except TimeoutError:
                report["answers"][ex["id"]] = {"timed_out": True}
                if not k.interrupt():
                    return report
                continue
            text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
            line = next((s for s in text.splitlines() if s.startswith(spec["token"])), None)
            report["answers"][ex["id"]] = (json.loads(line[len(spec["token"]):]) if line
                                           else {"no_answer": f"{error[0]}: {error[1]}" if error else "no answer"})
    report["seconds"] = time.monotonic() - t0
    return report


# ---------------------------------------------------------------- verdicts (in the grader's process)

def _reference(ex_id: str, seed: int):
    """[(case, inputs fingerprint, "value" or "raised", plain-decoded value or exception class)] per case."""
    ex = exercise(ex_id)
    out = []
    for case in ex.cases(np.random.default_rng(seed)):
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        inputs = fingerprint((args, kwargs))
        try:
            out.append((case, inputs, "value", from_plain(to_plain(ex.reference(*args, **kwargs)))))
        except Exception as e:  # noqa: BLE001 - a case where the right answer is an error
            out.append((case, inputs, "raised", type(e)))
    return out


def judge(ex_id: str, seed: int, answer: dict) -> tuple[str, str, list[str]]:
    """(status, message, flags) for the kernel's answer to one exercise, judged against the reference."""
    ex = exercise(ex_id)
    flags = ["calls the reference implementation"] if answer.get("calls_reference") else []
    if answer.get("missing"):
        return NOT_ATTEMPTED, "the notebook defines no such function", flags
    if answer.get("timed_out"):
        return TIMED_OUT, "the function did not return in time", flags
    if "no_answer" in answer:
        return FAILED, f"the kernel gave no answer ({answer['no_answer']})", flags + ["no answer from the kernel"]
    expected = _reference(ex_id, seed)
    got = answer.get("cases", [])
    for k, (case, inputs, kind, value) in enumerate(expected, 1):
        label = f"Case {k} of {len(expected)} ({case.description})"
        if k > len(got):
            return FAILED, f"{label}: no answer", flags + ["incomplete answer from the kernel"]
        g = got[k - 1]
        if g.get("not_attempted"):
            return NOT_ATTEMPTED, "not attempted yet: the function still raises NotImplementedError.", flags
        if g.get("inputs") != inputs:
            return FAILED, f"{label}: the kernel ran the function on other inputs than the grader drew", \
                flags + ["cases changed inside the kernel (course_utils was modified?)"]
        if "raised" in g:
            if kind == "raised" and value.__name__ in g["raised"]:
                continue
            return FAILED, f"{label}: your function raised {g['raised'][0]}: {g.get('message', '')}", flags
        if kind == "raised":
            return FAILED, f"{label}: expected {value.__name__}, but your function returned a value", flags
        gv = from_plain(g.get("value"))
        msg = ex.verdict(case, value, gv)
        if msg:
            return FAILED, f"{label}: {msg}", flags
    return PASSED, f"passed all {len(expected)} cases.", flags


_TAMPER = [
    (re.compile(r"\.\s*reference\b"), "reads an exercise's reference"),
    (re.compile(r"\bexercises\s*\(\s*\)"), "reads the exercise registry"),
    (re.compile(r"_REGISTRY|\bprint_answers\b|\banswers\s*\(|sys\s*\.\s*setprofile|sys\s*\.\s*settrace"),
     "touches the grading machinery"),
]


def _patches(text: str) -> int:
    """How many statements assign to (or delete, or setattr) an attribute of a course_utils module."""
    import ast

    try:
        tree = ast.parse("\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return 0
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "course_utils"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_utils":
            aliases |= {a.asname or a.name for a in node.names}

    def rooted(node):
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in aliases

    n = 0
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else
                   [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        n += sum(isinstance(t, ast.Attribute) and rooted(t.value) for t in targets)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            n += bool(node.args) and rooted(node.args[0])
    return n


def _mentions(text: str, ex_id: str) -> dict[str, int]:
    """{what it does: how often} for the patterns of _TAMPER and uses of the exercise's reference by name."""
    found: dict[str, int] = {"changes course_utils inside the kernel": _patches(text)}
    for pattern, label in _TAMPER:
        found[label] = found.get(label, 0) + len(pattern.findall(text))
    impl = exercise(ex_id).implementation
    name = getattr(impl, "__name__", "<lambda>")
    if name != "<lambda>":
        n = re.escape(name)
        uses = re.findall(rf"[A-Za-z_)\]]\s*\.\s*{n}\b|^\s*(?:from\s+course_utils\S*\s+)?import\b.*\b{n}\b", text, re.M)
        found[f"uses {impl.__module__}.{name}, the reference"] = len(uses)
    return found


def static_flags(submission: dict, given: dict, ex_id: str) -> list[str]:
    """What the submission's code does more often than the instructor's student version (see _TAMPER)."""
    def code(nb):
        return "\n".join(_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code")

    given_counts = _mentions(code(given), ex_id)
    return [label for label, n in _mentions(code(submission), ex_id).items() if n > given_counts.get(label, 0)]


# ---------------------------------------------------------------- grading a class

def _seed_for(run_seed: int, student: str, notebook: str) -> int:
    return int(hashlib.sha256(f"{run_seed}:{student}:{notebook}".encode()).hexdigest()[:8], 16)


def grade_notebook(path, source_nb: dict, student="student", seed=0, timeout=600, memory=6 << 30, threads=None,
                   answer_timeout=60) -> tuple[str, list[dict]]:
    """Execute one submitted notebook in the sandbox and judge its exercises; (note, rows)."""
    exs = graded_exercises(source_nb)
    name = os.path.basename(path)
    token = "@@answers-" + secrets.token_hex(8) + "@@"
    spec = {"notebook": os.path.abspath(path), "cwd": os.path.dirname(os.path.abspath(path)), "exercises": exs,
            "seed": seed, "token": token, "timeout": timeout, "answer_timeout": answer_timeout,
            "threads": threads or max(1, os.cpu_count() or 1)}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MPLBACKEND", None)
    result = sandbox.run([sys.executable, "-m", "course_utils.grader", "_worker"], stdin=json.dumps(spec),
                         timeout=timeout + len(exs) * answer_timeout + 60, memory=memory, env=env)
    report = None
    for line in result.stdout.splitlines():
        if line.startswith(token):
            try:
                report = json.loads(line[len(token):])
            except ValueError:
                report = None
    try:
        submission = _read(path)
    except (OSError, ValueError) as e:
        submission = {"cells": []}
        report = report or {"error": f"cannot read the notebook: {e}", "answers": {}}
    given = student_version(source_nb)
    if result.status == sandbox.OUT_OF_MEMORY:
        note, default = f"out of memory: used more than {memory / 2**30:.1f} GiB", CRASHED
    elif report is None and result.status == sandbox.TIMED_OUT:
        note, default = f"killed after {result.seconds:.0f} s", TIMED_OUT
    elif report is None:
        err = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        note, default = f"the notebook could not be run: {err}", CRASHED
    else:
        note = "; ".join(s for s in (report.get("timed_out") or "", report.get("error") or "") if s)
        default = TIMED_OUT if report.get("timed_out") else (CRASHED if report.get("error") else NOT_ATTEMPTED)
    rows = []
    for ex in exs:
        answer = (report or {}).get("answers", {}).get(ex["id"])
        flags = static_flags(submission, given, ex["id"])
        if answer is None or (answer.get("missing") and default != NOT_ATTEMPTED):
            status, message = default, note or "the check was never reached"
        else:
            status, message, more = judge(ex["id"], seed, answer)
            flags += [f for f in more if f not in flags]
        rows.append({"student": student, "notebook": name, "exercise": ex["id"], "status": status,
                     "score": ex["points"] if status == PASSED else 0, "points": ex["points"],
                     "flags": "; ".join(flags), "message": message})
    for q in written_questions(source_nb):
        text = written_answer(submission, q["id"])
        if not text:
            status, message = NOT_ATTEMPTED, "no answer" if text == "" else "the answer cell was deleted"
        else:
            status = TO_READ
            message = f"a written answer of {len(text.split())} words: a person grades it (written_answers.html)"
        rows.append({"student": student, "notebook": name, "exercise": q["id"], "status": status, "score": 0,
                     "points": q["points"], "flags": "", "message": message, "answer": text or ""})
    return note, rows


def _submissions(folder):
    found = {}
    for root, _, files in os.walk(folder):
        if ".ipynb_checkpoints" in root:
            continue
        for f in files:
            if f.endswith(".ipynb"):
                found.setdefault(f, os.path.join(root, f))
    return found


def grade(submissions_dir, source_dir="notebooks", out_csv=None, timeout=600, jobs=1, memory=6 << 30, seed=None,
          notebooks=None, feedback_dir=None, answer_timeout=60) -> list[dict]:
    """Grade SUBMISSIONS_DIR/<student>/**/<notebook>.ipynb against the source notebooks in SOURCE_DIR.

    jobs notebooks run at once, each kernel with cores // jobs threads. Writes a CSV and one feedback
    page per student (HTML) when asked, prints a table and returns the rows.
    """
    if not os.path.isdir(source_dir):
        raise SystemExit(f"no source notebooks in {source_dir!r}: pass --source, the instructor's notebooks folder")
    sources = {n: _read(os.path.join(source_dir, n)) for n in sorted(os.listdir(source_dir)) if n.endswith(".ipynb")}
    sources = {n: nb for n, nb in sources.items() if graded_exercises(nb) or written_questions(nb)}
    students = sorted(d for d in os.listdir(submissions_dir) if os.path.isdir(os.path.join(submissions_dir, d)))
    if not students:
        raise SystemExit(f"{submissions_dir} holds no student folders (expected SUBMISSIONS/<student>/<notebook>.ipynb)")
    found = {s: _submissions(os.path.join(submissions_dir, s)) for s in students}
    wanted = notebooks or sorted({n for f in found.values() for n in f if n in sources})
    unknown = sorted({n for f in found.values() for n in f if n not in sources})
    if unknown:
        print(f"not graded (no source notebook with exercises of that name): {', '.join(unknown)}", file=sys.stderr)
    run_seed = secrets.randbelow(2**31) if seed is None else seed
    cores = os.cpu_count() or 1
    jobs = max(1, min(jobs, cores))
    threads = max(1, cores // jobs)
    print(f"grading {len(students)} students x {len(wanted)} notebooks, {jobs} at a time, {threads} thread(s) each; "
          f"seed {run_seed}; sandbox: {sandbox.isolation()}", file=sys.stderr)
    tasks = [(s, n) for s in students for n in wanted]
    results: dict = {}

    def one(task):
        student, name = task
        if name not in found[student]:
            rows = [{"student": student, "notebook": name, "exercise": ex["id"], "status": NOT_SUBMITTED, "score": 0,
                     "points": ex["points"], "flags": "", "message": "no such notebook in the student's folder"}
                    for ex in graded_exercises(sources[name]) + written_questions(sources[name])]
            return task, "", rows, 0.0
        t0 = time.monotonic()
        note, rows = grade_notebook(found[student][name], sources[name], student, _seed_for(run_seed, student, name),
                                    timeout, memory, threads, answer_timeout)
        return task, note, rows, time.monotonic() - t0

    from tqdm.auto import tqdm

    notes = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for task, note, rows, seconds in tqdm(pool.map(one, tasks), total=len(tasks), desc="grading", file=sys.stderr):
            results[task], notes[task] = rows, note
            if seconds:
                print(f"graded {task[0]}/{task[1]} in {seconds:.0f} s{': ' + note if note else ''}", file=sys.stderr)
    rows = [r for t in tasks for r in results[t]]
    for r in rows:
        r["seed"] = run_seed
    if out_csv:
        os.makedirs(os.path.dirname(os.path.abspath(out_csv)), exist_ok=True)
        with open(out_csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS + ["seed"], extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        if any(r["status"] == TO_READ for r in rows):
            write_written(rows, sources, os.path.join(os.path.dirname(os.path.abspath(out_csv)), "written_answers.html"))
    if feedback_dir:
        write_feedback(rows, notes, feedback_dir)
    print(format_table(rows))
    return rows


def format_table(rows) -> str:
    """The grades as a fixed-width table with a total per student; flagged rows are marked with '!'."""
    cols = ["student", "notebook", "exercise", "status", "score"]
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    line = lambda r: "  ".join(str(r[c]).ljust(widths[c]) for c in cols) + (f"  ! {r['flags']}" if r.get("flags") else "")  # noqa: E731
    out = [line({c: c for c in cols}), "  ".join("-" * widths[c] for c in cols)] + [line(r) for r in rows]
    totals: dict[str, list[int]] = {}
    for r in rows:
        t = totals.setdefault(r["student"], [0, 0])
        t[0] += r["score"]
        t[1] += r.get("points", 1)
    out += [""] + [f"{s}: {a}/{b}" for s, (a, b) in totals.items()]
    return "\n".join(out)


_MARK = {TO_READ: ("\u2709", "#1f4e9b"), PASSED: ("\u2713", "#1e7b34"), FAILED: ("\u2717", "#b3261e"),
         NOT_ATTEMPTED: ("\u270e", "#8a6d00"),
         CRASHED: ("\u2717", "#b3261e"), TIMED_OUT: ("\u29d6", "#b3261e"), NOT_SUBMITTED: ("\u2013", "#666")}


def write_feedback(rows, notes, folder) -> list[str]:
    """One HTML page per student: each exercise's verdict and, where it failed, the failing case."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for student in dict.fromkeys(r["student"] for r in rows):
        mine = [r for r in rows if r["student"] == student]
        score, total = sum(r["score"] for r in mine), sum(r["points"] for r in mine)
        parts = [f"<!doctype html><meta charset='utf-8'><title>Feedback for {html.escape(student)}</title>",
                 "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}td,th{padding:4px 10px;"
                 "text-align:left;vertical-align:top}tr:nth-child(even){background:#f4f4f4}</style>",
                 f"<h1>Feedback for {html.escape(student)}</h1><p><b>Score: {score} / {total}</b></p>"]
        for nb in dict.fromkeys(r["notebook"] for r in mine):
            parts.append(f"<h2>{html.escape(nb)}</h2>")
            note = notes.get((student, nb))
            if note:
                parts.append(f"<p>While running your notebook: {html.escape(note)}</p>")
            parts.append("<table><tr><th></th><th>exercise</th><th>points</th><th>what the grader saw</th></tr>")
            for r in (r for r in mine if r["notebook"] == nb):
                mark, colour = _MARK.get(r["status"], ("?", "#000"))
                parts.append(f"<tr><td style='color:{colour}'>{mark}</td><td>{html.escape(r['exercise'])}<br>"
                             f"<small>{html.escape(r['status'])}</small></td><td>{r['score']} / {r['points']}</td>"
                             f"<td>{html.escape(r['message'])}</td></tr>")
            parts.append("</table>")
        path = os.path.join(folder, f"{re.sub(r'[^A-Za-z0-9_.-]', '_', student)}.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(parts) + "\n")
        paths.append(path)
    return paths


def write_written(rows, sources, path) -> str:
    """One HTML page for the person who reads the written answers: per question, the question, the model
    answer, then every student's answer (those to read), so that one question is marked across the class."""
    parts = ["<!doctype html><meta charset='utf-8'><title>Written answers</title>",
             "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}.model{background:#eef6ee;"
             "padding:8px}.answer{border-top:1px solid #ccc;padding:8px 0;white-space:pre-wrap}</style>",
             "<h1>Written answers to read</h1>"]
    for name, nb in sources.items():
        for q in written_questions(nb):
            mine = [r for r in rows if r["notebook"] == name and r["exercise"] == q["id"]]
            if not mine:
                continue
            to_read = [r for r in mine if r["status"] == TO_READ]
            parts.append(f"<h2>{html.escape(name)}: {html.escape(q['id'])} ({q['points']} point(s); "
                         f"{len(to_read)} of {len(mine)} answered)</h2>")
            parts.append(f"<div>{html.escape(q['question'])}</div>")
            parts.append(f"<p><b>Model answer</b></p><div class='model'>{html.escape(q['model_answer'])}</div>")
            for r in to_read:
                parts.append(f"<div class='answer'><b>{html.escape(r['student'])}</b>\n{html.escape(r['answer'])}</div>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path


def _size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (try 4G or 800M)")
    return int(float(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_utils.grader", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assignments", help="write student versions (solutions removed)")
    a.add_argument("src", nargs="?", default="notebooks")
    a.add_argument("out", nargs="?", default="build/assignments")
    m = sub.add_parser("metadata", help="give source notebooks nbgrader's cell metadata (in place)")
    m.add_argument("notebooks", nargs="+")
    g = sub.add_parser("grade", help="execute and grade SUBMISSIONS/<student>/<notebook>.ipynb")
    g.add_argument("submissions")
    g.add_argument("--source", default="notebooks", help="the instructor's notebooks (default notebooks)")
    g.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    g.add_argument("--feedback", default=None, help="folder for one HTML feedback page per student "
                                                    "(default: feedback/ beside the CSV)")
    g.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook (default 600)")
    g.add_argument("--memory", type=_size, default=6 << 30, help="memory allowed per notebook (default 6G)")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at once; torch threads are divided among them")
    g.add_argument("--seed", type=int, default=None, help="seed of the cases (default: a new one; it is in the CSV)")
    g.add_argument("--notebooks", default=None, help="comma-separated notebook names to grade (default: all submitted)")
    sub.add_parser("_worker")  # internal: one notebook, in the sandbox; the spec comes on stdin
    args = p.parse_args(argv)
    if args.cmd == "assignments":
        for path in make_assignments(args.src, args.out):
            print(path)
    elif args.cmd == "metadata":
        for path in args.notebooks:
            _write(path, nbgrader_metadata(_read(path)))
            print(path)
    elif args.cmd == "grade":
        feedback = args.feedback or os.path.join(os.path.dirname(os.path.abspath(args.out)), "feedback")
        grade(args.submissions, args.source, args.out, args.timeout, args.jobs, args.memory, args.seed,
              args.notebooks.split(",") if args.notebooks else None, feedback)
    else:
        spec = json.loads(sys.stdin.read())
        report = _worker(spec)
        sys.stdout.write(spec["token"] + json.dumps(report) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
