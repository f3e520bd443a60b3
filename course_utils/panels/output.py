"""`draw_into(out)`: what a block prints and draws, shown in an ipywidgets.Output, from the kernel.

Every panel draws into its Output with `draw_into(out)`, never with `with out:`. The `with out:` capture
sets the widget's msg_id, and a headless client (nbclient, so nbconvert, nbgrader and papermill) then
plays the Output widget itself: for every output it receives for the widget it sends a comm_msg back to
the kernel on the shell socket, while it still waits on that socket for the cell's execute_reply.
jupyter_client writes that comm_msg with a raw, synchronous send on the asyncio socket, which drains the
socket's edge-triggered ZMQ_FD; when the execute_reply has just arrived, nothing wakes the client up again
and the run waits forever (jupyter/nbclient#312). `draw_into` captures prints and figures in the kernel
and puts them into `out.outputs` (a plain kernel-to-frontend state update): JupyterLab shows them the same
way, and no client ever has to answer during a cell.

Why written here: IPython's `capture_output` captures the same things (it too swaps the display publisher
for the block) but hands them over only at the end, and a panel must show its progress bar and prints
while it runs. Tested against the pinned ipywidgets and nbclient (tests/test_widgets.py, tests/test_nbconvert.py).
"""
from __future__ import annotations

import io
import sys
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout

import comm
from IPython import get_ipython
from IPython.core.displaypub import DisplayPublisher


class _Sink:
    """Where draw_into sends what the block prints and displays: straight into out.outputs."""

    def __init__(self, out, wait):
        self.out, self.pending_clear = out, wait
        if not wait:
            out.outputs = ()

    def clear_output(self, wait=False):
        if wait:
            self.pending_clear = True
        else:
            self.out.outputs, self.pending_clear = (), False

    def _add(self, output):
        outputs = () if self.pending_clear else tuple(self.out.outputs)
        self.pending_clear = False
        last = outputs[-1] if outputs else None
        if (output["output_type"] == "stream" and last is not None and last["output_type"] == "stream"
                and last["name"] == output["name"]):
            outputs = outputs[:-1] + ({**last, "text": last["text"] + output["text"]},)
        else:
            outputs = outputs + (output,)
        self.out.outputs = outputs

    def stream(self, name, text):
        if text:
            self._add({"output_type": "stream", "name": name, "text": text})

    def display(self, data, metadata=None):
        self._add({"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})})

    def error(self, etype, evalue, tb):
        self._add({"output_type": "error", "ename": etype.__name__, "evalue": str(evalue),
                   "traceback": [line.rstrip("\n") for line in traceback.format_exception(etype, evalue, tb)]})

    def finish(self):
        if self.pending_clear:  # cleared with wait=True and nothing came after
            self.out.outputs, self.pending_clear = (), False
        # a closed widget (a finished tqdm bar with leave=False) would show an error in JupyterLab: a widget's
        # model id is its comm's id, and a closed comm leaves the kernel's comm manager
        live = comm.get_comm_manager().comms
        view = "application/vnd.jupyter.widget-view+json"
        kept = tuple(o for o in self.out.outputs
                     if view not in o.get("data", {}) or o["data"][view].get("model_id") in live)
        if len(kept) != len(self.out.outputs):
            self.out.outputs = kept


class _SinkStream(io.TextIOBase):
    def __init__(self, sink, name, original):
        self.sink, self.name_, self.original = sink, name, original

    def write(self, text):
        self.sink.stream(self.name_, str(text))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    @property
    def encoding(self):
        return getattr(self.original, "encoding", "utf-8")


@contextmanager
def draw_into(out, wait=True):
    """Show what the block prints and draws (plt.show(), display(...)) in the Output widget `out`.

    Use it instead of `with out: out.clear_output(wait=True); ...`: the old contents are replaced
    when the first new output comes (wait=True; wait=False clears at once). Yields a handle whose
    .clear_output(wait=False) clears again inside the block. An exception inside the block is shown
    in `out` and not raised, as `with out:` does in a kernel.

    The outputs go into `out.outputs` from the kernel, so a headless client (nbconvert, nbgrader,
    papermill) never has to answer for the widget during a cell, which can hang it
    (jupyter/nbclient#312; see the module docstring). Outside IPython the block simply runs.
    """
    shell = get_ipython()
    if shell is None:
        yield None
        return

    sink = _Sink(out, wait)

    class _Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            sink.display(data, metadata)

        def clear_output(self, wait=False):
            sink.clear_output(wait)

        def set_parent(self, parent):  # ipykernel's shell.set_parent (ipywidgets' `with out:` calls it)
            pass

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream: nothing to flush
            pass
    saved = shell.display_pub
    shell.display_pub = _Publisher(shell=shell)  # as IPython's own capture_output does, but live
    try:
        out_stream, err_stream = _SinkStream(sink, "stdout", sys.stdout), _SinkStream(sink, "stderr", sys.stderr)
        with redirect_stdout(out_stream), redirect_stderr(err_stream):
            yield sink
    except Exception:
        sink.error(*sys.exc_info())
    finally:
        shell.display_pub = saved
        sink.finish()


__all__ = ["draw_into"]
