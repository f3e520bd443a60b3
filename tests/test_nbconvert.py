"""The notebooks under nbconvert/nbgrader/papermill: nbclient's NotebookClient, figures inline.

nbclient used to wait forever on a cell that drew a figure into an ipywidgets.Output with
`with out:` (jupyter/nbclient#312): it plays the Output widget and answers each captured output
with a comm_msg on the shell socket while it waits there for the execute_reply; jupyter_client's
raw send drains the socket's edge-triggered ZMQ_FD and the reply that had just arrived is never
read. The panels now draw with course_utils.panels.output.draw_into, which fills `out.outputs` from the
kernel, so the client never sends anything during a cell (see that module's docstring).

Each run is a subprocess (tests/nbconvert_execute.py) with a wall-clock limit: a hang is killed and
fails, naming the cell. nbclient's own per-cell timeout would not catch it: the timed-out poll finds
the reply and the cell passes after exactly `timeout` seconds.

    pytest tests/test_nbconvert.py                      # every notebook (as students get it), the repro 3 times
    pytest tests/test_nbconvert.py -m "not nbconvert"   # only the repro notebook (~30 s)
    NBCONVERT_REPRO=1 pytest tests/test_nbconvert.py -k hang_repro   # shows the bug itself
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from course_utils.grading.notebooks import student_version

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SCRIPT = ROOT / "tests" / "nbconvert_execute.py"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def execute(path, limit, cell_timeout=600, cwd=None, save=None):
    """Run `path` with NotebookClient in a subprocess; kill it after `limit` seconds (`save`: where to
    write the executed notebook).

    Returns (seconds, {cell: seconds}); fails the test on an error or when the limit is reached."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # conftest sets Agg; nbconvert users don't
    cmd = [sys.executable, str(SCRIPT), str(path), "--cell-timeout", str(cell_timeout)]
    if cwd:
        cmd += ["--cwd", str(cwd)]
    if save:
        cmd += ["--save", str(save)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the client; its kernel notices its parent is gone and exits
        out, err = proc.communicate()
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        hung = [e["start"] for e in events if "start" in e][-1:] or ["(before the first cell)"]
        pytest.fail(f"{path.name} did not finish in {limit} s: hung in cell {hung[0]}")
    took = time.monotonic() - t0
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not events or not events[-1].get("ok"):
        pytest.fail(f"{path.name} failed (exit {proc.returncode}):\n{err[-4000:]}")
    cells = {e["cell"]: e["s"] for e in events if "cell" in e}
    slow = {c: s for c, s in cells.items() if s >= cell_timeout - 1}
    assert not slow, f"{path.name}: cells {slow} took the whole cell timeout (a hang nbclient recovered from)"
    return took, cells


@pytest.mark.parametrize("run", range(3))
def test_panels_finish_under_nbclient(run):
    """The big-figure repro through live_panel, run_panel and draw_into, three times in a row.

    With `with out:` in the panels (the old code) the first such cell hangs every time."""
    took, cells = execute(DATA / "nbconvert_panels.ipynb", limit=120, cell_timeout=300)
    print(f"run {run}: {took:.1f} s, slowest cell {max(cells.values()):.1f} s")


@pytest.mark.skipif(not os.environ.get("NBCONVERT_REPRO"), reason="shows the bug: hangs by design (NBCONVERT_REPRO=1)")
def test_hang_repro_hangs_with_out():
    """`with out:` + clear_output(wait=True) + plt.show() of a big figure: nbclient never finishes."""
    with pytest.raises(pytest.fail.Exception, match="did not finish"):
        execute(DATA / "nbconvert_hang_repro.ipynb", limit=60)


@pytest.mark.nbconvert
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_version_runs_to_the_end_under_nbclient(path, tmp_path):
    """Every notebook as a student receives it (`make assignments`: each exercise a stub that raises
    NotImplementedError) as `jupyter nbconvert --to notebook --execute` runs it, inline figures, 600 s: no cell
    fails (nothing after an exercise needs the student's function) and every check cell says "not attempted".
    nbval runs the notebooks with their solutions; between the two every cell a student can meet runs in
    `make test`. The executed copy goes to build/, where `make run` writes it, for `make site`: a page shows
    the student's version either way (scripts/build_site.py)."""
    student = tmp_path / path.name
    student.write_text(json.dumps(student_version(json.loads(path.read_text()))))
    took, cells = execute(student, limit=600, cell_timeout=600, cwd=path.parent, save=ROOT / "build" / path.name)
    print(f"{path.name}: {took:.1f} s")
    executed = json.loads((ROOT / "build" / path.name).read_text())
    checks = [c for c in executed["cells"] if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("grade")]
    said = ["".join("".join(o.get("text", "")) for o in c["outputs"] if o.get("name") == "stdout") for c in checks]
    assert checks and all("not attempted" in t for t in said), said
