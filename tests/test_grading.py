"""The grading machinery: checks, student versions, and the grader's table."""
import csv
import json
import pathlib

import numpy as np
import pytest
import torch

from course_utils import grading
from course_utils.grading import (FAILED, NOT_ATTEMPTED, PASSED, Case, ExerciseFailed, check, compare, exercises,
                                  register, strip_solutions, student_version)

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _square(x):
    return x * x


register("test.square", _square, lambda rng: [Case(f"n={n}", (torch.from_numpy(rng.normal(size=n)),)) for n in (3, 5)]
         + [Case("a string is an error", ("no",))])


def test_compare():
    assert compare(torch.ones(3), np.ones(3)) is None
    assert "shape" in compare(torch.ones(3), torch.ones(4))
    msg = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert "1 of 2 values differ" in msg and "index (1,)" in msg and "2.5" in msg
    assert compare(1.0, 1.0 + 1e-9) is None and "expected 1" in compare(1.0, 1.1)
    assert compare((torch.ones(2), torch.tensor([1, 2])), (torch.ones(2), torch.tensor([1, 2]))) is None
    assert "[1]" in compare((torch.ones(2), torch.tensor([1, 2])), (torch.ones(2), torch.tensor([2, 1])))
    assert "length" in compare([1, 2], [1])
    assert "number" in compare(1.0, "one")


def test_check_passes_a_right_answer(capsys):
    assert check("test.square", lambda x: x ** 2).status == PASSED
    assert "passed all 3 cases" in capsys.readouterr().out


def test_check_fails_a_wrong_answer_naming_the_case(capsys):
    with pytest.raises(ExerciseFailed) as e:
        check("test.square", lambda x: x * 2)
    assert "Case 1 of 3 (n=3)" in str(e.value) and "expected" in str(e.value)
    # in Jupyter the failure shows as its message, not a traceback
    assert any("Case 1 of 3" in line for line in e.value._render_traceback_())


def test_check_reports_not_attempted_without_raising(capsys):
    def stub(x):
        raise NotImplementedError()

    result = check("test.square", stub)
    assert result.status == NOT_ATTEMPTED and "not attempted" in capsys.readouterr().out


def test_errors_must_match_the_reference():
    # the reference raises TypeError on a string; a student raising TypeError too is right
    def careful(x):
        if isinstance(x, str):
            raise TypeError("no strings")
        return x * x

    assert check("test.square", careful)
    with pytest.raises(ExerciseFailed, match="raised KeyError"):
        check("test.square", lambda x: {}["boom"])


def test_check_records_instead_of_raising_under_the_grader(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    monkeypatch.setenv(grading.RESULTS_ENV, str(out))
    assert check("test.square", lambda x: x + 1).status == FAILED
    assert json.loads(out.read_text())["status"] == FAILED


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(KeyError, match="00.top_k"):
        check("00.topk", lambda x: x)


def test_every_notebook_exercise_is_registered():
    known = exercises()
    for path in NOTEBOOKS:
        for ex in grading.exercises_in(json.loads(path.read_text())):
            assert ex in known, f"{path.name} checks unregistered exercise {ex}"


def test_strip_solutions_keeps_indent_and_hints():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    # HINT: square it\n    y = x * x\n    return y\n    ### END SOLUTION\n\nprint(1)\n"
    out = strip_solutions(src)
    assert out == ("def f(x):\n    # HINT: square it\n    " + grading._HINT + "\n    raise NotImplementedError()\n\nprint(1)\n")
    with pytest.raises(ValueError):
        strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError):
        strip_solutions("x = 1\n### END SOLUTION\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_version_removes_solutions_and_nothing_else(path):
    nb = json.loads(path.read_text())
    student = student_version(nb)
    assert len(student["cells"]) == len(nb["cells"])
    n_regions = 0
    for a, b in zip(nb["cells"], student["cells"]):
        src_a, src_b = "".join(a["source"]), "".join(b["source"])
        if "### BEGIN SOLUTION" in src_a:
            n_regions += 1
            assert "### BEGIN SOLUTION" not in src_b and "raise NotImplementedError()" in src_b
            assert src_b.splitlines()[0] == src_a.splitlines()[0]  # the def line stays
        else:
            assert src_a == src_b and a["cell_type"] == b["cell_type"]
        if b["cell_type"] == "code":
            assert b["outputs"] == [] and b["execution_count"] is None
    assert n_regions >= 1, f"{path.name} has no graded exercise"
    assert student["metadata"] == nb["metadata"]


def _write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))


def _nb(cells):
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c}
                      for c in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def test_grader_table_is_exactly_right(tmp_path):
    """A correct, a wrong, an unattempted, a crashing and a slow submission of 00_start_here."""
    source = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    subs = tmp_path / "submissions"
    _write(subs / "alice" / "00_start_here.ipynb", source)
    wrong = json.loads(json.dumps(source))
    for cell in wrong["cells"]:
        src = "".join(cell["source"])
        if "### BEGIN SOLUTION" in src:  # forgets to sort: a classic mistake
            cell["source"] = src.replace("torch.sort(p, descending=True)", "p, torch.arange(len(p))")
    _write(subs / "bob" / "00_start_here.ipynb", wrong)
    _write(subs / "carol" / "00_start_here.ipynb", student_version(source))
    crash = json.loads(json.dumps(source))
    crash["cells"].insert(2, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                              "source": "1 / 0"})
    _write(subs / "dave" / "00_start_here.ipynb", crash)
    # a small notebook of two exercises, the second never reached in time
    _write(subs / "erin" / "tiny.ipynb", _nb([
        "from course_utils.grading import check\nimport torch",
        "check('00.top_k', lambda l, k=5: torch.softmax(l, -1).topk(k) if k <= len(l) else (_ for _ in ()).throw(ValueError()))",
        "import time\ntime.sleep(3600)",
        "check('test.square', lambda x: x * x)",
    ]))
    rows = grading.grade(str(subs), str(tmp_path / "grades.csv"), timeout=90)
    got = [(r["student"], r["notebook"], r["exercise"], r["status"], r["score"]) for r in rows]
    assert got == [
        ("alice", "00_start_here.ipynb", "00.top_k", "passed", 1),
        ("bob", "00_start_here.ipynb", "00.top_k", "failed", 0),
        ("carol", "00_start_here.ipynb", "00.top_k", "not attempted", 0),
        ("dave", "00_start_here.ipynb", "00.top_k", "crashed", 0),
        ("erin", "tiny.ipynb", "00.top_k", "passed", 1),
        ("erin", "tiny.ipynb", "test.square", "timed out", 0),
    ]
    assert "Case" in rows[1]["message"]
    assert "ZeroDivisionError" in rows[3]["message"]
    with open(tmp_path / "grades.csv") as f:
        assert [tuple(r.values())[:5] for r in csv.DictReader(f)] == [tuple(map(str, g)) for g in got]
    table = grading.format_table(rows)
    assert "alice: 1/1" in table and "erin: 1/2" in table


def test_student_versions_of_every_notebook_run_to_the_end(tmp_path):
    """`make assignments` output, executed by the grader: every exercise 'not attempted', no crash."""
    grading.make_assignments(str(ROOT / "notebooks"), str(tmp_path / "subs" / "student"))
    rows = grading.grade(str(tmp_path / "subs"), None, timeout=900)
    assert rows, "no exercises found"
    bad = [(r["notebook"], r["exercise"], r["status"], r["message"]) for r in rows if r["status"] != NOT_ATTEMPTED]
    assert not bad
