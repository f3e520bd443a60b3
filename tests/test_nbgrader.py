"""The notebooks under real nbgrader (a test-only dependency): generate_assignment and autograde.

A course folder as an instructor makes it: source/ps1/ holds the course's notebooks; nbgrader writes
release/ (the student versions) and, from submitted/<student>/ps1/, autograded/ and the gradebook.
"""
import copy
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
pytest.importorskip("nbgrader")


def _nbgrader(course, *args, timeout=900):
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MPLBACKEND", None)  # as an instructor runs it: inline figures
    r = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    (course / "source" / "ps1").mkdir(parents=True)
    for path in NOTEBOOKS:
        (course / "source" / "ps1" / path.name).write_text(path.read_text())
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'cnn-vis'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course}/gradebook.db'\n")
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    return course


def _cells(nb, key):
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get(key)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_generate_assignment_removes_every_solution(course, path):
    source = json.loads(path.read_text())
    release = json.loads((course / "release" / "ps1" / path.name).read_text())
    assert len(release["cells"]) == len(source["cells"])
    solutions, released = _cells(source, "solution"), _cells(release, "solution")
    assert len(solutions) == len(released) >= 1
    for src, rel in zip(solutions, released):
        text = "".join(rel["source"])
        if src["cell_type"] == "markdown":  # a written question: the model answer goes, the student writes
            model = "".join(src["source"]).split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            assert "BEGIN SOLUTION" not in text and "YOUR ANSWER HERE" in text
            assert not any(line.strip() and line.strip() in text for line in model.splitlines())
            meta = rel["metadata"]["nbgrader"]
            assert meta["grade"] and meta["solution"] and meta["points"] >= 1 and not meta.get("locked")
            continue
        assert "BEGIN SOLUTION" not in text and "raise NotImplementedError()" in text
        body = "".join(src["source"]).split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        code = "\n".join(l for l in text.splitlines() if "# HINT" not in l and "NotImplementedError" not in l)
        for line in body.strip().splitlines():  # no line of the solution survives (hints may quote one)
            assert line.strip() not in code, line
        assert "# HINT" not in body and all(h in text for h in "".join(src["source"]).splitlines() if "# HINT" in h)
    tests = [c for c in _cells(release, "grade") if c["cell_type"] == "code"]
    assert tests and all(c["metadata"]["nbgrader"]["locked"] and c["metadata"].get("editable") is False for c in tests)


def _submit(course, student, nb):
    folder = course / "submitted" / student / "ps1"
    folder.mkdir(parents=True)
    (folder / "00_start_here.ipynb").write_text(json.dumps(nb))


def test_autograde_gives_exactly_the_expected_points(course):
    release = json.loads((course / "release" / "ps1" / "00_start_here.ipynb").read_text())
    source = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    solution = "".join(_cells(source, "solution")[0]["source"])
    wrong = solution.replace("torch.sort(p, descending=True)", "p, torch.arange(len(p))")
    assert wrong != solution

    def answered(text):
        nb = copy.deepcopy(release)
        _cells(nb, "solution")[0]["source"] = text
        return nb

    no_check = answered(wrong)
    no_check["cells"] = [c for c in no_check["cells"] if not c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    submissions = {"right": answered(solution), "wrong": answered(wrong), "blank": release, "nocheck": no_check}
    for student, nb in submissions.items():
        _submit(course, student, nb)
    _nbgrader(course, "autograde", "ps1", "--create", "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        found = {s: gb.find_submission_notebook("00_start_here", "ps1", s) for s in submissions}
        points = {s: (nb.score, nb.max_score) for s, nb in found.items()}
    assert points == {"right": (1, 1), "wrong": (0, 1), "blank": (0, 1), "nocheck": (0, 1)}


def test_sealed_autograde_keeps_every_other_file_as_it_was(tmp_path):
    """nbgrader's autograde with the course's sealed kernel (README): a submission that rewrites and deletes
    every file of the course folder it can reach changes nothing outside its own autograded copy."""
    from course_utils.grading import sandbox
    from helpers import require_isolation
    from test_sealed import _digest, _source, _with

    require_isolation()
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    (course / "source" / "ps1" / "hw.ipynb").write_text(json.dumps(_source()))
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'sealed'\n")
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    wipe = ("import os\n"
            f"for d, _, files in os.walk({str(course)!r}):\n"
            "    for f in files:\n"
            "        for harm in (lambda p: open(p, 'w').write('{}'), os.remove):\n"
            "            try:\n"
            "                harm(os.path.join(d, f))\n"
            "            except OSError:\n"
            "                pass\n")
    for student, nb in {"aaa-wiper": _with(wipe), "honest": _source(), "zz-honest": _source()}.items():
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        (course / "submitted" / student / "ps1" / "hw.ipynb").write_text(json.dumps(nb))
    sandbox.install_kernel(str(tmp_path / "jupyter"), "course-sealed", timeout=300, memory=3 << 30)
    before = {p: _digest(course / p) for p in ("submitted", "source", "release")}
    env_path = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp_path / "jupyter")
    try:
        _nbgrader(course, "autograde", "ps1", "--create", "--force", "--ExecutePreprocessor.kernel_name=course-sealed",
                  "--KernelManager.transport=ipc")
    finally:
        os.environ.pop("JUPYTER_PATH") if env_path is None else os.environ.__setitem__("JUPYTER_PATH", env_path)
    assert {p: _digest(course / p) for p in before} == before
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db") as gb:
        scores = {s: gb.find_submission_notebook("hw", "ps1", s).score for s in ("aaa-wiper", "honest", "zz-honest")}
    assert scores == {"aaa-wiper": 1, "honest": 1, "zz-honest": 1}
    assert json.loads((course / "autograded" / "honest" / "ps1" / "hw.ipynb").read_text())["cells"]
