"""What the grader writes for people: the table it prints, a feedback page per student, and the page of
written answers for whoever marks them."""
from __future__ import annotations

import html
import os
import re

from .notebooks import written_questions
from .registry import CRASHED, FAILED, NOT_ATTEMPTED, NOT_SUBMITTED, PASSED, REJECTED, TIMED_OUT, TO_READ, TO_REVIEW


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
