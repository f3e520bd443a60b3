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
import sys

from tqdm.auto import tqdm

from . import sandbox, similarity
from .notebooks import cell_source, graded_exercises, read_notebook, student_version, written_answer, written_questions
from .registry import (CRASHED, NOT_ATTEMPTED, NOT_SUBMITTED, PASSED, REJECTED, TIMED_OUT, TO_READ, TO_REVIEW,
                       draw_cases, exercise)
from .reports import format_table, write_feedback, write_written
from .submission import fingerprint, pack_submission, run_task
from .verdicts import judge, static_flags

FIELDS = ["student", "notebook", "exercise", "status", "score", "points", "flags", "message"]
# the CSV: the rows, what happened while the notebook ran, the seed of the run and the sha256 of the file graded
COLUMNS = FIELDS + ["note", "seed", "sha256"]
HELD, ACCEPTED, NOT_ACCEPTED = " Held for review (", " Accepted by a person.", " Not accepted by a person."


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


def make_task(student, name, path, source_nb, seed, timeout=600, memory=6 << 30, answer_timeout=60, threads=None,
              files="send"):
    """What a sealed run of one submitted notebook needs, as plain data (`submission.run_task` runs it, here
    or on a Dask worker): the exercises' ids and functions (not the instructor's notebook), each exercise's
    seed, the limits, and the submission itself, packed (files="send") or as its path and sha256 on a
    filesystem the workers share (files="shared"). threads=None: the worker divides its cores (`cluster`).
    A notebook that is not run (`unreadable`) gets its report instead: {"error": why, "answers": {}}."""
    why = unreadable(path)
    if why:
        return {"error": why, "answers": {}}
    exs = graded_exercises(source_nb)
    task = {"student": student, "notebook": name, "exercises": [{"id": e["id"], "function": e["function"]} for e in exs],
            "seeds": {e["id"]: _seed_for(seed, e["id"]) for e in exs}, "timeout": timeout, "memory": memory,
            "answer_timeout": answer_timeout, "threads": threads}
    if files == "shared":
        task["path"], task["sha256"] = os.path.abspath(path), fingerprint(path)
    else:
        task["files"] = pack_submission(path)
    return task


def unreadable(path) -> str | None:
    """Why a submitted notebook is not run (a link, not a notebook), or None."""
    if os.path.islink(path):
        return "the notebook is a symbolic link (to someone else's file?): not run"
    try:
        read_notebook(path)
    except (OSError, ValueError) as e:
        return f"cannot read the notebook: {e}"
    return None


def judge_notebook(report, path, source_nb, student="student", seed=0, memory=6 << 30) -> tuple[str, list[dict]]:
    """The rows of one submitted notebook, judged here from its run's report (`submission.run_task`): what
    the kernel answered is compared with the references this process computes. Returns (note, rows)."""
    exs = graded_exercises(source_nb)
    name = os.path.basename(path)
    try:
        submission = read_notebook(path) if not os.path.islink(path) else {"cells": []}
    except (OSError, ValueError):
        submission = {"cells": []}
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
                     "flags": "; ".join(flags), "message": message})
    for q in written_questions(source_nb):
        text = written_answer(submission, q["id"])
        if not text:
            status, message = NOT_ATTEMPTED, "no answer" if text == "" else "the answer cell was deleted"
        else:
            status = TO_READ
            message = f"a written answer of {len(text.split())} words: a person grades it (written_answers.html)"
        rows.append({"student": student, "notebook": name, "exercise": q["id"], "status": status, "score": 0,
                     "points": q["points"], "flags": "", "message": message})
    for r in rows:
        r["note"] = note
    return note, rows


def grade_notebook(path, source_nb: dict, student="student", seed=0, timeout=600, memory=6 << 30, threads=None,
                   answer_timeout=60) -> tuple[str, list[dict]]:
    """Run one submitted notebook sealed on this machine (a copy of it, in a scratch folder) and judge its
    exercises here; returns (note, rows). The submitted file is only read, and never when it is a link."""
    task = make_task(student, os.path.basename(path), path, source_nb, seed, timeout, memory, answer_timeout,
                     threads or max(1, os.cpu_count() or 1))
    report = task if "error" in task else run_task(task)
    return judge_notebook(report, path, source_nb, student, seed, memory)


def _submissions(folder):
    found = {}
    for root, _, files in os.walk(folder):
        if ".ipynb_checkpoints" in root:
            continue
        for f in files:
            if f.endswith(".ipynb"):
                found.setdefault(f, os.path.join(root, f))
    return found


def _not_submitted(student, name, source_nb):
    return [{"student": student, "notebook": name, "exercise": ex["id"], "status": NOT_SUBMITTED, "score": 0,
             "points": ex["points"], "flags": "", "message": "no such notebook in the student's folder", "note": ""}
            for ex in graded_exercises(source_nb) + written_questions(source_nb)]


def _on_this_machine(keys, task_for, jobs):
    """Run the tasks `jobs` at a time in this process's threads, each kernel with cores // jobs threads;
    yields (key, report) as they end (the Dask counterpart is `cluster.run`)."""
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def one(key):
        task = task_for(key)
        if "error" in task:
            return key, task
        task["threads"] = threads
        return key, run_task(task)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, k) for k in keys]
        for f in concurrent.futures.as_completed(futures):
            yield f.result()


def grade(submissions_dir, source_dir="notebooks", out_csv=None, timeout=600, jobs=1, memory=6 << 30, seed=None,
          notebooks=None, feedback_dir=None, answer_timeout=60, flagged="review",
          similar=similarity.THRESHOLD, client=None, files="send", tries=3) -> list[dict]:
    """Grade SUBMISSIONS_DIR/<student>/**/<notebook>.ipynb against the source notebooks in SOURCE_DIR.

    Each submitted notebook runs sealed on this machine, `jobs` at a time, each kernel with cores // jobs
    threads; or, given a Dask `client` (`cluster.connect`), as one task on the cluster's workers (files: how
    submissions reach them, "send" or "shared"; tries: runs before a notebook whose worker dies each time
    is "crashed"). Either way the verdicts are computed here. Rows stream into the CSV as notebooks end; a
    run whose CSV holds rows of the same seed grades only what is missing there (or was resubmitted since).
    At the end the CSV is rewritten whole, with the copy check (`similarity`: two solutions sharing
    `similar` of their code; None: no check) and flagged passes held for a person (flagged="review") or
    kept ("keep", `hold_flagged`). Writes one feedback page per student (HTML) when asked, prints a table
    and returns the rows.
    """
    hold_flagged([], flagged)  # a wrong value stops the run before it starts
    if files not in ("send", "shared"):
        raise ValueError(f"files must be 'send' or 'shared', got {files!r}")
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
    before = read_grades(out_csv)
    if seed is None and before:
        seed = int(before[0]["seed"])  # the same command again resumes
    run_seed = secrets.randbelow(2**31) if seed is None else seed
    for name in wanted:  # an exercise that cannot judge stops the run before any submission runs
        for ex in graded_exercises(sources.get(name, {"cells": []})):
            draw_cases(exercise(ex["id"]), run_seed)
    keys = [(s, n) for s in students for n in wanted]
    sha = {k: fingerprint(found[k[0]][k[1]]) if k[1] in found[k[0]] and not os.path.islink(found[k[0]][k[1]]) else ""
           for k in keys}
    results = kept_grades(before, run_seed, sha, {n: sources[n] for n in wanted})
    if before and len(results) < len({(r["student"], r["notebook"]) for r in before}):
        print(f"{out_csv}: {len(results)} notebooks graded before with seed {run_seed} are kept, the other rows are "
              "graded again", file=sys.stderr)
    for k in keys:
        if k not in results and k[1] not in found[k[0]]:
            results[k] = _not_submitted(*k, sources[k[1]])
        for r in results.get(k, []):
            r["seed"], r["sha256"] = run_seed, sha[k]
    todo = [k for k in keys if k not in results]

    def task_for(key):
        student, name = key
        return make_task(student, name, found[student][name], sources[name], _seed_for(run_seed, student, name),
                         timeout, memory, answer_timeout, None, files)

    if client is None:
        jobs = max(1, min(jobs, os.cpu_count() or 1))
        where = f"{jobs} at a time, {max(1, (os.cpu_count() or 1) // jobs)} thread(s) each; sandbox: {sandbox.isolation()}"
        reports = _on_this_machine(todo, task_for, jobs)
    else:
        from . import cluster
        where = f"on the Dask cluster at {client.scheduler.address} (dashboard: {client.dashboard_link}), {tries} tries"
        reports = cluster.run(client, todo, task_for, tries)
    print(f"grading {len(students)} students x {len(wanted)} notebooks ({len(todo)} to run), {where}; seed {run_seed}",
          file=sys.stderr)
    stream = _Stream(out_csv, [r for k in keys if k in results for r in results[k]])
    try:
        with tqdm(total=len(keys), initial=len(keys) - len(todo), desc="grading", unit="notebook", file=sys.stderr) as bar:
            for key, report in reports:
                if report.get("worker_fault"):
                    raise SystemExit(f"grading stopped: {report['error']}")
                _, rows = judge_notebook(report, found[key[0]][key[1]], sources[key[1]], key[0],
                                         _seed_for(run_seed, *key), memory)
                for r in rows:
                    r["seed"], r["sha256"] = run_seed, sha[key]
                results[key] = rows
                stream.add(rows)
                bar.update()
                if report.get("seconds"):
                    where = f" on {report['host']}" if client is not None and report.get("host") else ""
                    note = rows[0]["note"] if rows else ""
                    bar.write(f"graded {key[0]}/{key[1]}{where} in {report['seconds']:.0f} s{': ' + note if note else ''}",
                              file=sys.stderr)
    finally:
        stream.close()
    rows = [r for k in keys for r in results[k]]
    _reread(rows, found, sources)
    decisions = {(r["student"], r["exercise"]): r.pop("decision") for r in rows if r.get("decision")}
    pairs = find_copies(rows, {n: sources[n] for n in wanted}, similar) if similar is not None else []
    rows = hold_flagged(rows, flagged)
    for r in rows:  # a person's decision on a held row, made before a resumed run, stands
        if r["status"] == TO_REVIEW and (r["student"], r["exercise"]) in decisions:
            _settle(r, decisions[(r["student"], r["exercise"])])
    if out_csv:
        write_grades(out_csv, rows)
        if any(r["status"] == TO_READ for r in rows):
            write_written(rows, sources, os.path.join(os.path.dirname(os.path.abspath(out_csv)), "written_answers.html"))
        if similar is not None:
            similarity.write_report(pairs, os.path.join(os.path.dirname(os.path.abspath(out_csv)), "similarity.html"),
                                    similar)
    if feedback_dir:
        write_feedback(rows, {(r["student"], r["notebook"]): r.get("note", "") for r in rows}, feedback_dir)
    print(format_table(rows))
    return rows


class _Stream:
    """The CSV while a class is graded: the rows kept from before, then each notebook's rows as it ends
    (flushed: the file shows the progress and keeps what was graded if the run stops); `write_grades`
    rewrites it whole at the end."""

    def __init__(self, path, rows):
        self.f = None
        if path:
            write_grades(path, rows)
            self.f = open(path, "a", newline="", encoding="utf-8")
            self.w = csv.DictWriter(self.f, fieldnames=COLUMNS, extrasaction="ignore")

    def add(self, rows):
        if self.f:
            self.w.writerows(rows)
            self.f.flush()
            os.fsync(self.f.fileno())

    def close(self):
        if self.f:
            self.f.close()


def write_grades(path, rows):
    """Write the grades CSV (COLUMNS), through a temporary file: a reader never sees half of it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".part", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(path + ".part", path)


def read_grades(path) -> list[dict]:
    """The rows of a grades CSV written by `grade` (in full, or as far as a stopped run got), [] if none."""
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows if rows and "seed" in rows[0] and "sha256" in rows[0] else []


def kept_grades(before, seed, sha, sources) -> dict:
    """The notebooks of an earlier CSV that a run with `seed` need not grade again: every exercise of the
    notebook has its row, graded with that seed, from the file as it is now (same sha256). Each row comes
    back as the grader judged it: holds undone, the copy check's flags dropped (both are done again over
    the whole class), and a person's decision on a held row kept aside in "decision"."""
    groups: dict = {}
    for r in before:
        groups.setdefault((r["student"], r["notebook"]), []).append(r)
    kept = {}
    for key, rows in groups.items():
        ids = [e["id"] for e in graded_exercises(sources[key[1]]) + written_questions(sources[key[1]])] \
            if key[1] in sources else None
        if (ids is None or key not in sha or [r["exercise"] for r in rows] != ids
                or any(r["seed"] != str(seed) or r["sha256"] != sha[key] for r in rows)):
            continue
        for r in rows:
            held = r["status"] in (TO_REVIEW, REJECTED) or r["message"].endswith(ACCEPTED)
            if r["status"] == REJECTED or r["message"].endswith(ACCEPTED):
                r["decision"] = REJECTED if r["status"] == REJECTED else PASSED
            if held:
                r["status"], r["message"] = PASSED, r["message"].split(HELD)[0]
            r["points"] = int(r["points"])
            r["score"] = r["points"] if r["status"] == PASSED else int(r["score"])
            r["flags"] = similarity.without_flags(r["flags"])
        kept[key] = rows
    return kept


def _reread(rows, found, sources):
    """Each row's submitted code (for the copy check) and written answer (for whoever reads them), read
    again from the submitted files: the same for rows graded now and rows kept from before."""
    cache: dict = {}
    for r in rows:
        key = (r["student"], r["notebook"])
        if key not in cache:
            path = found.get(r["student"], {}).get(r["notebook"])
            try:
                cache[key] = read_notebook(path) if path and not os.path.islink(path) else {"cells": []}
            except (OSError, ValueError):
                cache[key] = {"cells": []}
        nb, source = cache[key], sources[r["notebook"]]
        ex = next((e for e in graded_exercises(source) if e["id"] == r["exercise"]), None)
        if ex is not None:
            r["code"] = function_source(nb, ex["function"]) if r["status"] != NOT_SUBMITTED else None
        elif r["status"] == TO_READ:
            r["answer"] = written_answer(nb, r["exercise"]) or ""


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
            r["message"] = f"{r['message']}{HELD}{r['flags']}): {r['points']} point(s) once a person accepts it."
    return rows


def _settle(r, verdict):
    """A person's decision on a held row: PASSED gives it its points, REJECTED leaves it at 0."""
    r["status"], r["score"] = verdict, int(r["points"]) if verdict == PASSED else 0
    r["message"] += ACCEPTED if verdict == PASSED else NOT_ACCEPTED


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
        _settle(r, verdict)
    with open(csv_path + ".part", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(csv_path + ".part", csv_path)
    for r in rows:
        r["score"], r["points"] = int(r["score"]), int(r["points"])
    return rows
