"""The instructor's grader: student versions, nbgrader metadata, and verdicts a submission cannot forge.

The end-to-end test grades a class of adversarial submissions of a small source notebook (two real
exercises, no ImageNet model, so each runs in seconds) and checks every row of the table.
"""
import csv
import json
import pathlib
import socket
import threading
import time

import numpy as np
import psutil
import pytest

from course_utils.grading import classroom, notebooks, verdicts, sandbox
from course_utils.grading.notebooks import graded_exercises, nbgrader_metadata, strip_solutions, student_version
from course_utils.grading import exercises
from helpers import require_isolation

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _load(path):
    return json.loads(pathlib.Path(path).read_text())


# ---------------------------------------------------------------- source notebooks and student versions

def test_strip_solutions_keeps_indent_and_hints():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    # HINT: square it\n    y = x * x\n    return y\n    ### END SOLUTION\n\nprint(1)\n"
    out = strip_solutions(src)
    assert out == ("def f(x):\n    # HINT: square it\n    " + notebooks.HINT + "\n    raise NotImplementedError()\n\nprint(1)\n")
    with pytest.raises(ValueError):
        strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError):
        strip_solutions("x = 1\n### END SOLUTION\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_version_removes_solutions_and_nothing_else(path):
    nb = _load(path)
    student = student_version(nb)
    assert len(student["cells"]) == len(nb["cells"])
    n_regions = 0
    for a, b in zip(nb["cells"], student["cells"]):
        src_a, src_b = "".join(a["source"]), "".join(b["source"])
        if "### BEGIN SOLUTION" in src_a and a["cell_type"] == "markdown":  # a written question's answer cell
            assert "### BEGIN SOLUTION" not in src_b and src_b.endswith(notebooks.ANSWER_STUB)
            model = src_a.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].strip()
            assert model and model not in src_b and src_b.splitlines()[0] == src_a.splitlines()[0]
        elif "### BEGIN SOLUTION" in src_a:
            n_regions += 1
            assert "### BEGIN SOLUTION" not in src_b and "raise NotImplementedError()" in src_b
            assert src_b.splitlines()[0] == src_a.splitlines()[0]  # the def line stays
        else:
            assert src_a == src_b and a["cell_type"] == b["cell_type"]
        if b["cell_type"] == "code":
            assert b["outputs"] == [] and b["execution_count"] is None
    assert n_regions >= 1, f"{path.name} has no graded exercise"
    assert student["metadata"] == nb["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_carry_nbgrader_metadata(path):
    """Stored as `python -m course_utils.grading metadata` writes them: solution cells and locked test cells."""
    nb = _load(path)
    assert nbgrader_metadata(nb) == nb, f"run: python -m course_utils.grading metadata {path.relative_to(ROOT)}"
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c.get("metadata", {})]
    assert len(ids) == len(set(ids)) and ids
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader")
        if "### BEGIN SOLUTION" in src and cell["cell_type"] == "markdown":  # manually graded answer
            assert meta["solution"] and meta["grade"] and meta["points"] >= 1 and not meta["locked"]
        elif "### BEGIN SOLUTION" in src:
            assert meta["solution"] and not meta["grade"]
            assert "# HINT" not in src.split("### BEGIN SOLUTION")[1], "hints go above the solution (nbgrader drops the region)"
        elif meta:
            assert meta["grade"] and meta["locked"] and meta["points"] >= 1 and "check(" in src
    for ex in graded_exercises(nb):
        assert ex["id"] in exercises(), f"{path.name} checks unregistered exercise {ex['id']}"


# ---------------------------------------------------------------- verdicts without a kernel

def test_judge_accepts_the_reference_and_rejects_other_inputs():
    from course_utils.grading import answers

    ex = exercises()["00.top_k"]
    honest = answers("00.top_k", lambda logits, k=5: _own_top_k(logits, k), seed=9)
    assert verdicts.judge("00.top_k", 9, honest)[:2] == ("passed", "passed all 6 cases.")
    # the same answers judged against another seed's cases: the inputs differ, which is tampering
    status, message, flags = verdicts.judge("00.top_k", 10, honest)
    assert status == "failed" and "other inputs" in message and flags
    # a case where the tripwire went off (the kernel's report of it): failed, and flagged
    tripped = {"cases": [dict(honest["cases"][0], raised=["ReferenceSwitchedOff", "RuntimeError", "Exception"],
                              message="switched off")]}
    del tripped["cases"][0]["value"]
    status, message, flags = verdicts.judge("00.top_k", 9, tripped)
    assert (status, flags) == ("failed", [verdicts.CALLS_REFERENCE]) and "Case 1 of 6" in message
    assert len(ex.cases(np.random.default_rng(9))) == 6
    assert verdicts.judge("00.top_k", 9, {"cases": []})[0] == "failed"
    assert verdicts.judge("00.top_k", 9, {"missing": True, "cases": []})[0] == "not attempted"


def _own_top_k(logits, k=5):
    import torch

    if k > logits.shape[-1]:
        raise ValueError("k is larger than the number of classes")
    p = torch.softmax(logits, dim=-1)
    order = torch.argsort(p, descending=True)[:k]
    return p[order], order


def test_static_flags_ignore_what_the_instructor_gave():
    source = _source_nb()
    given = student_version(source)
    sub = json.loads(json.dumps(given))
    sub["cells"][1]["source"] = "from course_utils.labels import top_k\n"
    assert verdicts.static_flags(sub, given, "00.top_k") == ["uses course_utils.labels.top_k, the reference"]
    sub["cells"][1]["source"] = "import course_utils.grading as g\ng.check = print\nx = g.exercises()['00.top_k'].reference"
    flags = verdicts.static_flags(sub, given, "00.top_k")
    assert {"changes course_utils inside the kernel", "reads an exercise's reference", "reads the exercise registry"} <= set(flags)
    assert verdicts.static_flags(given, given, "00.top_k") == []
    sub["cells"][1]["source"] = "from course_utils import labels\nsetattr(labels, 'top_k', None)\n%time x = 1"
    assert verdicts.static_flags(sub, given, "00.top_k") == ["changes course_utils inside the kernel"]
    sub["cells"][1]["source"] = "import course_utils as cu\ncu.images.PHOTOS['x'] = 1\ny = cu.top_k"
    assert verdicts.static_flags(sub, given, "00.top_k") == ["uses course_utils.labels.top_k, the reference"]


# ---------------------------------------------------------------- the sandbox

@pytest.mark.parametrize("isolate", [True, False], ids=["namespaces", "no-namespaces"])
def test_sandbox_kills_everything_it_started_at_the_time_limit(isolate):
    marker = f"987654.{int(isolate)}"
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
            "time.sleep(3600)\n")
    import sys

    r = sandbox.run([sys.executable, "-c", code], timeout=3, isolate=isolate)
    assert r.status == sandbox.TIMED_OUT and r.seconds < 30
    left = [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-1:] == [marker]]
    assert not left, "a process of the sandbox outlived it"


def test_a_sandbox_whose_starter_is_killed_dies_with_it(tmp_path):
    """A Dask worker killed mid-notebook (SIGKILL: nothing of it runs after) leaves no kernel behind: the
    sandbox's launcher (`parent`, as `sandbox kernel` runs) sees it was orphaned and kills what it ran."""
    import subprocess
    import sys

    marker = "987655"
    launcher = (f"import sys, os; from course_utils.grading import sandbox\n"
                f"sandbox.run(['sleep', '{marker}'], timeout=3600, parent=os.getppid(), capture=False)\n")
    starter = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys, time\n"
                                f"subprocess.Popen([sys.executable, '-c', {launcher!r}])\ntime.sleep(3600)\n"])

    def sleeping():
        return [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-1:] == [marker]]

    try:
        deadline = time.monotonic() + 60
        while not sleeping() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sleeping(), "the sealed command did not start"
    finally:
        starter.kill()
        starter.wait()
    deadline = time.monotonic() + 15
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sleeping(), "a sealed command outlived the process that started its sandbox"


def test_sandbox_stops_a_memory_hog():
    import sys

    r = sandbox.run([sys.executable, "-c", "x = []\nwhile True: x.append(b'x' * 50_000_000)"], timeout=60,
                    memory=400 << 20)
    assert r.status == sandbox.OUT_OF_MEMORY and r.peak_memory > 400 << 20


def test_sandbox_has_no_network():
    """A server on this machine's loopback cannot be reached from inside (nothing beyond it is tried)."""
    import sys

    require_isolation()

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('connected')\n"
            "except OSError as e:\n    print('refused', e)")
    r = sandbox.run([sys.executable, "-c", code], timeout=30)
    server.close()
    assert r.stdout.startswith("refused")
    outside = sandbox.run([sys.executable, "-c", "print('ok')"], isolate=False, timeout=30)
    assert outside.stdout == "ok\n"


def test_missing_isolation_is_a_reported_skip_or_in_ci_a_failure(monkeypatch):
    monkeypatch.setattr(sandbox, "backend", lambda prefer=None: (sandbox.NONE, "NOT SEALED: unshare failed (test)"))
    monkeypatch.delenv("COURSE_REQUIRE_ISOLATION", raising=False)
    with pytest.raises(pytest.skip.Exception, match="unshare failed"):
        require_isolation()
    monkeypatch.setenv("COURSE_REQUIRE_ISOLATION", "1")
    with pytest.raises(pytest.fail.Exception, match="COURSE_REQUIRE_ISOLATION=1"):
        require_isolation()


# ---------------------------------------------------------------- a class of adversarial submissions

TOP_K = '''def top_k(logits, k=5):
    ### BEGIN SOLUTION
    if k > logits.shape[-1]:
        raise ValueError(f"k={k} > {logits.shape[-1]} classes")
    p = torch.softmax(logits, dim=-1)
    values, indices = torch.sort(p, descending=True)
    return values[:k], indices[:k]
    ### END SOLUTION
'''
GUIDED = '''def guided_relu_backward(x, grad_output):
    ### BEGIN SOLUTION
    return grad_output * (x > 0) * (grad_output > 0)
    ### END SOLUTION
'''


def _nb(cells):
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c}
                      for c in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _source_nb():
    return nbgrader_metadata(_nb(["import torch\nfrom course_utils.grading import check", TOP_K,
                                  'check("00.top_k", top_k)', GUIDED,
                                  'check("04.guided_relu_backward", guided_relu_backward)']))


def _edit(nb, index, source):
    nb = json.loads(json.dumps(nb))
    nb["cells"][index]["source"] = source
    return nb


def _insert(nb, index, source):
    nb = json.loads(json.dumps(nb))
    nb["cells"].insert(index, _nb([source])["cells"][0])
    return nb


def _class(port):
    source = _source_nb()
    blank = student_version(source)
    wrong_top_k = TOP_K.replace("torch.sort(p, descending=True)", "p, torch.arange(len(p))")
    return {
        "honest": (source, ["passed", "passed"]),
        "wrong": (_edit(source, 1, wrong_top_k), ["failed", "passed"]),
        "blank": (blank, ["not attempted", "not attempted"]),
        # writes a results file, prints a pass, patches the checker, prints a line like the grader's
        "forger": (_edit(blank, 2, "import json, os\n"
                                   "open(os.environ.get('COURSE_GRADING_RESULTS', 'results.jsonl'), 'a').write("
                                   "json.dumps({'exercise': '00.top_k', 'status': 'passed', 'score': 1}) + '\\n')\n"
                                   "import course_utils.grading as g\n"
                                   "g.check = lambda *a, **k: print('\\u2713 00.top_k: passed all 6 cases.')\n"
                                   "print('@@answers-0000@@{\"cases\": []}')\n"
                                   "check('00.top_k', top_k)"), ["not attempted", "not attempted"]),
        "refcaller": (_edit(source, 1, "from course_utils.labels import top_k as reference_top_k\n\n"
                                       "def top_k(logits, k=5):\n    return reference_top_k(logits, k)\n"),
                      ["failed", "passed"]),
        "sneaky": (_edit(source, 1, "import importlib\nm = importlib.import_module('course_utils.' + 'lab' + 'els')\n"
                                    "top_k = getattr(m, 'top' + '_k')\n"), ["failed", "passed"]),
        "registry": (_edit(source, 1, "from course_utils import grading as g\n"
                                      "top_k = g.exercises()['00.top_k'].reference\n"), ["failed", "to review"]),
        # right answers, and a line that changes the course inside the kernel: each pass held for review (a
        # static flag is the notebook's, not one function's)
        "patient": (_insert(source, 2, "import course_utils as cu\ncu.DEFAULT_SIZE = 96"), ["to review", "to review"]),
        # deleted the check cells; one function wrong, the other exercise removed whole
        "nocheck": (_nb(["import torch", wrong_top_k]), ["failed", "not attempted"]),
        # patches the grading module inside the kernel: checks pass, cases change
        "patcher": (_edit(blank, 2, "import dataclasses, course_utils.grading as g\n"
                                    "real = g.exercise\n"
                                    "g.exercise = lambda i: dataclasses.replace(real(i), cases=lambda rng: [])\n"
                                    "g.run_cases = lambda *a, **k: g.CheckResult(a[0].id, 'passed', 'ok')\n"
                                    "check('00.top_k', top_k)"), ["not attempted", "not attempted"]),  # the patch misses the answers code (registry)
        "crashy": (_insert(source, 1, "1 / 0"), ["passed", "passed"]),
        "quitter": (_insert(source, 5, "import os\nos._exit(0)"), ["crashed", "crashed"]),
        "sleeper": (_insert(source, 3, "import time\ntime.sleep(3600)"), ["passed", "timed out"]),
        "stubborn": (_insert(source, 1, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                        "time.sleep(3600)"), ["timed out", "timed out"]),
        "forker": (_insert(source, 1, "import subprocess\n"
                                      "subprocess.Popen(['sleep', '876543.5'], start_new_session=True)"),
                   ["passed", "passed"]),
        "hog": (_insert(source, 1, "x = []\nwhile True:\n    x.append(b'x' * 50_000_000)"), ["crashed", "crashed"]),
        "network": (_insert(source, 1, f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), "
                                       f"timeout=3).sendall(b'leak')\nexcept OSError as e:\n    print(e)"),
                    ["passed", "passed"]),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    source_dir, subs = tmp / "source", tmp / "submissions"
    source_dir.mkdir()
    (source_dir / "hw.ipynb").write_text(json.dumps(_source_nb()))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    heard, done = [], threading.Event()

    def listen():
        while not done.is_set():
            try:
                heard.append(server.accept())
            except OSError:
                continue

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    klass = _class(server.getsockname()[1])
    for student, (nb, _) in klass.items():
        (subs / student).mkdir(parents=True)
        (subs / student / "hw.ipynb").write_text(json.dumps(nb))
    (subs / "zed").mkdir()
    (subs / "zed" / "hw.ipynb").write_text("this is not a notebook")
    # every student here hands in the same code: the copy check (tests/test_similarity.py) is not the point
    rows = classroom.grade(str(subs), str(source_dir), str(tmp / "grades.csv"), timeout=40, jobs=2, memory=1536 << 20,
                        seed=1234, feedback_dir=str(tmp / "feedback"), answer_timeout=30, similar=None)
    done.set()
    listener.join(2)
    server.close()
    return klass, rows, tmp, heard


def test_every_row_of_an_adversarial_class_is_right(graded):
    klass, rows, _, _ = graded
    got = {}
    for r in rows:
        got.setdefault(r["student"], []).append(r["status"])
    expected = {s: statuses for s, (_, statuses) in klass.items()}
    expected["zed"] = ["crashed", "crashed"]
    assert got == expected
    for r in rows:
        assert r["score"] == (1 if r["status"] == "passed" else 0)
        assert [x["exercise"] for x in rows if x["student"] == r["student"]] == ["00.top_k", "04.guided_relu_backward"]


def test_the_instructor_sees_who_used_the_reference_or_the_grader(graded):
    _, rows, _, _ = graded
    flags = {(r["student"], r["exercise"]): r["flags"] for r in rows}
    assert "uses course_utils.labels.top_k, the reference" in flags["refcaller", "00.top_k"]
    assert verdicts.CALLS_REFERENCE in flags["refcaller", "00.top_k"]
    assert flags["sneaky", "00.top_k"] == verdicts.CALLS_REFERENCE  # no name in the source: the tripwire caught it
    assert "reads an exercise's reference" in flags["registry", "00.top_k"]
    assert verdicts.CALLS_REFERENCE in flags["registry", "00.top_k"]
    assert "changes course_utils inside the kernel" in flags["forger", "00.top_k"]
    assert "changes course_utils inside the kernel" in flags["patcher", "00.top_k"]
    for student in ("honest", "wrong", "blank", "nocheck", "crashy", "sleeper", "forker", "network"):
        assert not flags[student, "00.top_k"] and not flags[student, "04.guided_relu_backward"], student


def test_a_flagged_pass_scores_nothing_until_a_person_accepts_it(graded, tmp_path):
    _, rows, tmp, _ = graded
    held = [r for r in rows if r["status"] == "to review"]
    assert sorted((r["student"], r["exercise"]) for r in held) == [
        ("patient", "00.top_k"), ("patient", "04.guided_relu_backward"), ("registry", "04.guided_relu_backward")]
    assert all(r["score"] == 0 and r["flags"] and "once a person accepts it" in r["message"] for r in held)
    csv_path = tmp_path / "grades.csv"
    csv_path.write_text((tmp / "grades.csv").read_text())
    with pytest.raises(SystemExit, match="not a row held for review.*patient:00.top_k"):
        classroom.review(str(csv_path), accept=["honest:00.top_k"])
    assert [r["status"] for r in classroom.review(str(csv_path))] == [r["status"] for r in rows]  # nothing settled
    settled = {(r["student"], r["exercise"]): r for r in classroom.review(str(csv_path), accept=["patient:00.top_k"])}
    assert (settled["patient", "00.top_k"]["status"], settled["patient", "00.top_k"]["score"]) == ("passed", 1)
    csv_path.write_text((tmp / "grades.csv").read_text())
    settled = {(r["student"], r["exercise"]): r for r in classroom.review(str(csv_path), reject=["patient:00.top_k"])}
    assert (settled["patient", "00.top_k"]["status"], settled["patient", "00.top_k"]["score"]) == ("rejected", 0)
    with open(csv_path) as f:  # written back
        assert ("patient", "rejected") in {(r["student"], r["status"]) for r in csv.DictReader(f)}
    # --flagged keep: the same rows keep their point, the flag beside it
    kept = classroom.hold_flagged([{"status": "passed", "score": 1, "points": 1, "flags": "calls the reference", "message": ""},
                                {"status": "failed", "score": 0, "points": 1, "flags": "x", "message": ""}], "keep")
    assert [(r["status"], r["score"]) for r in kept] == [("passed", 1), ("failed", 0)]
    reviewed = classroom.hold_flagged(kept, "review")
    assert [(r["status"], r["score"]) for r in reviewed] == [("to review", 0), ("failed", 0)]
    with pytest.raises(ValueError):
        classroom.hold_flagged([], "ignore")


def test_messages_say_what_happened(graded):
    _, rows, tmp, _ = graded
    msg = {(r["student"], r["exercise"]): r["message"] for r in rows}
    assert msg["wrong", "00.top_k"].startswith("Case 1 of 6")
    assert "out of memory" in msg["hog", "00.top_k"]
    assert "died" in msg["quitter", "00.top_k"]
    assert msg["zed", "00.top_k"].startswith("cannot read the notebook")
    with open(tmp / "grades.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r["student"], r["exercise"], r["status"]) for r in csv_rows] == \
        [(r["student"], r["exercise"], r["status"]) for r in rows]
    assert {r["seed"] for r in csv_rows} == {"1234"}
    page = (tmp / "feedback" / "wrong.html").read_text()
    assert "Score: 1 / 2" in page and "Case 1 of 6" in page
    assert "division by zero" in (tmp / "feedback" / "crashy.html").read_text()


def test_nothing_of_a_submission_outlives_the_grading(graded):
    _, _, _, heard = graded
    left = [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-1:] == ["876543.5"]]
    assert not left
    require_isolation()
    assert not heard, "a submission reached a server on the grader's machine"


def test_student_versions_are_not_attempted_and_the_model_solutions_pass(tmp_path):
    """`make assignments` output of 00 and 04, graded: every exercise 'not attempted', no crash; the same two as
    solved pass. (Every notebook's student version runs to the end under nbclient in tests/test_nbconvert.py,
    and every exercise's stub is 'not attempted' for the check and the grader in tests/test_mistakes.py: here
    the grader's whole path, sandbox and kernel included, meets real notebooks.)"""
    names = ("00_start_here.ipynb", "04_guided_backprop.ipynb")
    (tmp_path / "subs" / "student").mkdir(parents=True)
    (tmp_path / "subs" / "teacher").mkdir()
    for name in names:
        source = _load(ROOT / "notebooks" / name)
        (tmp_path / "subs" / "student" / name).write_text(json.dumps(student_version(source)))
        (tmp_path / "subs" / "teacher" / name).write_text(json.dumps(source))  # the model solution itself
    rows = classroom.grade(str(tmp_path / "subs"), str(ROOT / "notebooks"), None, timeout=900, jobs=2, similar=None)
    student = [r for r in rows if r["student"] == "student" and r["notebook"] in names]
    assert len(student) == sum(len(graded_exercises(_load(ROOT / "notebooks" / n)))
                               + len(notebooks.written_questions(_load(ROOT / "notebooks" / n))) for n in names)
    bad = [(r["notebook"], r["exercise"], r["status"], r["message"]) for r in student if r["status"] != "not attempted"]
    assert not bad
    teacher = [(r["exercise"], r["status"]) for r in rows if r["student"] == "teacher" and r["status"] != "not submitted"]
    assert teacher == [("00.top_k", "passed"), ("04.guided_relu_backward", "passed"), ("04.grad_cam_from", "passed"),
                       ("04.zf_projection", "passed"), ("04.projection_without_pooling", "to read")]


# ---------------------------------------------------------------- written questions

WRITTEN_Q = "**Question.** Why is the sky blue?"
WRITTEN_A = ("**Your answer** (written question `00.sky`):\n\n### BEGIN SOLUTION\nRayleigh scattering: blue light "
             "scatters more (it goes as 1 / wavelength^4).\n### END SOLUTION")


def _md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def _written_source():
    nb = _nb(["import torch\nfrom course_utils.grading import check", TOP_K, 'check("00.top_k", top_k)'])
    nb["cells"] += [_md(WRITTEN_Q), _md(WRITTEN_A)]
    return nbgrader_metadata(nb)


def test_written_questions_metadata_student_version_and_answers():
    source = _written_source()
    meta = source["cells"][-1]["metadata"]["nbgrader"]
    assert meta == {"grade": True, "grade_id": "00_sky", "locked": False, "points": 1, "schema_version": 3,
                    "solution": True, "task": False}
    assert notebooks.written_questions(source) == [{"id": "00.sky", "points": 1, "question": WRITTEN_Q,
                                                 "model_answer": "Rayleigh scattering: blue light scatters more "
                                                                 "(it goes as 1 / wavelength^4)."}]
    blank = student_version(source)
    assert blank["cells"][-1]["source"] == "**Your answer** (written question `00.sky`):\n\n" + notebooks.ANSWER_STUB
    assert notebooks.written_answer(blank, "00.sky") == ""
    answered = json.loads(json.dumps(blank))
    answered["cells"][-1]["source"] = "**Your answer** (written question `00.sky`):\n\nBecause of the sea."
    assert notebooks.written_answer(answered, "00.sky") == "Because of the sea."
    assert notebooks.written_answer(_nb(["x = 1"]), "00.sky") is None
    bad = _nb([])
    bad["cells"].append(_md("### BEGIN SOLUTION\nan answer without a marker\n### END SOLUTION"))
    with pytest.raises(ValueError, match="written question"):
        nbgrader_metadata(bad)


def test_written_answers_are_left_to_a_person(tmp_path):
    source = _written_source()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "00_sky.ipynb").write_text(json.dumps(source))
    blank = student_version(source)
    answered = json.loads(json.dumps(source))  # the solutions, with an answer of the student's own
    answered["cells"][-1]["source"] = "**Your answer** (written question `00.sky`):\n\nShort waves scatter more."
    deleted = json.loads(json.dumps(answered))
    del deleted["cells"][-1]
    for student, nb in {"ann": answered, "bob": blank, "cy": deleted}.items():
        (tmp_path / "subs" / student).mkdir(parents=True)
        (tmp_path / "subs" / student / "00_sky.ipynb").write_text(json.dumps(nb))
    rows = classroom.grade(str(tmp_path / "subs"), str(tmp_path / "src"), out_csv=str(tmp_path / "out" / "grades.csv"),
                        seed=1, timeout=120, feedback_dir=str(tmp_path / "out" / "feedback"), similar=None)
    got = {(r["student"], r["exercise"]): (r["status"], r["score"], r["points"]) for r in rows}
    assert got == {("ann", "00.top_k"): ("passed", 1, 1), ("ann", "00.sky"): ("to read", 0, 1),
                   ("bob", "00.top_k"): ("not attempted", 0, 1), ("bob", "00.sky"): ("not attempted", 0, 1),
                   ("cy", "00.top_k"): ("passed", 1, 1), ("cy", "00.sky"): ("not attempted", 0, 1)}
    assert "deleted" in next(r["message"] for r in rows if r["student"] == "cy" and r["exercise"] == "00.sky")
    page = (tmp_path / "out" / "written_answers.html").read_text()
    assert "Why is the sky blue?" in page and "Rayleigh scattering" in page and "Short waves scatter more." in page
    assert "1 of 3 answered" in page
    with open(tmp_path / "out" / "grades.csv") as f:
        assert "Short waves" not in f.read()  # the CSV holds verdicts, not texts
    assert "to read" in (tmp_path / "out" / "feedback" / "ann.html").read_text()
