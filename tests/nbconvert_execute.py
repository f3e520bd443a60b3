"""Execute one notebook the way nbconvert, nbgrader and papermill do: nbclient's NotebookClient,
figures inline (MPLBACKEND removed from the kernel's environment).

    python tests/nbconvert_execute.py NOTEBOOK [--cwd DIR] [--cell-timeout S] [--save EXECUTED.ipynb]

Prints one JSON line per cell as it starts and ends ({"start": i} / {"cell": i, "s": seconds}) and a
last line {"ok": true, "s": total}, so a caller that kills a hung run still knows which cell hung.
tests/test_nbconvert.py runs it in a subprocess with a wall-clock limit. Note that nbclient's
per-cell timeout does not turn the hang of jupyter/nbclient#312 into an error: the timed-out poll
finds the execute_reply that was waiting in the socket all along and the cell "succeeds" after
exactly `timeout` seconds, so only the wall-clock limit (or the cell times) shows it.

--save writes the executed notebook as `make run` writes it (scripts/nbexec.py: the panels' pictures
inlined), so `make site` builds the website from the runs `make test` already made.
"""
import argparse
import json
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from nbexec import inline_panels  # noqa: E402  (scripts/ is not a package)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("notebook")
    p.add_argument("--cwd", default=None, help="the kernel's working directory (default: the notebook's folder)")
    p.add_argument("--cell-timeout", type=int, default=600)
    p.add_argument("--save", default=None, help="write the executed notebook here, as `make run` does")
    args = p.parse_args()
    os.environ.pop("MPLBACKEND", None)  # inline figures, as in nbconvert run by hand
    nb = nbformat.read(args.notebook, as_version=4)
    cwd = args.cwd or os.path.dirname(os.path.abspath(args.notebook))
    started = {}

    def emit(**kw):
        print(json.dumps(kw), flush=True)

    def on_start(cell, cell_index):
        started[cell_index] = time.monotonic()
        emit(start=cell_index)

    def on_done(cell, cell_index, execute_reply):
        emit(cell=cell_index, s=round(time.monotonic() - started[cell_index], 2))

    t0 = time.monotonic()
    client = NotebookClient(nb, timeout=args.cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": cwd}},
                            on_cell_execute=on_start, on_cell_executed=on_done)
    client.execute(env=dict(os.environ))
    if args.save:
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
        nbformat.write(inline_panels(nb, client.widget_state), args.save)
    emit(ok=True, s=round(time.monotonic() - t0, 2))


if __name__ == "__main__":
    sys.exit(main())
