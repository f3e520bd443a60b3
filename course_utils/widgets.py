"""Small building blocks for the notebooks' interactive panels (ipywidgets).

Cheap views redraw as a slider moves (`live_panel`); anything that optimizes runs on a button,
shows a progress bar and a live preview of the image (`run_panel`).
"""
from __future__ import annotations

import io

import torch

from .images import to_image


def png_bytes(x, width=None) -> bytes:
    """PNG bytes of a (1, 3, H, W) tensor or a PIL image, optionally resized to `width` (nearest)."""
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


def preview_callback(widget, width=256):
    """A callback(step, image, value) for optimize_image that shows the image in `widget`."""

    def cb(step, image, value):
        widget.value = png_bytes(image, width)

    return cb


def _values(controls):
    return {name: w.value for name, w in controls.items()}


def live_panel(update, controls, columns=3):
    """Controls that call update(**values) on every change; update draws into the output below.

    Draw with matplotlib and call plt.show() inside `update`. The view is drawn once at once.
    Returns the panel widget (already displayed).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = widgets.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            try:
                update(**_values(controls))
                plt.show()
            except (ValueError, KeyError, TypeError) as e:  # bad input from a text box: say why
                print(f"{type(e).__name__}: {e}")

    for w in controls.values():
        w.observe(redraw, names="value")
    rows = list(controls.values())
    box = widgets.VBox([widgets.GridBox(rows, layout=widgets.Layout(grid_template_columns=f"repeat({columns}, auto)")), out])
    display(box)
    redraw()
    return box


def run_panel(run, controls, button="Run", preview_width=224, columns=3, run_now=True):
    """Controls, a Run button, a live preview image and an output area.

    run(preview=callback, **values) is called on a click; pass `preview` to optimize_image as its
    callback to see the image while it is made. Whatever `run` draws with matplotlib is shown below.
    With run_now=True it also runs once at once (so the panel shows a result when executed headless).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = widgets.Output()
    preview = image_widget(preview_width)
    go = widgets.Button(description=button, button_style="primary", icon="play")
    status = widgets.Label()

    def on_click(*_):
        go.disabled = True
        status.value = "running..."
        try:
            with out:
                out.clear_output(wait=True)
                try:
                    run(preview=preview_callback(preview, preview_width), **_values(controls))
                    plt.show()
                except (ValueError, KeyError, TypeError, RuntimeError) as e:
                    print(f"{type(e).__name__}: {e}")
        finally:
            go.disabled = False
            status.value = "done"

    go.on_click(on_click)
    grid = widgets.GridBox(list(controls.values()), layout=widgets.Layout(grid_template_columns=f"repeat({columns}, auto)"))
    box = widgets.VBox([grid, widgets.HBox([go, status]), widgets.HBox([preview, out])])
    display(box)
    if run_now:
        on_click()
    return box
