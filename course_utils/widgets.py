"""Building blocks for the notebooks' interactive panels (ipywidgets); the panels are in `panels`.

Cheap views redraw as a slider moves (`live_panel`); anything that optimizes runs on a button,
shows a progress bar and a live preview of the image (`run_panel`). Controls can follow other
controls (`depends`: the classes offered follow the image, a channel slider's range follows the layer).

Every panel draws into its ipywidgets.Output with `draw_into(out)`, never with `with out:`. The
`with out:` capture sets the widget's msg_id, and a headless client (nbclient, so nbconvert,
nbgrader and papermill) then plays the Output widget itself: for every output it receives for the
widget it sends a comm_msg back to the kernel on the shell socket, while it still waits on that
socket for the cell's execute_reply. jupyter_client writes that comm_msg with a raw, synchronous send
on the asyncio socket, which drains the socket's edge-triggered ZMQ_FD; when the execute_reply has
just arrived, nothing wakes the client up again and the run waits forever (jupyter/nbclient#312).
`draw_into` captures prints and figures in the kernel and puts them into `out.outputs` (a plain
kernel-to-frontend state update): JupyterLab shows them the same way, and no client ever has to
answer during a cell.
"""
from __future__ import annotations

import io
import sys
import traceback
from contextlib import contextmanager

import torch

from .images import to_image


def png_bytes(x, width=None) -> bytes:
    """PNG bytes of a (N, 3, H, W) tensor (a batch side by side) or a PIL image, optionally resized to `width`
    (nearest)."""
    if torch.is_tensor(x) and x.dim() == 4 and len(x) > 1:
        x = torch.cat(list(x.detach().cpu()), -1)
    img = to_image(x) if torch.is_tensor(x) else x
    if width and img.width != width:
        from PIL import Image

        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def image_widget(width=256):
    """An ipywidgets.Image for live previews."""
    import ipywidgets as widgets

    return widgets.Image(format="png", width=width)


def preview_row(labels, width=192):
    """Image widgets side by side, each under its label, displayed now; returns {label: show(image)}, where
    show puts a (1, 3, H, W) tensor into that widget (for live previews while something trains)."""
    import ipywidgets as widgets
    from IPython.display import display

    images = {label: image_widget(width) for label in labels}
    display(widgets.HBox([widgets.VBox([widgets.Label(label), w]) for label, w in images.items()]))

    def shower(w):
        def show(image):
            with torch.no_grad():
                w.value = png_bytes(image, width)

        return show

    return {label: shower(w) for label, w in images.items()}


def preview_callback(widget, width=256):
    """A callback(step, image, value) for an `optimize.Progress` that shows the image in `widget`."""

    def cb(step, image, value):
        widget.value = png_bytes(image, width)

    return cb


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
        try:  # a closed widget (a finished tqdm bar with leave=False) would show an error in JupyterLab
            from ipywidgets.widgets.widget import _instances
        except ImportError:
            return
        view = "application/vnd.jupyter.widget-view+json"
        kept = tuple(o for o in self.out.outputs
                     if view not in o.get("data", {}) or o["data"][view].get("model_id") in _instances)
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
    try:
        from IPython import get_ipython
        from IPython.core.displaypub import DisplayPublisher
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
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

    saved = sys.stdout, sys.stderr, shell.display_pub
    for stream in saved[:2]:
        try:
            stream.flush()
        except Exception:  # a closed stream: nothing to flush
            pass
    sys.stdout = _SinkStream(sink, "stdout", saved[0])
    sys.stderr = _SinkStream(sink, "stderr", saved[1])
    shell.display_pub = _Publisher(shell=shell)
    try:
        yield sink
    except Exception:
        sink.error(*sys.exc_info())
    finally:
        sys.stdout, sys.stderr, shell.display_pub = saved
        sink.finish()


def _values(controls):
    return {name: w.value for name, w in controls.items()}


def _follow(controls, depends, on_change=None):
    """Wire the controls: when a control changes, the controls that depend on it are updated first
    (depends = {name: (source name, fn(source value) -> {trait: value})}, traits set in order, e.g.
    options before value), then on_change() runs once."""
    depends = depends or {}
    busy = [False]

    def apply(source, value):
        for name, (src, fn) in depends.items():
            if src == source:
                for trait, v in fn(value).items():
                    setattr(controls[name], trait, v)

    def changed(source):
        def handler(change):
            if busy[0]:  # a dependent control changing because of `apply`: one redraw comes after
                return
            busy[0] = True
            try:
                apply(source, change["new"])
            finally:
                busy[0] = False
            if on_change is not None:
                on_change()

        return handler

    busy[0] = True
    try:
        for src in dict.fromkeys(src for src, _ in depends.values()):
            apply(src, controls[src].value)  # the dependents start consistent with their sources
    finally:
        busy[0] = False
    for name, w in controls.items():
        w.observe(changed(name), names="value")


def _grid(controls, columns):
    import ipywidgets as widgets

    return widgets.GridBox(list(controls.values()), layout=widgets.Layout(grid_template_columns=f"repeat({columns}, auto)"))


def live_panel(update, controls, columns=3, depends=None, actions=None):
    """Controls that call update(**values) on every change; update draws into the output below.

    Draw with matplotlib inside `update` (plt.show() is called after it). The view is drawn once at once.
    depends: {control: (source control, fn(source value) -> {trait: value})}, applied before the redraw.
    actions: {button label: fn(**values)}: buttons for expensive work (a progress bar shows in the output),
    after which the view is redrawn. Returns the panel widget (already displayed).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = widgets.Output()

    def redraw(*_):
        with draw_into(out):
            try:
                update(**_values(controls))
                plt.show()
            except (ValueError, KeyError, TypeError) as e:  # bad input from a text box: say why
                print(f"{type(e).__name__}: {e}")

    def button(label, fn):
        b = widgets.Button(description=label, button_style="primary", icon="play")

        def click(*_):
            b.disabled = True
            try:
                with draw_into(out):
                    fn(**_values(controls))
            finally:
                b.disabled = False
            redraw()

        b.on_click(click)
        return b

    _follow(controls, depends, redraw)
    buttons = [button(label, fn) for label, fn in (actions or {}).items()]
    box = widgets.VBox([_grid(controls, columns)] + ([widgets.HBox(buttons)] if buttons else []) + [out])
    display(box)
    redraw()
    return box


def run_panel(run, controls, button="Run", preview_width=224, columns=3, run_now=True, depends=None, every=10):
    """Controls, a Run button, a live preview image and an output area.

    run(progress=..., **values) is called on a click: pass `progress` (an `optimize.Progress` whose
    callback shows the image every `every` steps) to the optimization to see the image while it is made.
    Whatever `run` draws with matplotlib is shown below. preview_width=None: no preview. With
    run_now=True it also runs once at once (so the panel shows a result when executed headless).
    depends: as in `live_panel`.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .optimize import Progress

    out = widgets.Output()
    preview = image_widget(preview_width) if preview_width else None
    go = widgets.Button(description=button, button_style="primary", icon="play")
    status = widgets.Label()

    def on_click(*_):
        go.disabled = True
        status.value = "running..."
        progress = Progress(callback=preview_callback(preview, preview_width) if preview else None, every=every)
        try:
            with draw_into(out):
                try:
                    run(progress=progress, **_values(controls))
                    plt.show()
                except (ValueError, KeyError, TypeError, RuntimeError) as e:
                    print(f"{type(e).__name__}: {e}")
        finally:
            go.disabled = False
            status.value = "done"

    go.on_click(on_click)
    _follow(controls, depends)
    body = widgets.HBox([preview, out]) if preview else out
    box = widgets.VBox([_grid(controls, columns), widgets.HBox([go, status]), body])
    display(box)
    if run_now:
        on_click()
    return box
