"""Copied work, for a person to review: each submitted solution against every other submission's solution
of the same exercise, the course's own implementation and the instructor's model solution.

copydetect fingerprints code the way MOSS does (k-grams of the code, winnowed: Schleimer, Wilkerson & Aiken,
"Winnowing: local algorithms for document fingerprinting", SIGMOD 2003), after pygments has turned every
name into V, F or O and dropped comments and blank space: renamed variables, new comments and another
layout do not hide a copy. Code the instructor gave (the def line and hints of the student version) is
boilerplate and never counts. A pair is listed when one side shares at least THRESHOLD of its fingerprinted
code with the other and the shared code is at least MIN_SHARED characters long: a one-line answer is what
anyone would write, too short to tell.
"""
from __future__ import annotations

import html
import inspect
import io
import itertools
import re
from dataclasses import dataclass

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

from .registry import exercise

NOISE = 25  # k: characters of normalized code in one fingerprint (copydetect's default noise threshold)
WINDOW = 6  # winnowing window: every shared run of NOISE + WINDOW - 1 = 30 characters is found
# Honest solutions that follow a notebook's hints closely share up to about 85% with the model solution and
# with each other (the tests measure 0.84); renamed or re-formatted copies share 100%.
THRESHOLD = 0.9
MIN_SHARED = 80
COURSE, MODEL = "the course's implementation", "the model solution"


@dataclass
class Pair:
    """Two solutions of one exercise that share much of their code (`shares`: of each side's code)."""

    exercise: str
    names: tuple[str, str]
    shares: tuple[float, float]
    shared: int  # characters of normalized code in common
    code: tuple[str, str]
    slices: tuple  # copydetect's (2, n) start/end arrays of the shared parts, for each side

    @property
    def share(self) -> float:
        return max(self.shares)


def _fingerprint(code: str, boilerplate=()) -> CodeFingerprint:
    return CodeFingerprint("solution.py", NOISE, WINDOW, boilerplate=list(boilerplate), fp=io.StringIO(code),
                           language="python")


def similar_pairs(exercise_id: str, solutions: dict[str, str], given: str | None = None,
                  others: dict[str, str] | None = None, threshold: float = THRESHOLD,
                  min_shared: int = MIN_SHARED) -> list[Pair]:
    """Pairs among `solutions` ({student: code}), and between a solution and one of `others` ({COURSE: code,
    MODEL: code}), that share at least `threshold` of one side and `min_shared` characters; `given` is the
    code the student version hands out (boilerplate). Most alike first."""
    boilerplate = sorted(_fingerprint(given).hashes) if given else []
    prints = {name: _fingerprint(code, boilerplate) for name, code in {**solutions, **(others or {})}.items() if code}
    students = [n for n in solutions if n in prints]
    candidates = list(itertools.combinations(students, 2)) + [(s, o) for s in students for o in (others or {})
                                                              if o in prints]
    pairs = []
    for a, b in candidates:
        shared, shares, slices = compare_files(prints[a], prints[b])
        if shared >= min_shared and max(shares) >= threshold:
            pairs.append(Pair(exercise_id, (a, b), (float(shares[0]), float(shares[1])), int(shared),
                              (prints[a].raw_code, prints[b].raw_code), slices))
    return sorted(pairs, key=lambda p: -p.share)


def course_source(exercise_id: str) -> str:
    """The source of the course's functions that answer an exercise (as a student could copy it)."""
    return "\n\n".join(inspect.getsource(f) for f in exercise(exercise_id).implementations)


def without_flags(flags: str) -> str:
    """A row's flags ("; "-joined) without those `flag` wrote: a resumed run compares the class again."""
    return re.sub(r"(; )?similar to .+? \(\d+% shared; similarity\.html\)", "", flags).removeprefix("; ")


def flag(pair: Pair, name: str) -> str:
    """The flag a pair puts on `name`'s row."""
    other = pair.names[1] if pair.names[0] == name else pair.names[0]
    who = other if other in (COURSE, MODEL) else f"{other}'s solution"
    return f"similar to {who} ({pair.share:.0%} shared; similarity.html)"


def _marked(code: str, slices) -> str:
    slices = np.asarray(slices)
    if slices.size == 0:
        return html.escape(code)
    return highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)[0]


def write_report(pairs: list[Pair], path: str, threshold: float = THRESHOLD) -> str:
    """similarity.html: for each pair, the two solutions side by side with the shared parts marked."""
    parts = ["<!doctype html><meta charset='utf-8'><title>Similar solutions</title>",
             "<style>body{font-family:sans-serif;margin:2em}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em;"
             "margin-bottom:2.5em}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:13px}mark{background:#ffd54f}"
             "</style>",
             "<h1>Similar solutions, for review</h1>",
             f"<p>{len(pairs)} pair(s) share at least {threshold:.0%} of one side's code and {MIN_SHARED} characters "
             "of it after names, comments and layout are set aside (copydetect, winnowing as MOSS does). "
             "Shared parts are marked. Similar is not copied: read both.</p>"]
    for p in pairs:
        parts.append(f"<h2>{html.escape(p.exercise)}: {html.escape(p.names[0])} and {html.escape(p.names[1])}</h2>"
                     f"<p>{p.shares[0]:.0%} of the first, {p.shares[1]:.0%} of the second ({p.shared} characters "
                     "of normalized code in common)</p><div class='pair'>")
        for name, code, sl in zip(p.names, p.code, p.slices):
            parts.append(f"<div><b>{html.escape(name)}</b><pre>{_marked(code, sl)}</pre></div>")
        parts.append("</div>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path
