"""Building blocks for the notebooks' interactive panels (ipywidgets); the panels are in `lessons`.

Cheap views redraw as a slider moves (`live_panel`); anything that optimizes runs on a button,
shows a progress bar and a live preview of the image (`run_panel`). Controls can follow other
controls (`depends`: the classes offered follow the image, a channel slider's range follows the layer).
Every panel draws into its ipywidgets.Output with `output.draw_into`, never with `with out:`.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display
from PIL import Image

from ..images import to_image
from ..optimize.loop import Progress
from .output import draw_into


def png_bytes(x, width=None) -> bytes:
    """PNG bytes of a (N, 3, H, W) tensor (a batch side by side) or a PIL image, optionally resized to `width`
    (nearest)."""
    if torch.is_tensor(x) and x.dim() == 4 and len(x) > 1:
        x = torch.cat(list(x.detach().cpu()), -1)
    img = to_image(x) if torch.is_tensor(x) else x
    if width and img.width != width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def image_widget(width=256):
    """An ipywidgets.Image for live previews."""
    return widgets.Image(format="png", width=width)


def preview_row(labels, width=192):
    """Image widgets side by side, each under its label, displayed now; returns {label: show(image)}, where
    show puts a (1, 3, H, W) tensor into that widget (for live previews while something trains)."""
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
    return widgets.GridBox(list(controls.values()), layout=widgets.Layout(grid_template_columns=f"repeat({columns}, auto)"))


def live_panel(update, controls, columns=3, depends=None, actions=None):
    """Controls that call update(**values) on every change; update draws into the output below.

    Draw with matplotlib inside `update` (plt.show() is called after it). The view is drawn once at once.
    depends: {control: (source control, fn(source value) -> {trait: value})}, applied before the redraw.
    actions: {button label: fn(**values)}: buttons for expensive work (a progress bar shows in the output),
    after which the view is redrawn. Returns the panel widget (already displayed).
    """
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
