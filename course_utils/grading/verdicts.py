"""Verdicts, in the grader's process: a kernel's answers judged against the reference computed here, and
the static flags (what a submission's code does that the student version does not).
"""
from __future__ import annotations

import ast
import copy
import re

from .notebooks import cell_source
from .plain_data import fingerprint, from_plain, to_plain
from .registry import FAILED, NOT_ATTEMPTED, PASSED, TIMED_OUT, draw_cases, exercise
from .tripwire import ReferenceSwitchedOff


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
        return "\n".join(cell_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code")

    given_counts = _mentions(code(given), ex_id)
    return [label for label, n in _mentions(code(submission), ex_id).items() if n > given_counts.get(label, 0)]
