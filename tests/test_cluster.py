"""Grading a class on Dask (`course_utils.grading.cluster`), on a real cluster on this machine: a
`LocalCluster` of 2 worker processes of 1 thread (so at most 2 sealed kernels at once on 2 cores), and the
`dask scheduler` / `dask worker` commands a lab's machines would run.

The class: 6 students x 2 small notebooks (the real exercises 00.top_k and 04.guided_relu_backward, no
ImageNet model, so each notebook runs in seconds), one of them not handed in. The truth every cluster run
is held to is the grader on this machine with the same seed: the same CSV, byte for byte.
"""
import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest
import yaml
from distributed import Client, get_task_stream

from course_utils.grading import classroom, cluster, submission
from course_utils.grading.notebooks import nbgrader_metadata, student_version
from helpers import require_isolation
from test_grader import GUIDED, TOP_K, _edit, _insert, _nb
from test_sealed import _digest, write_hostile_class

SEED = 7
HW1 = nbgrader_metadata(_nb(["import torch\nfrom course_utils.grading import check", TOP_K, 'check("00.top_k", top_k)']))
HW2 = nbgrader_metadata(_nb(["import torch\nfrom course_utils.grading import check", GUIDED,
                             'check("04.guided_relu_backward", guided_relu_backward)']))
WRONG = TOP_K.replace("torch.sort(p, descending=True)", "p, torch.arange(len(p))")
CLASS = {
    "honest": (HW1, HW2),
    "wrong": (_edit(HW1, 1, WRONG), HW2),
    "blank": (student_version(HW1), student_version(HW2)),
    "refcaller": (_edit(HW1, 1, "from course_utils.labels import top_k as reference_top_k\n\n"
                                "def top_k(logits, k=5):\n    return reference_top_k(logits, k)\n"), HW2),
    "slow": (_insert(HW1, 1, "import time\ntime.sleep(8)"), HW2),  # long enough to be caught running
    "late": (HW1, None),  # hw2 not handed in
}
SUBMITTED = sum(nb is not None for nbs in CLASS.values() for nb in nbs)  # 11 notebooks to run
# a notebook that never ends on its own; the kill test kills the worker running it each time
POISON = _insert(_edit(HW1, 1, "def top_k(logits, k=5):\n    return torch.topk(logits.softmax(-1), k)\n"), 1,
                 "import time\ntime.sleep(300)")


def _write_class(root, klass):
    source, subs = root / "source", root / "submissions"
    source.mkdir(parents=True)
    (source / "hw1.ipynb").write_text(json.dumps(HW1))
    (source / "hw2.ipynb").write_text(json.dumps(HW2))
    for student, nbs in klass.items():
        (subs / student).mkdir(parents=True)
        for name, nb in zip(("hw1.ipynb", "hw2.ipynb"), nbs):
            if nb is not None:
                (subs / student / name).write_text(json.dumps(nb))
    return subs, source


def _csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _sealed_kernels():
    """The sealed kernels alive on this machine (the grader's `sandbox kernel` processes)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if os.path.join("grading", "sandbox.py") in cmd and " kernel " in f"{cmd} ":
            found.append(p.pid)
    return found


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The class graded on this machine (2 jobs): the truth for the cluster's runs."""
    require_isolation()
    root = tmp_path_factory.mktemp("local")
    subs, source = _write_class(root, CLASS)
    rows = classroom.grade(str(subs), str(source), str(root / "grades.csv"), timeout=60, jobs=2, memory=1536 << 20,
                           seed=SEED, answer_timeout=30)
    return root, rows


@pytest.fixture(scope="module")
def client():
    """A real Dask cluster: 2 worker processes of 1 thread each, as `--cluster local` starts it (tests/conftest.py
    checks it leaves this process's thread settings as they were, worker restarts included)."""
    c = cluster.connect(cluster="local", workers=2, tries=2)
    try:
        yield c
    finally:
        cluster.close(c)


def _ran(task_stream):
    """student/notebook of each grading task the cluster ran (keys "grade-NNNNNN-student/notebook")."""
    return [t["key"].split("-", 2)[2] for t in task_stream.data if t["key"].startswith("grade-")]


def test_a_worker_divides_the_cores_as_jobs_does(client):
    # 2 workers of 1 thread on this machine: each notebook gets cores // 2 threads, as --jobs 2 gives
    cores = len(os.sched_getaffinity(0))
    assert client.submit(cluster.notebook_threads, pure=False).result() == max(1, cores // 2)


def test_the_class_graded_on_the_cluster_gives_the_same_csv(local, client, tmp_path, capsys):
    root, rows = local
    subs, source = _write_class(tmp_path, CLASS)
    with get_task_stream(client) as ts:
        got = classroom.grade(str(subs), str(source), str(tmp_path / "grades.csv"), timeout=60, memory=1536 << 20,
                              seed=SEED, answer_timeout=30, client=client)
    assert (tmp_path / "grades.csv").read_text() == (root / "grades.csv").read_text()
    assert [{k: r[k] for k in classroom.FIELDS} for r in got] == [{k: r[k] for k in classroom.FIELDS} for r in rows]
    # one task per submitted notebook; the cluster ran them (the verdicts were computed here)
    assert sorted(_ran(ts)) == sorted(f"{s}/{n}" for s, nbs in CLASS.items()
                                      for n, nb in zip(("hw1.ipynb", "hw2.ipynb"), nbs) if nb)
    err = capsys.readouterr().err
    assert "dashboard: http://" in err and f"seed {SEED}" in err
    statuses = {(r["student"], r["notebook"]): r["status"] for r in got}
    assert statuses[("wrong", "hw1.ipynb")] == "failed" and statuses[("late", "hw2.ipynb")] == "not submitted"
    assert statuses[("refcaller", "hw1.ipynb")] == "failed" and statuses[("honest", "hw2.ipynb")] == "passed"


def _killer(client, plan, stop, killed):
    """Kill (SIGKILL, as the kernel's OOM killer would) the worker process running a task: plan maps a part
    of a task's key to (seconds it must have run, how many times to kill)."""
    seen = {}
    while not stop.is_set():
        for address, keys in client.processing().items():
            for key in keys:
                for part, (after, times) in plan.items():
                    if part in str(key) and killed.count(part) < times:
                        first = seen.setdefault((address, key), time.monotonic())
                        if time.monotonic() - first >= after:
                            try:
                                pid = client.run(os.getpid, workers=[address])[address]
                            except Exception:  # that worker is already gone (the scheduler has not seen it yet)
                                continue
                            os.kill(pid, signal.SIGKILL)
                            killed.append(part)
                            seen.clear()
        time.sleep(0.2)


def test_killed_workers_lose_nothing_and_a_notebook_that_kills_every_worker_is_crashed(local, client, tmp_path):
    root, rows = local
    subs, source = _write_class(tmp_path, dict(CLASS, zz_poison=(POISON, None)))
    stop, killed = threading.Event(), []
    leftovers = set(glob.glob(os.path.join(tempfile.gettempdir(), "grading-*")))
    killer = threading.Thread(target=_killer, args=(client, {"slow/hw1": (3, 1), "zz_poison/hw1": (2, 9)}, stop, killed))
    killer.start()
    try:
        # tries=2 (the fixture's scheduler); the submissions reach the workers by their path (--files shared)
        got = classroom.grade(str(subs), str(source), str(tmp_path / "grades.csv"), timeout=400, memory=1536 << 20,
                              seed=SEED, answer_timeout=30, client=client, files="shared", tries=2)
    finally:
        stop.set()
        killer.join()
    assert killed.count("slow/hw1") == 1 and killed.count("zz_poison/hw1") == 2
    table = _csv(tmp_path / "grades.csv")
    pairs = [(r["student"], r["exercise"]) for r in table]
    assert len(pairs) == len(set(pairs)) == 2 * (len(CLASS) + 1)  # every (student, exercise) exactly once
    # the slow notebook, run again on the other worker, and everyone else: as graded on one machine
    assert [r for r in table if r["student"] != "zz_poison"] == _csv(root / "grades.csv")
    poison = [r for r in got if r["student"] == "zz_poison"]
    assert [r["status"] for r in poison] == ["crashed", "not submitted"]
    assert "worker died 2 time(s)" in poison[0]["message"]
    deadline = time.monotonic() + 20
    while _sealed_kernels() and time.monotonic() < deadline:  # the killed workers' kernels died with them
        time.sleep(0.5)
    assert _sealed_kernels() == []
    client.wait_for_workers(2, timeout=60)  # the nannies started new worker processes
    # the killed workers' copies of the submissions went with their folders (the new workers purged them)
    folders = client.run(lambda dask_worker: os.path.dirname(dask_worker.local_directory))
    assert not [p for d in set(folders.values()) for p in glob.glob(os.path.join(d, "*", "grading-*"))]
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "grading-*"))) <= leftovers


def _start(cmd, log):
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(*procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _lab(tmp_path, n):
    """A lab's machines on this one: `dask scheduler` and `dask worker` (2 processes of 1 thread)."""
    file = tmp_path / f"scheduler{n}.json"
    log = open(tmp_path / f"dask{n}.log", "w")
    scheduler = _start([sys.executable, "-m", "dask", "scheduler", "--scheduler-file", str(file), "--port", "0",
                        "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"], log)
    deadline = time.monotonic() + 60
    while not file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _start([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(file), "--nworkers", "2",
                      "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], log)
    with Client(scheduler_file=str(file), timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    return file, scheduler, workers


def _grade_cli(subs, source, out, scheduler_file):
    return subprocess.Popen([sys.executable, "-m", "course_utils.grading", "grade", str(subs), "--source", str(source),
                             "--out", str(out), "--scheduler", str(scheduler_file), "--seed", str(SEED), "--timeout", "60",
                             "--memory", "1536M"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TQDM_DISABLE="1"))


def test_the_scheduler_going_away_keeps_what_was_graded_and_the_same_command_resumes(local, tmp_path):
    root, _ = local
    subs, source = _write_class(tmp_path, CLASS)
    out = tmp_path / "grades.csv"
    file, scheduler, workers = _lab(tmp_path, 1)
    try:
        run = _grade_cli(subs, source, out, file)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the not-submitted notebook's row, then a graded notebook's
            if out.exists() and len(_csv(out)) >= 3:
                break
            time.sleep(0.2)
        _stop(scheduler)
        _, err = run.communicate(timeout=180)
    finally:
        _stop(scheduler, workers)
    assert run.returncode != 0
    assert "the Dask scheduler at" in err and "went away" in err and "Traceback" not in err, err[-3000:]
    first = _csv(out)
    graded_first = {(r["student"], r["notebook"]) for r in first if r["status"] != "not submitted"}
    truth = {(r["student"], r["exercise"]): r for r in _csv(root / "grades.csv")}
    assert 1 <= len(graded_first) < SUBMITTED
    pairs = [(r["student"], r["exercise"]) for r in first]
    assert len(pairs) == len(set(pairs))
    for r in first:  # as far as it got, right (before the end's copy check and holds)
        assert r["status"] == truth[(r["student"], r["exercise"])]["status"] or r["status"] == "passed"
    # the lab starts again; the same command grades only what is missing, and the CSV is the whole class's
    file, scheduler, workers = _lab(tmp_path, 2)
    try:
        run = _grade_cli(subs, source, out, file)
        _, err = run.communicate(timeout=300)
    finally:
        _stop(scheduler, workers)
    assert run.returncode == 0, err[-3000:]
    graded_again = {tuple(line.split()[1].split("/")) for line in err.splitlines() if line.startswith("graded ")}
    assert graded_again and not graded_again & graded_first
    assert len(graded_first) + len(graded_again) == SUBMITTED
    assert out.read_text() == (root / "grades.csv").read_text()


def test_a_resumed_run_grades_what_is_missing_or_resubmitted_and_keeps_reviews(local, client, tmp_path):
    root, _ = local
    subs, source = _write_class(tmp_path, CLASS)
    out = tmp_path / "grades.csv"
    shutil.copy(root / "grades.csv", out)
    classroom.review(str(out), accept=["honest:00.top_k"], reject=["slow:00.top_k"])
    kept = _csv(out)
    # a run that stopped before wrong/hw2 and blank/hw1; refcaller resubmits hw1, and late hands in hw2
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=classroom.COLUMNS)
        w.writeheader()
        w.writerows(r for r in kept if (r["student"], r["notebook"]) not in {("wrong", "hw2.ipynb"), ("blank", "hw1.ipynb")})
    (subs / "refcaller" / "hw1.ipynb").write_text(json.dumps(HW1))
    (subs / "late" / "hw2.ipynb").write_text(json.dumps(HW2))
    with get_task_stream(client) as ts:
        rows = classroom.grade(str(subs), str(source), str(out), timeout=60, memory=1536 << 20, answer_timeout=30,
                               client=client)  # no seed: the CSV's
    assert sorted(_ran(ts)) == ["blank/hw1.ipynb", "late/hw2.ipynb", "refcaller/hw1.ipynb", "wrong/hw2.ipynb"]
    final = {(r["student"], r["exercise"]): r for r in _csv(out)}
    assert {r["seed"] for r in final.values()} == {str(SEED)}
    assert final[("wrong", "04.guided_relu_backward")]["status"] == "passed"
    assert final[("late", "04.guided_relu_backward")]["status"] == "passed"
    # the people's decisions stand; refcaller's resubmission is graded, and held as a copy of the model solution
    assert final[("honest", "00.top_k")]["status"] == "passed" and final[("honest", "00.top_k")]["score"] == "1"
    assert final[("slow", "00.top_k")]["status"] == "rejected"
    assert final[("refcaller", "00.top_k")]["status"] == "to review"
    assert "similar to the model solution" in final[("refcaller", "00.top_k")]["flags"]
    assert final[("refcaller", "00.top_k")]["flags"].count("similar to the model solution") == 1
    assert len(rows) == len(final) == 2 * len(CLASS)


def test_a_notebook_folder_travels_without_the_other_notebooks_and_cannot_unpack_outside(tmp_path):
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "hw1.ipynb").write_text(json.dumps(HW1))
    (folder / "hw2.ipynb").write_text(json.dumps(HW2))
    (folder / "data").mkdir()
    (folder / "data" / "points.csv").write_text("1,2\n")
    (folder / "link").symlink_to("/etc/hostname")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path = submission.unpack_submission(submission.pack_submission(folder / "hw1.ipynb"), "hw1.ipynb", scratch)
    copy = scratch / "submission"
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == ["data", "data/points.csv", "hw1.ipynb", "link"]
    assert json.loads(open(path).read()) == HW1 and os.readlink(copy / "link") == "/etc/hostname"
    # a tar that writes through a link, or above its folder, is refused
    import io
    import tarfile
    for members in ([("../escaped", "x")], [("ln", None), ("ln/escaped", "x")]):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, text in members:
                info = tarfile.TarInfo(name)
                if text is None:
                    info.type, info.linkname = tarfile.SYMTYPE, str(tmp_path)
                    tar.addfile(info)
                else:
                    info.size = len(text)
                    tar.addfile(info, io.BytesIO(text.encode()))
        other = tmp_path / f"scratch-{len(members)}"
        other.mkdir()
        with pytest.raises(tarfile.FilterError):
            submission.unpack_submission(buf.getvalue(), "x.ipynb", other)
        assert not (tmp_path / "escaped").exists()


def test_a_worker_that_does_not_see_the_shared_file_says_so(tmp_path):
    (tmp_path / "hw1.ipynb").write_text(json.dumps(HW1))
    task = classroom.make_task("alice", "hw1.ipynb", str(tmp_path / "hw1.ipynb"), HW1, SEED, files="shared")
    (tmp_path / "hw1.ipynb").write_text(json.dumps(HW2))  # not the file the grader saw
    report = submission.run_task(task)
    assert report["worker_fault"] and "does not see" in report["error"] and "--files send" in report["error"]


def test_the_example_slurm_configuration_makes_a_job_script(tmp_path):
    """The README's Slurm example, read as `--cluster slurm --cluster-config` reads it: dask-jobqueue's job
    script asks for what the file says and starts workers of one thread in the course's Python."""
    from dask_jobqueue import SLURMCluster
    settings = cluster.read_config(os.path.join(os.path.dirname(cluster.__file__), "slurm.example.yaml"), "slurm")
    # the tests may use only the loopback; on the cluster's login node the scheduler listens where Dask chooses
    with SLURMCluster(**settings["cluster"], scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}) as jobs:
        script = jobs.job_script()
    assert "#SBATCH -p " + settings["cluster"]["queue"] in script
    assert f"#SBATCH --cpus-per-task={settings['cluster']['job_cpu']}" in script
    assert "--nthreads 1" in script and f"--nworkers {settings['cluster']['processes']}" in script
    assert script.count(sys.executable) >= 1 and f"export {cluster.THREADS_ENV}=" in script
    assert set(settings["scale"]) <= {"minimum_jobs", "maximum_jobs", "jobs"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"queue": "cpu"}))
    with pytest.raises(SystemExit, match="no 'cluster:' section"):
        cluster.read_config(str(bad), "slurm")
    with pytest.raises(SystemExit, match="needs --cluster-config"):
        cluster.read_config(None, "slurm")


def test_a_hostile_class_on_the_cluster_changes_nothing_outside_its_copies(client, tmp_path):
    """tests/test_sealed.py's class (submissions that write outside their folder, patch the course in their
    kernel, read a classmate's file, hand in a link), graded on the workers: every watched folder stays
    byte-identical and every grade is what the attack deserves."""
    require_isolation()
    import course_utils
    out = tmp_path / "build"
    attacks = write_hostile_class(tmp_path, out)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    watched = [str(tmp_path / "submitted"), str(tmp_path / "source"), os.path.dirname(course_utils.__file__), site]
    before = {w: _digest(w) for w in watched}
    rows = classroom.grade(str(tmp_path / "submitted"), str(tmp_path / "source" / "hw"), str(out / "grades.csv"),
                           timeout=60, memory=2 << 30, seed=SEED, flagged="keep", client=client)
    assert {w: _digest(w) for w in watched} == before
    assert not os.path.exists("/tmp/pwned") and not (out / "evil.txt").exists()
    expected = {s: status for s, (_, status) in attacks.items()} | {"linker": "crashed"}
    assert {r["student"]: r["status"] for r in rows if r["exercise"] == "00.top_k"} == expected
    assert {r["student"] for r in _csv(out / "grades.csv")} == set(expected)
