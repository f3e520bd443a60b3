"""Editing the instructor's notebooks: nbgrader's cell metadata, student versions, written questions.

A source notebook holds each solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, and a
check cell ``check("<id>", fn)`` after it; a written question's answer is a markdown cell marked
"written question `<id>`" whose solution region holds the model answer. `student_version` removes the
solutions as nbgrader's generate_assignment does; `nbgrader_metadata` adds nbgrader's cell metadata.
"""
from __future__ import annotations

import copy
import json
import os
import re

from .registry import BEGIN, END


def cell_source(cell) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


# ---------------------------------------------------------------- nbgrader metadata

_CHECK = re.compile(r"""(?<![\w.])check\(\s*["']([\w.\-]+)["']\s*,\s*([A-Za-z_]\w*)""")
# A written question's answer cell: a markdown cell with this marker and a BEGIN/END SOLUTION region holding
# the model answer (the student sees nbgrader's "YOUR ANSWER HERE" in its place).
_WRITTEN = re.compile(r"written question `([\w.\-]+)`")
ANSWER_STUB = "YOUR ANSWER HERE"


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
        if cell["cell_type"] == "markdown" and BEGIN in cell_source(cell):
            written = _WRITTEN.findall(cell_source(cell))
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
        src = cell_source(cell)
        meta = cell.setdefault("metadata", {})
        checks = _CHECK.findall(src)
        if BEGIN in src:
            following = next((_CHECK.findall(cell_source(c)) for c in cells[i + 1:]
                              if c["cell_type"] == "code" and _CHECK.findall(cell_source(c))), None)
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
        for ex_id, fn in _CHECK.findall(cell_source(cell)):
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
        src = cell_source(cell)
        if cell["cell_type"] != "markdown" or BEGIN not in src or not _WRITTEN.findall(src):
            continue
        before = nb["cells"][i - 1] if i else None
        question = cell_source(before) if before is not None and before["cell_type"] == "markdown" else ""
        model = src[src.index(BEGIN) + len(BEGIN):src.index(END)].strip() if END in src else ""
        out.append({"id": _WRITTEN.findall(src)[0], "points": cell.get("metadata", {}).get("nbgrader", {}).get("points", 1),
                    "question": question.strip(), "model_answer": model})
    return out


def written_answer(nb: dict, question_id: str) -> str | None:
    """The text of a submission's answer to a written question (its marker line removed); None when the
    answer cell is gone; "" when it holds only the stub."""
    for cell in nb.get("cells", []):
        src = cell_source(cell)
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
        src = cell_source(cell)
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


def read_notebook(path) -> dict:
    """A notebook file as a JSON dict (the grader never needs nbformat's objects)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_notebook(path, nb):
    """Write a notebook dict as Jupyter does (one-space indent, a final newline)."""
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
            write_notebook(path, student_version(read_notebook(os.path.join(src_dir, name))))
            written.append(path)
    return written
