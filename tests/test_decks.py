"""Every notebook carries a lecture deck: RISE slide metadata on each cell (json only, no kernel, no torch).

A lecturer runs all cells and then presents the notebook with RISE (jupyterlab-rise) in about 15 minutes:
the question, the idea and its formula, the key figures, the live panel, one question for the room and the
papers. Setup, exercises and their solutions, checks and long asides are skipped.
"""
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))

SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}
STARTS = {"slide", "subslide"}  # a new screen
HIDDEN = {"skip", "notes"}  # not shown
MIN_SLIDES, MAX_SLIDES, MAX_CODE_PER_SLIDE = 10, 20, 3

PANEL_CALL = re.compile(r"panels\.\w+_panel\(")
# a notebook without a panels.*_panel( call must show its widget some other way: one of these
WIDGET_CALL = re.compile(r"\binteract(?:ive|_manual)?\(|\bwidgets\.\w+\(|\bdisplay\(")
CHECK_CALL = re.compile(r"(?<![\w.])check\(")  # the grader's check(...), not e.g. adv.linearity_check(


@pytest.fixture(autouse=True)
def seeded():
    """conftest seeds torch before every test; these tests read json only and never import torch."""
    yield


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _slide_type(cell):
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def _where(path, i, cell):
    first = next((line.strip() for line in _source(cell).splitlines() if line.strip()), "")
    return f"{path.name} cell {i} ({cell['cell_type']}, {first[:70]!r})"


def _headings(cell):
    if cell["cell_type"] != "markdown":
        return []
    return [line for line in _source(cell).splitlines() if re.match(r"#{1,6}\s", line)]


def _exercise_cells(nb):
    """Indices of the cells that belong to an exercise, each with the reason.

    A markdown cell with a heading that names an Exercise opens an exercise section (and is part of it); every
    cell after it belongs to it until a markdown cell with another heading. Solution, check and hint cells and
    every cell with nbgrader metadata belong to an exercise wherever they are.
    """
    found, inside = {}, False
    for i, cell in enumerate(nb["cells"]):
        src, heads = _source(cell), _headings(cell)
        if heads:
            inside = any("exercise" in h.lower() for h in heads)
            if inside:
                found[i] = "it has an Exercise heading"
        elif inside:
            found[i] = "it follows an Exercise heading, before the next section"
        if "nbgrader" in cell.get("metadata", {}):
            found[i] = "it has nbgrader metadata"
        elif "### BEGIN SOLUTION" in src:
            found[i] = "it holds a solution"
        elif "# HINT" in src:
            found[i] = "it holds a hint"
        elif cell["cell_type"] == "code" and CHECK_CALL.search(src):
            found[i] = "it calls check(...)"
    return found


def _slides(nb):
    """[(index of the cell that starts the slide, [indices of its cells])], in order."""
    slides = []
    for i, cell in enumerate(nb["cells"]):
        if _slide_type(cell) in STARTS:
            slides.append((i, []))
        if slides:
            slides[-1][1].append(i)
    return slides


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_slide_type(path):
    nb = _load(path)
    bad = [f"{_where(path, i, c)}: slide_type {_slide_type(c)!r}" for i, c in enumerate(nb["cells"])
           if _slide_type(c) not in SLIDE_TYPES]
    assert not bad, f"cells without a RISE slide_type (one of {sorted(SLIDE_TYPES)}):\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_deck_has_ten_to_twenty_slides_and_opens_with_its_title(path):
    nb = _load(path)
    cells = nb["cells"]
    assert _slide_type(cells[0]) == "slide", f"{_where(path, 0, cells[0])} must open the deck as a 'slide'"
    outline = "\n".join(f"  {i:3d} {_slide_type(cells[i]):9s} {_where(path, i, cells[i])}" for i, _ in _slides(nb))
    n = len(_slides(nb))
    assert MIN_SLIDES <= n <= MAX_SLIDES, \
        f"{path.name}: {n} slides (slide + subslide), want {MIN_SLIDES} to {MAX_SLIDES}:\n{outline}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_live_panel_is_on_a_slide(path):
    nb = _load(path)
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    panels = [(i, c) for i, c in code if PANEL_CALL.search(_source(c))]
    if not panels:  # no panels.*_panel( call: the cell that displays the notebook's widget stands for it
        panels = [(i, c) for i, c in code if WIDGET_CALL.search(_source(c))]
    assert panels, f"{path.name}: no panel call (panels.<name>_panel(...)) and no widget display found"
    hidden = [f"{_where(path, i, c)}: {_slide_type(c)!r}" for i, c in panels if _slide_type(c) in HIDDEN]
    assert not hidden, "a live panel must be shown (slide, subslide, fragment or -), not skipped:\n" + "\n".join(hidden)
    shown = [i for i, c in panels if _slide_type(c) not in HIDDEN]
    assert shown, f"{path.name}: none of its panels is on a slide"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_and_solutions_are_skipped(path):
    nb = _load(path)
    cells = nb["cells"]
    exercises = _exercise_cells(nb)
    assert exercises, f"{path.name}: found no exercise cells; the rule that finds them needs a look"
    shown = [f"{_where(path, i, cells[i])}: {_slide_type(cells[i])!r}, but {why}"
             for i, why in sorted(exercises.items()) if _slide_type(cells[i]) != "skip"]
    assert not shown, "exercise cells must be 'skip':\n" + "\n".join(shown)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_long_slides_scroll(path):
    rise = _load(path)["metadata"].get("rise", {})
    assert rise.get("scroll") is True, f"{path.name}: notebook metadata needs rise.scroll = true, has {rise!r}"
    assert rise.get("autolaunch") is False, f"{path.name}: the deck must not start by itself (rise.autolaunch)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_slide_is_not_a_page_of_code(path):
    nb = _load(path)
    cells = nb["cells"]
    crowded = []
    for start, members in _slides(nb):
        shown_code = [i for i in members if cells[i]["cell_type"] == "code" and _slide_type(cells[i]) not in HIDDEN]
        if len(shown_code) > MAX_CODE_PER_SLIDE:
            crowded.append(f"the slide at {_where(path, start, cells[start])} shows {len(shown_code)} code cells "
                           f"(cells {shown_code})")
    assert not crowded, f"at most {MAX_CODE_PER_SLIDE} code cells per slide:\n" + "\n".join(crowded)
