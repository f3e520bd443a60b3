"""The instructor's side of grading: student versions, nbgrader metadata, and a grader whose verdicts
cannot be forged from inside a submission.

How a notebook is graded (`grade`):

1. Which exercises a notebook has, which function answers each and its points come from the
   instructor's source notebooks (`--source`), never from the submission: deleting a check cell
   changes nothing.
2. A copy of the submission runs sealed (`course_utils.sandbox`: only its own copy writable, nothing
   else of the machine's files but the system, the environment and the package, read-only; no network;
   its own PID namespace; time and memory limits) in a fresh kernel, every cell, past errors, as
   nbgrader does. Before the first cell the grader's own code arms the tripwire (`course_utils.tripwire`).
3. The grader then asks the kernel for the outputs of the student's functions on cases drawn with a
   seed of each exercise's own, sent only with that question, as plain data (numbers, arrays; no
   pickle), and judges them in its own process against the reference it computes itself. While it asks,
   the course's implementation of that exercise is switched off in the kernel. Nothing the kernel
   prints, writes or patches is a verdict; cases that differ from the grader's own are reported.
4. A submission that calls the reference fails that case; one that names it, touches the grading code or
   reaches into the interpreter, or whose solution is close to another's, the course's or the model
   solution (`course_utils.similarity`, similarity.html beside the CSV) is flagged, and a flagged pass
   waits at 0 points for a person (`review`), unless --flagged keep.
5. Written questions (a markdown answer cell marked "written question `<id>`", the model answer in its
   solution region) are not scored by a machine: their rows say "to read", and written_answers.html,
   beside the CSV, lists each question with its model answer and every student's answer.

Command line (also behind ``make assignments`` and ``make grade``)::

    python -m course_utils.grader assignments notebooks build/assignments
    python -m course_utils.grader grade SUBMISSIONS --source notebooks --out build/grades.csv --jobs 2
    python -m course_utils.grader metadata notebooks/*.ipynb     # add nbgrader's cell metadata
    python -m course_utils.grader review build/grades.csv --accept alice:00.top_k --reject bob:00.top_k

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
import shutil
import sys
import tempfile
import time

from . import sandbox, similarity
from .grading import BEGIN, CRASHED, END, FAILED, NOT_ATTEMPTED, PASSED, TIMED_OUT, ExerciseDefect, draw_cases, exercise
from .plain_data import fingerprint, from_plain, to_plain
from .tripwire import ReferenceSwitchedOff, answers_cell

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
TO_REVIEW = "to review"  # a flagged pass: 0 points until a person accepts it (`review --accept`)
REJECTED = "rejected"  # a flagged pass a person did not accept


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
    from .runner import Kernel, KernelDied

    t0 = time.monotonic()
    deadline = t0 + spec["timeout"]
    report = {"error": None, "timed_out": False, "answers": {}}
    threads = str(spec["threads"])
    env = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1"}
    nb = _read(spec["notebook"])
    limit = spec["timeout"] + len(spec["exercises"]) * spec["answer_timeout"] + 60
    where, kernel = "while it started", None
    try:
        kernel = Kernel(cwd=os.path.dirname(spec["notebook"]), env=env, quiet=True, startup_timeout=min(120, limit),
                        sealed={"timeout": limit, "memory": spec["memory"]})
        with kernel as k:
            where = "before the first cell"
            ids = [e["id"] for e in spec["exercises"]]
            _, error = k.run(f"import course_utils.tripwire as _t\n_t.install({ids!r})\ndel _t", deadline)
            if error:
                raise RuntimeError(f"the grader could not arm its tripwire: {error[0]}: {error[1]}")
            for index, cell in enumerate(nb["cells"]):
                if cell["cell_type"] != "code":
                    continue
                where = f"in cell {index}"
                try:
                    _, error = k.run(_source(cell), deadline)
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


# ---------------------------------------------------------------- verdicts (in the grader's process)

def _reference(ex_id: str, seed: int):
    """[(case, inputs fingerprint, "value" or "raised", plain-decoded value or exception class)] per case."""
    ex = exercise(ex_id)
    out = []
    for case in draw_cases(ex, seed):  # none: ExerciseDefect, which stops the run (never "passed all 0 cases")
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
    flags = []
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
        if TRIPPED in g.get("raised", []):  # the tripwire: the course's implementation, called while asked
            return FAILED, f"{label}: {g.get('message', '')}", flags + [CALLS_REFERENCE]
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


TRIPPED = ReferenceSwitchedOff.__name__
CALLS_REFERENCE = "calls the reference implementation (the tripwire caught it)"

_TAMPER = [
    (re.compile(r"\.\s*reference\b"), "reads an exercise's reference"),
    (re.compile(r"\bexercises\s*\(\s*\)"), "reads the exercise registry"),
    (re.compile(r"_REGISTRY|\btripwire\b|_course_answers_|course-grader-answers|\banswers\s*\(|\banswers_cell\b|"
                r"sys\s*\.\s*setprofile|sys\s*\.\s*settrace"), "touches the grading machinery"),
    # the ways around the tripwire that need the interpreter's or the import system's inside (README)
    (re.compile(r"sys\s*\.\s*modules|\breload\s*\(|spec_from_file_location|SourceFileLoader|\brunpy\b|meta_path|"
                r"__code__|\bco_consts\b|\bco_code\b|__closure__|__globals__|\bctypes\b|_current_frames|_getframe|"
                r"\bf_back\b|\bf_locals\b|get_objects|get_referrers|getsource|\b__import__\b"),
     "reaches into the interpreter or the import system"),
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
    for impl in exercise(ex_id).implementations:
        n = re.escape(impl.__name__)
        uses = re.findall(rf"[A-Za-z_)\]]\s*\.\s*{n}\b|^\s*(?:from\s+course_utils\S*\s+)?import\b.*\b{n}\b", text, re.M)
        found[f"uses {impl.__module__}.{impl.__name__}, the reference"] = len(uses)
    return found


def static_flags(submission: dict, given: dict, ex_id: str) -> list[str]:
    """What the submission's code does more often than the instructor's student version (see _TAMPER)."""
    def code(nb):
        return "\n".join(_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code")

    given_counts = _mentions(code(given), ex_id)
    return [label for label, n in _mentions(code(submission), ex_id).items() if n > given_counts.get(label, 0)]


# ---------------------------------------------------------------- grading a class

def _seed_for(run_seed: int, *names: str) -> int:
    """A seed of its own for a notebook (names: student, notebook) or an exercise (and its id): the kernel
    is told an exercise's seed only when it is asked for that exercise, and cannot work out another's."""
    return int(hashlib.sha256(":".join([str(run_seed), *names]).encode()).hexdigest()[:8], 16)


def function_source(nb: dict, name: str) -> str | None:
    """The source of the last top-level `def name` in a notebook's code cells (what the student wrote)."""
    import ast

    found = None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text = "\n".join(line for line in _source(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                found = ast.get_source_segment(text, node)
    return found


def grade_notebook(path, source_nb: dict, student="student", seed=0, timeout=600, memory=6 << 30, threads=None,
                   answer_timeout=60) -> tuple[str, list[dict]]:
    """Run one submitted notebook sealed (a copy of it, in a scratch folder) and judge its exercises here;
    returns (note, rows). The submitted file is only read, and never when it is a link."""
    exs = graded_exercises(source_nb)
    name = os.path.basename(path)
    report, submission = None, {"cells": []}
    if os.path.islink(path):
        report = {"error": "the notebook is a symbolic link (to someone else's file?): not run", "answers": {}}
    else:
        try:
            submission = _read(path)
        except (OSError, ValueError) as e:
            report = {"error": f"cannot read the notebook: {e}", "answers": {}}
    if report is None:
        scratch = tempfile.mkdtemp(prefix="grading-")
        try:
            spec = {"notebook": copy_submission(path, scratch), "exercises": exs, "token": "@@answers-" + secrets.token_hex(8) + "@@",
                    "seeds": {ex["id"]: _seed_for(seed, ex["id"]) for ex in exs}, "timeout": timeout,
                    "answer_timeout": answer_timeout, "memory": memory,
                    "threads": threads or max(1, os.cpu_count() or 1)}
            report = run_submission(spec)
        except Exception as e:  # noqa: BLE001 - a notebook the grader could not run is that row's crash, not the class's
            report = {"error": f"the notebook could not be run: {type(e).__name__}: {e}", "answers": {}}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    given = student_version(source_nb)
    ended = (report.get("sandbox") or {}).get("status")
    if ended == sandbox.OUT_OF_MEMORY:
        note, default = f"out of memory: used more than {memory / 2**30:.1f} GiB", CRASHED
    elif ended == sandbox.TIMED_OUT and not report.get("timed_out"):
        note, default = f"killed after {report['sandbox'].get('seconds', 0):.0f} s", TIMED_OUT
    else:
        note = "; ".join(s for s in (report.get("timed_out") or "", report.get("error") or "") if s)
        default = TIMED_OUT if report.get("timed_out") else (CRASHED if report.get("error") else NOT_ATTEMPTED)
    rows = []
    for ex in exs:
        answer = report.get("answers", {}).get(ex["id"])
        flags = static_flags(submission, given, ex["id"])
        if answer is None or (answer.get("missing") and default != NOT_ATTEMPTED):
            status, message = default, note or "the check was never reached"
        else:
            status, message, more = judge(ex["id"], _seed_for(seed, ex["id"]), answer)
            flags += [f for f in more if f not in flags]
        rows.append({"student": student, "notebook": name, "exercise": ex["id"], "status": status,
                     "score": ex["points"] if status == PASSED else 0, "points": ex["points"],
                     "flags": "; ".join(flags), "message": message, "code": function_source(submission, ex["function"])})
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
          notebooks=None, feedback_dir=None, answer_timeout=60, flagged="review",
          similar=similarity.THRESHOLD) -> list[dict]:
    """Grade SUBMISSIONS_DIR/<student>/**/<notebook>.ipynb against the source notebooks in SOURCE_DIR.

    jobs notebooks run at once, each kernel with cores // jobs threads. Writes a CSV and one feedback
    page per student (HTML) when asked, prints a table and returns the rows. flagged: "review" holds a
    flagged pass at 0 points until a person accepts it, "keep" counts it (`hold_flagged`). similar: the share
    of code that lists two solutions as copies (`similarity`); None: no copy check.
    """
    hold_flagged([], flagged)  # a wrong value stops the run before it starts
    for what, path in (("submissions", submissions_dir), ("source notebooks", source_dir),
                       ("output", os.path.dirname(os.path.abspath(out_csv)) if out_csv else None), ("feedback", feedback_dir)):
        inside = path and next((r for r in sandbox.readable() if os.path.abspath(path).startswith(r + os.sep)), None)
        if inside:
            raise SystemExit(f"the {what} folder {path} lies inside {inside}, which every sealed notebook can read: "
                             "move it elsewhere")
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
    for name in wanted:  # an exercise that cannot judge stops the run before any submission runs
        for ex in graded_exercises(sources.get(name, {"cells": []})):
            draw_cases(exercise(ex["id"]), run_seed)
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
    pairs = find_copies(rows, {n: sources[n] for n in wanted}, similar) if similar is not None else []
    rows = hold_flagged(rows, flagged)
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
        if similar is not None:
            similarity.write_report(pairs, os.path.join(os.path.dirname(os.path.abspath(out_csv)), "similarity.html"),
                                    similar)
    if feedback_dir:
        write_feedback(rows, notes, feedback_dir)
    print(format_table(rows))
    return rows


def find_copies(rows, sources, threshold=similarity.THRESHOLD) -> list:
    """Compare every submitted solution of each exercise with the others, the course's implementation and
    the model solution (`similarity`); flag the rows of the students in each similar pair. Returns the pairs."""
    pairs = []
    for name, nb in sources.items():
        given_nb = student_version(nb)
        for ex in graded_exercises(nb):
            mine = [r for r in rows if r["notebook"] == name and r["exercise"] == ex["id"]]
            found = similarity.similar_pairs(
                ex["id"], {r["student"]: r.get("code") for r in mine if r.get("code")},
                function_source(given_nb, ex["function"]),
                {similarity.COURSE: similarity.course_source(ex["id"]), similarity.MODEL: function_source(nb, ex["function"])},
                threshold)
            by_student = {r["student"]: r for r in mine}
            for pair in found:
                for who in pair.names:
                    if who in by_student:
                        r = by_student[who]
                        r["flags"] = "; ".join(f for f in (r["flags"], similarity.flag(pair, who)) if f)
            pairs += found
    return pairs


def hold_flagged(rows, flagged="review"):
    """flagged="review": a passed row that carries a flag becomes "to review", worth 0 until a person accepts
    it (`review`), so that no grade the grader doubts is counted unseen; "keep": it keeps its points, flag
    beside them. Rows are changed in place and returned."""
    if flagged not in ("review", "keep"):
        raise ValueError(f"flagged must be 'review' or 'keep', got {flagged!r}")
    for r in rows:
        if flagged == "review" and r.get("flags") and r["status"] == PASSED:
            r["status"], r["score"] = TO_REVIEW, 0
            r["message"] = (f"{r['message']} Held for review ({r['flags']}): {r['points']} point(s) once a person "
                            f"accepts it.")
    return rows


def review(csv_path, accept=(), reject=()) -> list[dict]:
    """Settle rows held for review in a grades CSV: each of `accept` ("student:exercise") gets its points
    ("passed"), each of `reject` stays at 0 ("rejected"). The CSV is rewritten; the rows are returned."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    index = {f"{r['student']}:{r['exercise']}": r for r in rows}
    for key, verdict in [(k, PASSED) for k in accept] + [(k, REJECTED) for k in reject]:
        r = index.get(key)
        if r is None or r["status"] != TO_REVIEW:
            held = sorted(k for k, r in index.items() if r["status"] == TO_REVIEW)
            raise SystemExit(f"{key!r} is not a row held for review in {csv_path}; held: {', '.join(held) or 'none'}")
        r["status"], r["score"] = verdict, r["points"] if verdict == PASSED else "0"
        r["message"] += " Accepted by a person." if verdict == PASSED else " Not accepted by a person."
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        r["score"], r["points"] = int(r["score"]), int(r["points"])
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
         NOT_ATTEMPTED: ("\u270e", "#8a6d00"), TO_REVIEW: ("?", "#8a6d00"), REJECTED: ("\u2717", "#b3261e"),
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
    g.add_argument("--flagged", choices=["review", "keep"], default="review",
                   help="a flagged pass: 'review' (default) scores 0 until a person accepts it; 'keep' counts it")
    g.add_argument("--similar", type=float, default=similarity.THRESHOLD,
                   help=f"share of code two solutions must have in common to be listed (default {similarity.THRESHOLD})")
    r = sub.add_parser("review", help="accept or reject rows held for review in a grades CSV")
    r.add_argument("csv")
    r.add_argument("--accept", nargs="*", default=[], metavar="STUDENT:EXERCISE")
    r.add_argument("--reject", nargs="*", default=[], metavar="STUDENT:EXERCISE")
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
        try:
            grade(args.submissions, args.source, args.out, args.timeout, args.jobs, args.memory, args.seed,
                  args.notebooks.split(",") if args.notebooks else None, feedback, flagged=args.flagged,
                  similar=args.similar)
        except ExerciseDefect as e:
            raise SystemExit(f"grading stopped: {e}") from None
    elif args.cmd == "review":
        print(format_table(review(args.csv, args.accept, args.reject)))


if __name__ == "__main__":
    main()
