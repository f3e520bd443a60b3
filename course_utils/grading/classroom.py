"""Grading a class: every student's notebooks run sealed (`submission`), judged here (`verdicts`), copies
looked for (`similarity`), flagged passes held for a person (`review`), the CSV and pages written (`reports`).
"""
from __future__ import annotations

import ast
import concurrent.futures
import csv
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import time

from tqdm.auto import tqdm

from . import sandbox, similarity
from .notebooks import cell_source, graded_exercises, read_notebook, student_version, written_answer, written_questions
from .registry import (CRASHED, NOT_ATTEMPTED, NOT_SUBMITTED, PASSED, REJECTED, TIMED_OUT, TO_READ, TO_REVIEW,
                       draw_cases, exercise)
from .reports import format_table, write_feedback, write_written
from .submission import copy_submission, run_submission
from .verdicts import judge, static_flags

FIELDS = ["student", "notebook", "exercise", "status", "score", "points", "flags", "message"]


def _seed_for(run_seed: int, *names: str) -> int:
    """A seed of its own for a notebook (names: student, notebook) or an exercise (and its id): the kernel
    is told an exercise's seed only when it is asked for that exercise, and cannot work out another's."""
    return int(hashlib.sha256(":".join([str(run_seed), *names]).encode()).hexdigest()[:8], 16)


def function_source(nb: dict, name: str) -> str | None:
    """The source of the last top-level `def name` in a notebook's code cells (what the student wrote)."""
    found = None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text = "\n".join(line for line in cell_source(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
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
            submission = read_notebook(path)
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
    sources = {n: read_notebook(os.path.join(source_dir, n)) for n in sorted(os.listdir(source_dir)) if n.endswith(".ipynb")}
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
