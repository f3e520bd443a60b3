"""`make site`: the executed course as a website, built offline with Jupyter Book 1 (Sphinx + myst-nb).

    python scripts/build_site.py [--executed build] [--out build/site]

The pages are the notebooks as `make run` (or `make test`, tests/test_nbconvert.py) executed them into
build/: nothing is executed here. The landing page is the README's gallery and course map; the table of
contents follows the course map; every panel shows the figure it drew when executed, under a line saying
that it is live in JupyterLab; the source files the notebooks link to become pages of their own, so the
site has no link that leads out of it except to the papers. Sphinx writes the search index.

Jupyter Book does the work (Sphinx, myst-nb's notebook renderer, the book theme, search); this script only
lays out its source folder: the pages, _toc.yml and _config.yml. The website is
build/site/_build/html/ (open index.html, or publish the folder on any static host).
"""
import argparse
import copy
import html
import json
import pathlib
import re
import shutil
import subprocess
import sys

import nbformat

from course_utils.grading.notebooks import BEGIN, strip_answer, strip_solutions

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIVE = ('<p class="live-panel"><b>Live panel.</b> In JupyterLab (<code>make lab</code>) this is an interactive '
        'panel: its sliders, menus and buttons redraw the figure. Below is what it drew when the notebook was '
        'executed.</p>')
TITLE = "Understanding and visualizing convolutional networks"


def readme_section(heading):
    """The lines of the README's section `## heading`, up to the next `## `."""
    text = (ROOT / "README.md").read_text()
    part = text.split(f"\n## {heading}\n", 1)[1]
    return part.split("\n## ", 1)[0].strip()


def widget_tree_outputs(state, model_id, seen=None):
    """Does the widget `model_id` hold an Output widget (a panel's drawing area), at any depth?"""
    seen = seen if seen is not None else set()
    if model_id in seen or model_id not in state:
        return False
    seen.add(model_id)
    s = state[model_id].get("state", state[model_id])
    if s.get("_model_name") == "OutputModel":
        return True
    return any(widget_tree_outputs(state, str(c).removeprefix("IPY_MODEL_"), seen) for c in s.get("children", []))


def widget_text(state, model_id):
    """The text a widget without drawing area shows (a tqdm bar: its two HTML labels and the count)."""
    s = state.get(model_id, {}).get("state", {})
    parts = [widget_text(state, str(c).removeprefix("IPY_MODEL_")) for c in s.get("children", [])]
    value = s.get("value")
    if s.get("_model_name") == "HTMLModel" and isinstance(value, str):
        parts.append(html.unescape(re.sub(r"<[^>]+>", "", value)).replace("\xa0", " "))
    return " ".join(p for p in parts if p.strip())


def static_notebook(nb):
    """A copy of an executed notebook for a static page: each panel's widget becomes the line saying it is
    live (its pictures follow: nbexec inlined them), a progress bar becomes its last text, and the saved
    widget state goes (myst-nb would load ipywidgets' JavaScript from a CDN to show it). Exercises and
    written answers are the student's version (`make assignments`): a public page must not hand out the
    solutions that the executed copy ran with."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(strip_answer(cell.source) if BEGIN in cell.source else cell.source)
        if cell.cell_type != "code":
            continue
        if "nbgrader" in cell.metadata:  # an exercise: the student's stub, not the solution nor its check's verdict
            cell.source, cell.outputs = strip_solutions(cell.source) if BEGIN in cell.source else cell.source, []
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outputs.append(out)
            elif widget_tree_outputs(state, view["model_id"]):
                outputs.append(nbformat.v4.new_output("display_data", data={"text/html": LIVE}))
            elif text := widget_text(state, view["model_id"]).strip():
                outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
        cell.outputs = outputs
    return nb


SOURCE_LINK = re.compile(r"\]\(\.\./((?:course_utils|tests)/[^)#\s]*)\)")


def rewrite_links(markdown):
    """`../course_utils/x.py` (a link from notebooks/ into the package) -> the site's page of that file."""
    return SOURCE_LINK.sub(lambda m: f"]({source_page(m.group(1))})", markdown)


def source_page(rel):
    """The site page (relative to the site's root) that shows the repository file or folder `rel`."""
    rel = rel.rstrip("/")
    if (ROOT / rel).is_dir():
        return f"source/{rel}/index.md"
    return f"source/{rel}" if rel.endswith(".md") else f"source/{rel}.md"


def fence(text):
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def write_source_pages(src):
    """One page per package file (code, with a heading naming it), one per folder listing its files."""
    pages = []
    # not the exercises' references (grading/per_notebook/): the website shows the student's version
    files = sorted(p for p in (ROOT / "course_utils").rglob("*") if p.suffix in (".py", ".json", ".md")
                   and "__pycache__" not in p.parts and "per_notebook" not in p.parts)
    files += [ROOT / "tests" / "test_architectures.py"]
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        page = src / source_page(rel)
        page.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text()
        if path.suffix == ".md":  # a README of the package's data: the page itself, its pictures beside it
            for image in re.findall(r"\]\(([^)]+\.png)\)", text):
                if (path.parent / image).exists():
                    (page.parent / image).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path.parent / image, page.parent / image)
            body = re.sub(r"^# ", f"# `{rel}`: ", text, count=1, flags=re.M)
        else:
            lang = {"py": "python", "json": "json"}[path.suffix[1:]]
            f = fence(text)
            body = f"# `{rel}`\n\n{f}{lang}\n{text}\n{f}\n"
        page.write_text(body)
        pages.append(source_page(rel))
    for folder in sorted({p.parent for p in files}):
        rel = folder.relative_to(ROOT).as_posix()
        index = src / source_page(rel + "/")
        index.parent.mkdir(parents=True, exist_ok=True)
        entries = [p for p in files if p.parent == folder]
        subdirs = sorted({p.parent for p in files if p.parent.parent == folder})
        lines = [f"# `{rel}/`", ""]
        lines += [f"- [`{p.name}`]({pathlib.PurePath(source_page(p.relative_to(ROOT).as_posix())).name})" for p in entries]
        lines += [f"- [`{d.name}/`]({d.name}/index.md)" for d in subdirs]
        index.write_text("\n".join(lines) + "\n")
        pages.append(source_page(rel + "/"))
    return pages


def landing_page(executed):
    """The README's gallery (each picture links to its notebook) and course map, and how to run it."""
    gallery = readme_section("Gallery")
    rows = re.findall(r"^\| !\[[^\]]*\]\(docs/gallery/([^)]+)\) \| (.+?) \|$", gallery, re.M)
    lines = [f"# {TITLE}", "",
             "A hands-on course in eleven Jupyter notebooks that opens up a real ImageNet network and looks inside:",
             "its filters, its features, which pixels a decision depends on, what images its units want to see, how",
             "to turn its statistics into art, and how easily it is fooled. These pages are the notebooks as they",
             "ran, with every figure; to play with the sliders and do the exercises, run them yourself:", "",
             "```bash", "make lab    # set up .venv on first use, then open the course in JupyterLab", "```", "",
             "## Gallery", ""]
    for image, caption in rows:
        stem = re.match(r"(\d\d_[a-z_]+?)(?:-[a-z]+)?\.png", image).group(1)
        nb = f"{stem}.ipynb"
        assert nb in executed, f"the gallery shows {image}, but there is no notebook {nb}"
        lines += [f"[![{stem}](gallery/{image})]({nb})", "", caption, ""]
    course_map = readme_section("Course map")
    course_map = re.sub(r"\]\(notebooks/", "](", course_map).split("\n\nThe lecture material")[0]
    lines += ["## Course map", "", course_map, ""]
    return "\n".join(lines)


CONFIG = {
    "title": TITLE,
    "author": "the course team",
    "only_build_toc_files": True,
    "execute": {"execute_notebooks": "off"},  # the notebooks come executed
    "html": {"home_page_in_navbar": True, "use_repository_button": False},
    "launch_buttons": {"notebook_interface": "jupyterlab"},
    "sphinx": {"config": {"nb_output_stderr": "remove",  # warnings and progress bars' stderr are noise on a page
                          "html_show_copyright": False, "suppress_warnings": ["myst.header", "misc.highlighting_failure"],
                          "html_last_updated_fmt": None}},
}


def build(executed_dir, out):
    executed = {p.name: p for p in (executed_dir / n.name for n in NOTEBOOKS) if p.exists()}
    missing = [n.name for n in NOTEBOOKS if n.name not in executed]
    if missing:
        sys.exit(f"no executed copy in {executed_dir}/ of: {', '.join(missing)} (`make run` writes them)")
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "gallery").mkdir(parents=True)
    for png in (ROOT / "docs" / "gallery").glob("*.png"):
        shutil.copy(png, src / "gallery" / png.name)
    (src / "index.md").write_text(landing_page(executed))
    for name, path in executed.items():
        nbformat.write(static_notebook(nbformat.read(path, as_version=4)), src / name)
    sources = write_source_pages(src)
    toc = {"format": "jb-book", "root": "index", "parts": [
        {"caption": "The course", "chapters": [{"file": n.removesuffix(".ipynb")} for n in executed]},
        {"caption": "The package", "chapters": [{"file": "source/course_utils/index",
                                                 "sections": [{"file": p[:-3]} for p in sources
                                                              if p != "source/course_utils/index.md"]}]}]}
    # JSON is YAML: no YAML writer needed
    (src / "_toc.yml").write_text(json.dumps(toc, indent=1))
    (src / "_config.yml").write_text(json.dumps(CONFIG, indent=1))
    shutil.rmtree(out / "_build", ignore_errors=True)
    cmd = [str(pathlib.Path(sys.executable).parent / "jupyter-book"), "build", str(src), "--path-output", str(out),
           "-W", "--keep-going"]  # a warning (a broken reference, a page left out) fails the build
    subprocess.run(cmd, check=True)
    index = out / "_build" / "html" / "index.html"
    print(f"The website: {index} (publish the folder {index.parent} on any static host)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executed", default=str(ROOT / "build"), help="folder of executed notebooks (make run)")
    p.add_argument("--out", default=str(ROOT / "build" / "site"))
    args = p.parse_args()
    build(pathlib.Path(args.executed), pathlib.Path(args.out))


if __name__ == "__main__":
    main()
