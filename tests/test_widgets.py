"""The panels' building blocks: dependent controls, one redraw per change, buttons, the run panel's progress."""
import ipywidgets as w
import torch

from course_utils.optimize import Progress
from course_utils.panels.blocks import live_panel, png_bytes, run_panel


def test_dependent_controls_follow_their_source_and_the_view_redraws_once():
    calls = []
    controls = {"layer": w.Dropdown(options=["a", "b"], value="a"), "channel": w.IntSlider(value=5, min=0, max=9),
                "cls": w.Dropdown(options=["x"])}
    depends = {"channel": ("layer", lambda layer: {"max": 3 if layer == "b" else 9}),
               "cls": ("layer", lambda layer: {"options": [layer + "1", layer + "2"], "value": layer + "2"})}
    live_panel(lambda layer, channel, cls: calls.append((layer, channel, cls)), controls, depends=depends)
    assert calls == [("a", 5, "a2")]  # the dependents start consistent with their source, drawn once
    controls["layer"].value = "b"  # the slider's range shrinks (its value is clamped) and the classes change
    assert calls[-1] == ("b", 3, "b2") and len(calls) == 2
    controls["channel"].value = 1  # a control nobody depends on: one redraw
    assert calls[-1] == ("b", 1, "b2") and len(calls) == 3


def test_a_bad_value_is_shown_as_a_message_not_raised(capsys):
    def update(name):
        raise ValueError(f"{name!r} is not an ImageNet class")

    live_panel(update, {"name": w.Text(value="tabbby")})
    assert "'tabbby' is not an ImageNet class" in capsys.readouterr().out


def test_an_action_button_runs_then_redraws():
    done, drawn = [], []
    controls = {"size": w.IntSlider(value=8, min=1, max=10)}
    box = live_panel(lambda size: drawn.append(size), controls, actions={"run": lambda size: done.append(size)})
    button = box.children[1].children[0]
    assert button.description == "run" and drawn == [8] and done == []
    button.click()
    assert done == [8] and drawn == [8, 8]


def test_run_panel_hands_run_a_progress_that_fills_the_preview():
    seen = []

    def run(progress, steps):
        assert isinstance(progress, Progress)
        seen.append(steps)
        progress.callback(steps, torch.rand(1, 3, 8, 8), 0.0)  # what optimize_image does every `every` steps

    box = run_panel(run, {"steps": w.IntSlider(value=3, min=1, max=9)}, preview_width=32)
    preview = box.children[2].children[0]
    assert seen == [3] and preview.value[:8] == png_bytes(torch.rand(1, 3, 8, 8))[:8]  # a PNG
    box.children[1].children[0].click()
    assert seen == [3, 3]
    quiet = run_panel(lambda progress, n: seen.append(n), {"n": w.IntSlider(value=1)}, preview_width=None, run_now=False)
    assert seen == [3, 3] and len(quiet.children) == 3


def test_run_panel_dependents_are_set_without_running():
    runs = []
    controls = {"layer": w.Dropdown(options=["a", "b"]), "tv": w.FloatSlider(value=0.0, max=100)}
    run_panel(lambda progress, layer, tv: runs.append((layer, tv)), controls, run_now=False, preview_width=None,
              depends={"tv": ("layer", lambda layer: {"value": 30.0 if layer == "b" else 1.0})})
    assert controls["tv"].value == 1.0
    controls["layer"].value = "b"
    assert controls["tv"].value == 30.0 and runs == []


def test_png_bytes_of_a_tensor():
    data = png_bytes(torch.rand(1, 3, 10, 20), width=40)
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(data)).size == (40, 20)


def test_draw_into_fills_the_output_from_the_kernel_and_drops_closed_widgets():
    """draw_into in an IPython shell with the pinned ipywidgets: prints, figures and widgets go into
    out.outputs as they come (streams merged), an error is shown not raised, and the view of a widget
    closed inside the block (a finished tqdm bar with leave=False) is dropped; the shell's streams and
    display publisher are restored."""
    import sys

    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    from course_utils.panels.output import draw_into

    shell = InteractiveShell.instance()
    publisher, stdout = shell.display_pub, sys.stdout
    out = w.Output()
    out.outputs = ({"output_type": "stream", "name": "stdout", "text": "old\n"},)
    try:
        bar, kept = w.IntProgress(), w.IntSlider()
        with draw_into(out):
            print("a")
            print("b")
            assert out.outputs == ({"output_type": "stream", "name": "stdout", "text": "a\nb\n"},)  # live, old gone
            display(bar)
            display(kept)
            plt.plot([0, 1])
            display(plt.gcf())
            plt.close()
            bar.close()
            raise ValueError("shown, not raised")
        kinds = [o["output_type"] for o in out.outputs]
        assert kinds == ["stream", "display_data", "display_data", "error"]
        views = [o["data"].get("application/vnd.jupyter.widget-view+json", {}).get("model_id") for o in out.outputs[1:3]]
        assert views[0] == kept.model_id and out.outputs[2]["data"]["text/plain"].startswith("<Figure")
        assert out.outputs[3]["ename"] == "ValueError"
        assert shell.display_pub is publisher and sys.stdout is stdout
    finally:
        InteractiveShell.clear_instance()
