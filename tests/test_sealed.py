"""A class that tries to hurt the class: every submission sealed off from the files.

An nbgrader-style course folder (source/hw/, submitted/<student>/hw/, the grader's output in build/) is
graded with bubblewrap and with the unshare fallback. Hostile submissions know every absolute path and try
to rewrite the other submissions and the instructor's source notebooks, poison the Python environment and
the course package, write the grader's CSV, read a classmate's answer, or hand in a link to one. The
whole course folder, site-packages and the package are checksummed before and after: byte-identical, and
every honest student's grade is right.
"""
import csv
import hashlib
import json
import os
import pathlib
import sys

import pytest

import course_utils
from course_utils.grading import classroom, sandbox
from course_utils.grading.notebooks import nbgrader_metadata, student_version
from helpers import require_isolation

TOP_K = '''def top_k(logits, k=5):
    ### BEGIN SOLUTION
    if k > logits.shape[-1]:
        raise ValueError(f"k={k} > {logits.shape[-1]} classes")
    p = torch.softmax(logits, dim=-1)
    values, indices = torch.sort(p, descending=True)
    return values[:k], indices[:k]
    ### END SOLUTION
'''


def _nb(cells):
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c}
                      for c in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _source():
    return nbgrader_metadata(_nb(["import torch\nfrom course_utils.grading import check", TOP_K,
                                  'check("00.top_k", top_k)']))


def _with(cell, nb=None):
    nb = json.loads(json.dumps(nb or _source()))
    nb["cells"].insert(1, _nb([cell])["cells"][0])
    return nb


def _attacks(course, out):
    """{student: (notebook, expected status of 00.top_k)}; every attacker also answers top_k right."""
    site = next(p for p in sys.path if p.endswith("site-packages"))
    package = os.path.dirname(course_utils.__file__)
    targets = [str(course / "submitted"), str(course / "source"), str(out)]
    wipe = (
        "import os, json\n"
        "hit = []\n"
        f"for root in {targets!r} + [os.path.dirname(os.path.dirname(os.getcwd())), '..', '../..']:\n"
        "    for d, _, files in os.walk(root):\n"
        "        for f in files:\n"
        "            p = os.path.join(d, f)\n"
        "            try:\n"
        "                open(p, 'w').write('{\"cells\": []}')\n"
        "                hit.append(p)\n"
        "            except OSError:\n"
        "                pass\n"
        "            try:\n"
        "                os.remove(p)\n"
        "                hit.append('removed ' + p)\n"
        "            except OSError:\n"
        "                pass\n"
        "print('wrote', hit)\n")
    poison = (
        "import os\n"
        f"for p in [{site!r} + '/zz_course_evil.pth', {site!r} + '/sitecustomize.py', {package!r} + '/evil.py',\n"
        f"          {package!r} + '/__init__.py', {site!r} + '/torch/__init__.py']:\n"
        "    try:\n"
        "        open(p, 'a').write('\\nimport os; os.system(\"touch /tmp/pwned\")\\n')\n"
        "        print('poisoned', p)\n"
        "    except OSError as e:\n"
        "        print('refused', p, e)\n")
    report = (
        "import os\n"
        f"for p in [{str(out / 'grades.csv')!r}, {str(out / 'feedback' / 'honest.html')!r}, {str(out / 'evil.txt')!r}]:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(p), exist_ok=True)\n"
        "        open(p, 'w').write('student,notebook,exercise,status,score\\nattacker,hw.ipynb,00.top_k,passed,100\\n')\n"
        "    except OSError as e:\n"
        "        print('refused', p, e)\n")
    peek = (
        "import json\n"
        f"other = json.load(open({str(course / 'submitted' / 'honest' / 'hw' / 'hw.ipynb')!r}))\n"
        "exec(other['cells'][1]['source'])\n")
    blank = student_version(_source())
    return {
        "aaa-wiper": (_with(wipe), "passed"),  # sorts first: graded before everyone else
        "aab-poisoner": (_with(poison), "passed"),
        "aac-reporter": (_with(report), "passed"),
        "honest": (_source(), "passed"),
        "peeker": (_with(peek, blank), "not attempted"),  # cannot read the classmate: top_k stays a stub
        "zz-honest": (_source(), "passed"),
    }


def _digest(root):
    """{path: sha256, or size and mtime for files over 2 MB} of every file under root (links as links)."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            if os.path.islink(p):
                out[p] = "link " + os.readlink(p)
            elif st.st_size > 2 << 20:
                out[p] = (st.st_size, st.st_mtime_ns)
            else:
                out[p] = hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()
    return out


def write_hostile_class(course, out):
    """COURSE/source/hw/hw.ipynb and COURSE/submitted/<attacker>/hw/hw.ipynb (`_attacks`, aimed at `out`),
    and a link handed in instead of a notebook (to a classmate's); returns the attacks."""
    (course / "source" / "hw").mkdir(parents=True)
    (course / "source" / "hw" / "hw.ipynb").write_text(json.dumps(_source()))
    attacks = _attacks(course, out)
    for student, (nb, _) in attacks.items():
        (course / "submitted" / student / "hw").mkdir(parents=True)
        (course / "submitted" / student / "hw" / "hw.ipynb").write_text(json.dumps(nb))
    (course / "submitted" / "linker" / "hw").mkdir(parents=True)
    os.symlink(course / "submitted" / "honest" / "hw" / "hw.ipynb", course / "submitted" / "linker" / "hw" / "hw.ipynb")
    return attacks


@pytest.fixture(scope="module", params=[sandbox.BWRAP, sandbox.UNSHARE])
def hostile_class(request, tmp_path_factory):
    backend = request.param
    sandbox.backend.cache_clear()
    if sandbox.backend(backend)[0] != backend:
        sandbox.backend.cache_clear()
        pytest.skip(f"{backend} cannot seal here: {sandbox.backend(backend)[1]}")
    old = os.environ.get("COURSE_SANDBOX")
    os.environ["COURSE_SANDBOX"] = backend  # the kernels' wrapper process reads it
    sandbox.backend.cache_clear()
    course = tmp_path_factory.mktemp(f"course-{backend}")
    out = course / "build"
    attacks = write_hostile_class(course, out)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    watched = [str(course / "submitted"), str(course / "source"), os.path.dirname(course_utils.__file__)]
    before = {w: _digest(w) for w in watched}
    site_before = _digest(site)
    try:
        rows = classroom.grade(str(course / "submitted"), str(course / "source" / "hw"), str(out / "grades.csv"),
                            timeout=60, jobs=2, memory=2 << 30, seed=7, feedback_dir=str(out / "feedback"),
                            flagged="keep")  # everyone hands in the model solution: all flagged as copies, kept
    finally:
        os.environ.pop("COURSE_SANDBOX") if old is None else os.environ.__setitem__("COURSE_SANDBOX", old)
        sandbox.backend.cache_clear()
    return {"attacks": attacks, "rows": rows, "before": before, "after": {w: _digest(w) for w in watched},
            "site": (site_before, _digest(site)), "out": out, "backend": backend}


def test_nothing_outside_a_submissions_own_copy_changes(hostile_class):
    require_isolation()
    for folder, digest in hostile_class["before"].items():
        assert hostile_class["after"][folder] == digest, f"{folder} changed"
    before, after = hostile_class["site"]
    assert after == before, sorted(set(after) ^ set(before))[:10]
    assert not os.path.exists("/tmp/pwned")


def test_every_honest_grade_is_right_and_the_attackers_gain_nothing(hostile_class):
    require_isolation()
    status = {r["student"]: r["status"] for r in hostile_class["rows"] if r["exercise"] == "00.top_k"}
    expected = {s: st for s, (_, st) in hostile_class["attacks"].items()}
    expected["linker"] = "crashed"
    assert status == expected
    copies = {r["student"] for r in hostile_class["rows"] if "similar to the model solution" in r["flags"]}
    assert copies == {s for s, st in expected.items() if st == "passed"}  # the same code as the model solution
    linker = next(r for r in hostile_class["rows"] if r["student"] == "linker")
    assert "symbolic link" in linker["message"]
    with open(hostile_class["out"] / "grades.csv") as f:  # the grader's own CSV, not the attacker's
        written = list(csv.DictReader(f))
    assert {r["student"] for r in written} == set(expected) and not any(r["student"] == "attacker" for r in written)
    assert not (hostile_class["out"] / "evil.txt").exists()


def test_the_attacks_are_real_unsealed_they_do_the_harm(tmp_path):
    """The same wiper and poisoner, run without the sandbox against a throwaway course folder and package copy:
    they rewrite the submissions and the sources, so the tests above see the sandbox stop real attacks."""
    course, out = tmp_path / "course", tmp_path / "course" / "build"
    for who in ("honest", "other"):
        (course / "submitted" / who / "hw").mkdir(parents=True)
        (course / "submitted" / who / "hw" / "hw.ipynb").write_text(json.dumps(_source()))
    (course / "source" / "hw").mkdir(parents=True)
    (course / "source" / "hw" / "hw.ipynb").write_text(json.dumps(_source()))
    wiper = "".join(_attacks(course, out)["aaa-wiper"][0]["cells"][1]["source"])
    r = sandbox.run([sys.executable, "-c", wiper], timeout=60, isolate=False, cwd=course / "submitted" / "honest" / "hw")
    assert r.status == sandbox.OK, r.stderr
    assert not (course / "source" / "hw" / "hw.ipynb").exists()  # removed
    assert not any((course / "submitted").rglob("*.ipynb"))


@pytest.mark.parametrize("backend", [sandbox.BWRAP, sandbox.UNSHARE])
def test_an_environment_inside_tmp_stays_readable(backend, tmp_path, monkeypatch):
    """A clone in /tmp (as CI makes one) has its environment there: the empty /tmp goes under it, not over it."""
    sandbox.backend.cache_clear()
    if sandbox.backend(backend)[0] != backend:
        sandbox.backend.cache_clear()
        pytest.skip(f"{backend} cannot seal here")
    env = tmp_path / "env"
    env.mkdir()
    (env / "lib.txt").write_text("here\n")
    monkeypatch.setenv("COURSE_SANDBOX", backend)
    monkeypatch.setattr(sandbox, "readable", lambda: sandbox._system_paths() + [str(env)])
    try:
        work = tmp_path / "work"
        work.mkdir()
        r = sandbox.run(["/bin/sh", "-c", f"cat {env}/lib.txt; ls /tmp"], timeout=30, writable=[work], cwd=work)
    finally:
        sandbox.backend.cache_clear()
    assert r.stdout.splitlines()[0] == "here", r.stderr
