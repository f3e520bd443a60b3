"""Execute a notebook with nbclient (the client nbconvert, nbgrader and papermill use), for `make run`,
`make bench` and scripts/nbfigures.py, and copy what the panels drew into the saved cells.

A panel (`widgets.draw_into`) keeps its pictures in an ipywidgets Output model; nbclient stores that
model's state, but a static page (nbconvert's HTML offline, the figures script) shows no widget, so
`inline_panels` appends each panel's outputs to the cell that displayed it.
"""
import os

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

__all__ = ["execute", "execute_file", "inline_panels", "CellExecutionError", "DeadKernelError"]  # the last two: what callers catch


def inline_panels(nb, widget_state):
    """Append to each code cell the outputs of the Output widgets inside the widgets it displays."""
    def outputs_of(model_id, seen):
        if model_id in seen:
            return []
        seen.add(model_id)
        state = widget_state.get(model_id, {})
        found = list(state.get("outputs", [])) if state.get("_model_name") == "OutputModel" else []
        for child in state.get("children", []):
            found += outputs_of(str(child).removeprefix("IPY_MODEL_"), seen)
        return found

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        shown = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in cell.get("outputs", [])
                 if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        for model_id in shown:
            cell.outputs += [nbformat.from_dict(o) for o in outputs_of(model_id, set())]
    return nb


def execute(nb, cwd=None, timeout=900, env=None):
    """Run every code cell of `nb` in a fresh python3 kernel in `cwd`, outputs stored in the cells (panels
    inlined). timeout: seconds per cell. Raises nbclient's CellExecutionError at the first cell that raises
    (the outputs up to there are kept) and DeadKernelError when the kernel dies."""
    client = NotebookClient(nb, timeout=int(timeout), kernel_name="python3", resources={"metadata": {"path": cwd or os.getcwd()}})
    try:
        client.execute(env={**os.environ, **(env or {})})
    finally:
        inline_panels(nb, client.widget_state)
    return nb


def execute_file(path, timeout=900, env=None):
    """Read, execute (in the notebook's folder) and return a notebook file's notebook."""
    nb = nbformat.read(path, as_version=4)
    return execute(nb, cwd=os.path.dirname(os.path.abspath(path)), timeout=timeout, env=env)
