"""The course in a real browser: JupyterLab in headless Chromium, used as a person would.

`make test-browser` runs this file. It starts JupyterLab from the project's .venv on localhost with
a token, opens each notebook in Debian's Chromium (driven by Playwright, no browser download), runs the
cells its panel needs one by one (00, the first notebook, all cells from the Run menu), checks that no cell
shows an error and that the widgets render as widgets, then moves a slider, picks from a dropdown or
presses a Run button and checks that the figure changed. Every cell of every notebook runs in `make test`
(nbval, and nbclient as nbconvert runs it): here the front end is what is tested. Screenshots go to build/screenshots/. The server is killed at the end, pass or fail.
"""
import ast
import builtins
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, SHOTS

# notebook, the call that shows its interactive panel, what a person does to it (a control named by its label), how
# long running what the panel needs may take (s; generous: this test checks that the course works in a browser,
# `make bench` checks speed)
SPECS = [
    ("00_start_here.ipynb", "panels.predictions_panel(", {"dropdown": ("image", "coffee")}, 600),  # the cheap view redraws
    ("01_filters.ipynb", "panels.filter_and_maps_panel(", {"slider": "channel", "steps": 3}, 600),  # another channel
    ("02_features_tsne.ipynb", "panels.top_patches_panel(", {"slider": "channel", "steps": 3}, 600),
    ("03_occlusion_saliency.ipynb", "panels.saliency_panel(", {"slider": "SG noise", "steps": 2}, 600),  # more noise
    ("04_guided_backprop.ipynb", "panels.backprop_rules_panel(", {"dropdown": ("method", "deconvnet")}, 600),
    ("05_gradient_ascent.ipynb", "panels.feature_visualization_panel(", {"button": "Run"}, 900),  # a live preview
    ("06_inversion.ipynb", "panels.inversion_panel(", {"button": "Run"}, 600),
    ("07_deepdream.ipynb", "panels.deepdream_panel(", {"button": "Dream"}, 600),
    ("08_texture_neural_style.ipynb", "panels.style_transfer_panel(", {"button": "Run"}, 900),
    ("09_fast_style.ipynb", "panels.style_blend_panel(", {"slider": "A -> B", "steps": 4}, 600),  # the blend
    # the attack is seeded: the same settings draw the same figure, so the budget changes first
    ("10_adversarial.ipynb", "panels.attack_panel(", [{"slider": "eps (/255)", "steps": 4}, {"button": "Attack"}], 900),
]
# The one notebook run whole from the Run menu; the others run the cells their panel needs (`panel_cells`): nbval
# and nbclient (make test) run every cell of every notebook, so running each again here would only make CI an
# hour longer; what only a browser can show is the front end (widgets render, a control redraws the figure).
RUN_ALL = "00_start_here.ipynb"

_BUILTINS = set(dir(builtins))


def _tree(cell):
    """A code cell's syntax tree (IPython's % and ! lines left out)."""
    source = "".join(cell["source"])
    return ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))


def _names(tree, modules=()):
    """(defined, used) by a cell's code: names bound (assigned, imported, def, for, with) or changed in place
    (`x.attr = ...`, `x[i] = ...`, `x.method(...)` as a statement, unless x is one of `modules`: `plt.show()`
    changes no module), and names read."""
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, ast.Store):
            base = node.value
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            if isinstance(base, ast.Name):
                defined.add(base.id)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute):
            base = node.value.func.value
            if isinstance(base, ast.Name) and base.id not in modules:
                defined.add(base.id)
    return defined, used - _BUILTINS


def panel_cells(cells, panel_call):
    """The indices of the code cells a panel needs: the cell that calls `panel_call` and, before it, every cell
    that binds or changes a name it reads, and so on back (a slice of the notebook by its names)."""
    panel = next(i for i, c in enumerate(cells) if c["cell_type"] == "code" and panel_call in "".join(c["source"]))
    trees = {i: _tree(c) for i, c in enumerate(cells[:panel + 1]) if c["cell_type"] == "code"}
    modules = {(a.asname or a.name).split(".")[0] for tree in trees.values() for node in ast.walk(tree)
               if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    defined, used = _names(trees[panel])
    needed = used - defined
    chosen = [panel]
    for i in sorted(trees, reverse=True)[1:]:
        defined, used = _names(trees[i], modules)
        if defined & needed:
            chosen.append(i)
            needed |= used - defined  # what it reads from earlier cells (a name it binds itself is its own)
    return sorted(chosen)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving a copy of notebooks/ (the repo stays clean)."""
    work = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(ROOT / "notebooks", work)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses root without it (containers, CI)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline
    log = open(work.parent / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(work.parent / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"base": base, "token": token, "dir": work}
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the server and its kernels
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=15)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def _wait_idle(page, timeout_s, all_cells=True):
    """Wait until no cell is queued or running ([*]) and the kernel is idle (after Run All, until no cell is
    left unrun ([ ]) either)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        busy = page.evaluate("""(allCells) => {
            const prompts = [...document.querySelectorAll('.jp-Cell.jp-CodeCell .jp-InputPrompt')];
            const running = prompts.some(p => p.textContent.includes('*'));
            const unrun = allCells && prompts.some(p => /\\[\\s*\\]/.test(p.textContent));
            const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const idle = !ind || ind.getAttribute('data-status') === 'idle';
            return running || unrun || !idle;
        }""", all_cells)
        if not busy:
            return
        time.sleep(1)
    raise AssertionError(f"the notebook was still running after {timeout_s} s")


def _figures(page):
    """The sources of every image shown in the notebook (matplotlib figures, image widgets)."""
    return page.evaluate("() => [...document.querySelectorAll('.jp-Notebook img')].map(i => i.src)")


def _prompts(page):
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-Cell.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent)")


def _run_all(page, name, timeout_s):
    """Run > Run All Cells, as a person would; retried once if the kernel never starts on it."""
    for attempt in range(2):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        deadline = time.time() + 60
        while time.time() < deadline and not any(any(ch.isdigit() for ch in p) for p in _prompts(page)):
            time.sleep(1)
        if any(any(ch.isdigit() for ch in p) for p in _prompts(page)):
            break
    _wait_idle(page, timeout_s)


def _shut_down_kernels(lab, name):
    """End the notebook's kernels through the server's REST API, as Kernel > Shut Down Kernel does: eleven idle
    kernels that each loaded a network would otherwise hold several GB until the server stops."""
    auth = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/sessions", headers=auth)) as r:
        sessions = json.loads(r.read())
    for session in sessions:
        if session.get("path", "").endswith(name):
            urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/sessions/{session['id']}",
                                                          headers=auth, method="DELETE")).read()


def _open(page, lab, name, workspace):
    """Open a notebook in a JupyterLab workspace of its own (JupyterLab would otherwise reopen the previous
    notebooks too) and wait for its kernel."""
    page.goto(f"{lab['base']}/lab/workspaces/{workspace}/tree/{name}?token={lab['token']}&reset")
    page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
    # a notebook with a kernelspec opens without asking for a kernel
    assert page.locator(".jp-Dialog", has_text="Select Kernel").count() == 0
    page.wait_for_function(
        "() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'",
        timeout=120_000)
    time.sleep(3)  # let the kernel connection settle before the first request
    no_news = page.locator(".jp-toast-button", has_text="No")
    if no_news.count():
        no_news.first.click()  # JupyterLab's "get notified about news?" toast


def _run_cells(page, name, cells, indices, timeout_s):
    """Run these of the notebook's `cells` one by one as a person does: click the cell's prompt to select it,
    Ctrl+Enter, wait until it has run (the first one tried again if the kernel never starts on it)."""
    for n, i in enumerate(indices):
        cell = page.locator(".jp-Notebook .jp-Cell").nth(i)
        cell.scroll_into_view_if_needed()
        first_line = "".join(cells[i]["source"]).strip().splitlines()[0].strip()
        deadline = time.time() + 30  # JupyterLab draws a cell's editor once it has scrolled into view
        while first_line not in cell.inner_text():
            assert time.time() < deadline, f"{name}: cell {i} on the page is not the notebook's cell {i}"
            time.sleep(0.5)
        for attempt in range(2 if n == 0 else 1):
            cell.locator(".jp-InputPrompt").first.click()
            page.keyboard.press("Control+Enter")
            deadline = time.time() + (60 if n == 0 and attempt == 0 else timeout_s)
            while time.time() < deadline and not any(ch.isdigit() for ch in cell.locator(".jp-InputPrompt").first.inner_text()):
                time.sleep(0.5)
            if any(ch.isdigit() for ch in cell.locator(".jp-InputPrompt").first.inner_text()):
                break
        else:
            raise AssertionError(f"{name}: cell {i} did not run in {timeout_s} s")
    _wait_idle(page, timeout_s, all_cells=False)


def _open_and_run(page, lab, name, workspace, timeout_s, panel_call):
    """Open the notebook, then Run All Cells (RUN_ALL) or run the cells its panel needs (`panel_cells`)."""
    _open(page, lab, name, workspace)
    if name == RUN_ALL:
        _run_all(page, name, timeout_s)
    else:
        cells = json.loads((lab["dir"] / name).read_text())["cells"]
        _run_cells(page, name, cells, panel_cells(cells, panel_call), timeout_s)


def _errors_in_saved_notebook(page, path):
    page.keyboard.press("Control+s")
    time.sleep(2)
    nb = json.loads(path.read_text())
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"])
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _control(page, kind, label):
    """The first ipywidgets control of a kind ('slider', 'dropdown') whose label reads `label`."""
    box = page.locator(f".jupyter-widgets.widget-{kind}", has=page.locator("label.widget-label", has_text=label))
    assert box.count(), f"no {kind} labelled {label!r} on the page"
    return box.first


def _act(page, action):
    """Do what a person does to the panel (one action, or a list done in order); return a description."""
    if isinstance(action, list):
        return ", then ".join(_act(page, a) for a in action)
    if "dropdown" in action:
        label, value = action["dropdown"]
        select = _control(page, "dropdown", label).locator("select")
        select.scroll_into_view_if_needed()
        select.select_option(value)
        return f"picked {value!r} in the dropdown {label!r}"
    if "slider" in action:
        handle = _control(page, "slider", action["slider"]).locator(".noUi-handle")
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(action.get("steps", 3)):
            page.keyboard.press("ArrowRight")
        return f"moved the slider {action['slider']!r} right"
    if "button" in action:
        button = page.locator(".jupyter-widgets button", has_text=action["button"]).first
        button.scroll_into_view_if_needed()
        button.click()
        return f"pressed {action['button']!r}"
    raise ValueError(action)


@pytest.mark.parametrize("name,panel_call,action,budget", SPECS, ids=[s[0] for s in SPECS])
def test_notebook_runs_and_panel_responds(lab, browser, name, panel_call, action, budget):
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = name[:-6]
    (SHOTS / f"{stem}_failure.png").unlink(missing_ok=True)  # from an earlier run
    page = browser.new_page()
    try:
        _open_and_run(page, lab, name, stem, budget, panel_call)
        page.screenshot(path=str(SHOTS / f"{stem}_before.png"), full_page=False)
        errors = _errors_in_saved_notebook(page, lab["dir"] / name)
        assert not errors, f"{name}: cells show errors: {errors}"
        text = page.locator(".jp-Notebook").inner_text()
        for bad in ("Loading widget...", "Error displaying widget", "VBox(children=", "HBox(children="):
            assert bad not in text, f"{name}: widgets did not render ({bad!r} shown)"
        assert page.locator(".jupyter-widgets").count() > 0, f"{name}: no widget rendered"
        before = _figures(page)
        assert before, f"{name}: no figure shown"
        what = _act(page, action)
        deadline = time.time() + budget
        while _figures(page) == before:
            assert time.time() < deadline, f"{name}: the figure did not change after: {what}"
            time.sleep(0.5)
        _wait_idle(page, budget, all_cells=name == RUN_ALL)
        if "button" in str(action):  # run_panel's label says "running..." until the run has finished
            while page.locator(".jupyter-widgets", has_text="running...").count():
                assert time.time() < deadline, f"{name}: still running {budget} s after: {what}"
                time.sleep(0.5)
        time.sleep(1)
        page.screenshot(path=str(SHOTS / f"{stem}_after.png"), full_page=False)  # the panel is in view
        assert not _errors_in_saved_notebook(page, lab["dir"] / name)
    except Exception:
        page.screenshot(path=str(SHOTS / f"{stem}_failure.png"))
        raise
    finally:
        page.close()
        _shut_down_kernels(lab, name)


DECK = ("09_fast_style.ipynb", "panels.style_blend_panel(", "A -> B")  # the notebook, its panel cell, a slider


def test_deck_panel_is_live_in_the_slideshow(lab, browser):
    """A lecturer's flow: run the notebook, select the panel's cell and open the deck as RISE's "Open as Reveal
    Slideshow" does (the notebook saved, then /rise/<path>?activeCellIndex=<cell> in a tab of its own, full
    width for the projector): it opens at the panel's slide, where the slider moves and the figure changes."""
    name, panel_cell, slider = DECK
    stem = name[:-6]
    page = browser.new_page()
    try:
        _open_and_run(page, lab, name, f"{stem}-deck", 600, panel_cell)
        # Alt+R's "Render as Reveal Slideshow": the deck beside the notebook, at the selected cell's slide, with
        # the panel as widgets (with a widget manager the RISE app cannot load it shows "VBox(children=...)")
        page.locator(".jp-Cell", has_text=panel_cell).first.locator(".jp-InputPrompt").click()
        page.locator(".jp-NotebookPanel-toolbar [data-command='RISE:preview']").first.click()
        beside = page.frame_locator("iframe[src*='/rise/']").locator(".reveal .slides section.present").last
        beside.locator(".jupyter-widgets.widget-slider").first.wait_for(timeout=120_000)
        assert "VBox(children=" not in beside.inner_text()
        page.screenshot(path=str(SHOTS / f"{stem}_deck_beside.png"))
        page.keyboard.press("Control+s")
        time.sleep(2)
        cells = json.loads((lab["dir"] / name).read_text())["cells"]
        index = next(i for i, c in enumerate(cells) if panel_cell in "".join(c["source"]))
        notebook, page = page, browser.new_page()  # the slideshow's own tab; the notebook's stays open
        page.goto(f"{lab['base']}/rise/{name}?activeCellIndex={index}&token={lab['token']}")
        deck = page.main_frame
        slide = deck.locator(".reveal .slides section.present").last
        control = slide.locator(".jupyter-widgets.widget-slider",
                                has=deck.locator("label.widget-label", has_text=slider))
        control.wait_for(timeout=120_000)  # the panel, as widgets (not "VBox(children=...)"), on the slide
        assert slide.locator(".jp-InputArea", has_text=panel_cell).count(), "the deck did not open at the panel"
        cell = slide.locator(".jp-Cell", has_text=panel_cell).first
        images = lambda: cell.evaluate("c => [...c.querySelectorAll('.jp-OutputArea img')].map(i => i.src)")  # noqa: E731
        deadline = time.time() + 60
        while not images():
            assert time.time() < deadline, "the panel on the slide shows no figure"
            time.sleep(0.5)
        before = images()
        page.screenshot(path=str(SHOTS / f"{stem}_deck.png"))
        # drag the handle with the mouse: the arrow keys belong to reveal.js (they change slides)
        control.scroll_into_view_if_needed()
        box = control.locator(".noUi-handle").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        deadline = time.time() + 120
        while images() == before:
            assert time.time() < deadline, "the figure on the slide did not change after the slider moved"
            time.sleep(0.5)
        assert slide.locator(".jp-InputArea", has_text=panel_cell).count(), "the deck left the panel's slide"
        time.sleep(2)
        page.screenshot(path=str(SHOTS / f"{stem}_deck_after.png"))
    except Exception:
        page.screenshot(path=str(SHOTS / f"{stem}_deck_failure.png"))
        raise
    finally:
        for p in {page, locals().get("notebook", page)}:
            p.close()
        _shut_down_kernels(lab, name)
