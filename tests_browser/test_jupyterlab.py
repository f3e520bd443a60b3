"""The course in a real browser: JupyterLab in headless Chromium, used as a person would.

`make test-browser` runs this file. It starts JupyterLab from the project's .venv on localhost with
a token, opens notebooks in Debian's Chromium (driven by Playwright, no browser download), runs all
cells from the Run menu, checks that no cell shows an error and that the widgets render as widgets,
then moves a slider, picks from a dropdown or presses a Run button and checks that the figure
changed. Screenshots go to build/screenshots/. The server is killed at the end, pass or fail.
"""
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage"]

# notebook, what a person does to its interactive panel, how long a run-all may take (s; generous: this
# test checks that the course works in a browser, `make bench` checks speed)
SPECS = [
    ("00_start_here.ipynb", {"dropdown": "coffee"}, 600),  # a dropdown: the cheap view redraws
    ("01_filters.ipynb", {"slider": 0, "steps": 3}, 600),  # the channel slider of the filter/activation view
    ("05_gradient_ascent.ipynb", {"button": "Run"}, 900),  # a Run button: optimizes with a live preview
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: `make test-browser` installs Debian's chromium package")
    return path


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


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=_chromium(), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            yield ctx
        finally:
            ctx.close()


def _wait_idle(page, timeout_s):
    """Wait until no cell is queued or running ([*]) and the kernel is idle."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        busy = page.evaluate("""() => {
            const prompts = [...document.querySelectorAll('.jp-Cell.jp-CodeCell .jp-InputPrompt')];
            const running = prompts.some(p => p.textContent.includes('*'));
            const unrun = prompts.some(p => /\\[\\s*\\]/.test(p.textContent));
            const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const idle = !ind || ind.getAttribute('data-status') === 'idle';
            return running || unrun || !idle;
        }""")
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


def _errors_in_saved_notebook(page, path):
    page.keyboard.press("Control+s")
    time.sleep(2)
    nb = json.loads(path.read_text())
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"])
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _act(page, action):
    """Do what a person does to the panel; return a description."""
    if "dropdown" in action:
        select = page.locator(".jupyter-widgets select").first
        select.scroll_into_view_if_needed()
        select.select_option(action["dropdown"])
        return f"picked {action['dropdown']!r} in the dropdown"
    if "slider" in action:
        handle = page.locator(".jupyter-widgets .noUi-handle").nth(action["slider"])
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(action.get("steps", 3)):
            page.keyboard.press("ArrowRight")
        return f"moved slider {action['slider']} right"
    if "button" in action:
        button = page.locator(".jupyter-widgets button", has_text=action["button"]).first
        button.scroll_into_view_if_needed()
        button.click()
        return f"pressed {action['button']!r}"
    raise ValueError(action)


@pytest.mark.parametrize("name,action,budget", SPECS, ids=[s[0] for s in SPECS])
def test_notebook_runs_and_panel_responds(lab, browser, name, action, budget):
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = name[:-6]
    (SHOTS / f"{stem}_failure.png").unlink(missing_ok=True)  # from an earlier run
    page = browser.new_page()
    try:
        # a workspace of its own per notebook: JupyterLab would otherwise reopen the previous notebooks too
        page.goto(f"{lab['base']}/lab/workspaces/{stem}/tree/{name}?token={lab['token']}&reset")
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
        _run_all(page, name, budget)
        page.screenshot(path=str(SHOTS / f"{stem}_run_all.png"), full_page=False)
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
        _wait_idle(page, budget)
        if "button" in action:  # run_panel's label says "running..." until the run has finished
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
