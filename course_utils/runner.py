"""Execute a notebook in a fresh kernel, cell by cell, with a blocking Jupyter client.

Used by the grader, `make run`, `make bench` and scripts/nbfigures.py. It replaces nbclient there
because nbclient's asynchronous client can wait forever on a cell that drives ipywidgets
(jupyter/nbclient#312); this loop polls with short timeouts, as nbval does, and never hangs
past its time limit.
"""
from __future__ import annotations

import os
import time
from queue import Empty

import nbformat


class NotebookError(RuntimeError):
    """A cell raised; .cell is its index and .ename / .evalue the exception."""

    def __init__(self, cell, ename, evalue):
        super().__init__(f"cell {cell} raised {ename}: {evalue}")
        self.cell, self.ename, self.evalue = cell, ename, evalue


def execute(nb, cwd=None, timeout=600, env=None, kernel_name="python3"):
    """Run every code cell of `nb` (an nbformat notebook) in order, storing outputs in the cells.

    timeout: seconds for the whole notebook. Raises NotebookError at the first cell that raises
    (outputs up to there are kept) and TimeoutError when the time runs out.
    """
    from jupyter_client.manager import start_new_kernel

    deadline = time.monotonic() + timeout
    km, kc = start_new_kernel(kernel_name=kernel_name, cwd=cwd or os.getcwd(),
                              env={**os.environ, **(env or {})}, startup_timeout=min(120, timeout))
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            _run_cell(kc, cell, index, deadline)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return nb


def _run_cell(kc, cell, index, deadline):
    msg_id = kc.execute(cell.source, allow_stdin=False, stop_on_error=True)
    outputs, clear_next, error = [], False, None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the notebook ran out of time in cell {index}")
        try:
            msg = kc.get_iopub_msg(timeout=min(left, 1.0))
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            break
        if kind == "clear_output":
            if content.get("wait"):
                clear_next = True
            else:
                outputs = []
            continue
        if kind in ("stream", "display_data", "execute_result", "error"):
            if clear_next:
                outputs, clear_next = [], False
            outputs.append(nbformat.v4.output_from_msg(msg))
            if kind == "error":
                error = (content["ename"], content["evalue"])
    cell.outputs = outputs
    while True:  # the execute_reply, for the execution count
        left = deadline - time.monotonic()
        try:
            reply = kc.get_shell_msg(timeout=max(0.1, min(left, 5.0)))
        except Empty:
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            cell.execution_count = reply["content"].get("execution_count")
            break
    if error:
        raise NotebookError(index, *error)


def execute_file(path, timeout=600, env=None):
    """Read, execute (in the notebook's folder) and return a notebook file's notebook."""
    nb = nbformat.read(path, as_version=4)
    return execute(nb, cwd=os.path.dirname(os.path.abspath(path)), timeout=timeout, env=env)
