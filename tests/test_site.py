"""scripts/build_site.py, the parts that need no browser: what a static page makes of a panel and a progress
bar, links into the package, the landing page, and that every paper a notebook cites is linked.
tests_browser/test_website.py builds the whole site and reads it in Chromium."""
import glob
import pathlib
import re
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import build_site  # noqa: E402  (scripts/ is not a package)

VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOKS = sorted(glob.glob(str(ROOT / "notebooks" / "[0-9]*.ipynb")))


def _view(model_id):
    return nbformat.v4.new_output("display_data", data={VIEW: {"model_id": model_id, "version_major": 2}})


def _notebook():
    """A panel (VBox > [Button, Output]) and a tqdm bar (HBox > [HTML, FloatProgress, HTML]), as nbclient saves them."""
    state = {"panel": {"state": {"_model_name": "VBoxModel", "children": ["IPY_MODEL_go", "IPY_MODEL_out"]}},
             "go": {"state": {"_model_name": "ButtonModel"}},
             "out": {"state": {"_model_name": "OutputModel", "outputs": []}},
             "bar": {"state": {"_model_name": "HBoxModel", "children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
             "l": {"state": {"_model_name": "HTMLModel", "value": "steps: 100%"}},
             "p": {"state": {"_model_name": "FloatProgressModel", "value": 30}},
             "r": {"state": {"_model_name": "HTMLModel", "value": " 30/30 [00:02&lt;00:00]"}}}
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("See [the loop](../course_utils/optimize/loop.py) and [01](01_filters.ipynb)."),
        nbformat.v4.new_code_cell("panels.x_panel()", outputs=[_view("panel"), figure]),
        nbformat.v4.new_code_cell("for _ in tqdm(range(30)): pass", outputs=[_view("bar")])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state, "version_major": 2}}
    return nb


def test_a_panel_becomes_the_live_line_and_its_figure_stays():
    page = build_site.static_notebook(_notebook())
    outputs = page.cells[1].outputs
    assert [o.output_type for o in outputs] == ["display_data", "display_data"]
    assert outputs[0].data == {"text/html": build_site.LIVE} and "image/png" in outputs[1].data
    assert "widgets" not in page.metadata  # no ipywidgets JavaScript from a CDN on the page


def test_a_progress_bar_becomes_its_text():
    bar = build_site.static_notebook(_notebook()).cells[2].outputs
    assert [(o.output_type, o.text) for o in bar] == [("stream", "steps: 100%  30/30 [00:02<00:00]\n")]


def test_links_into_the_package_become_its_pages():
    text = build_site.static_notebook(_notebook()).cells[0].source
    assert "](source/course_utils/optimize/loop.py.md)" in text and "](01_filters.ipynb)" in text


def test_every_package_link_in_the_course_has_a_page(tmp_path):
    pages = set(build_site.write_source_pages(tmp_path))
    assert not [p for p in pages if "per_notebook" in p], "the exercises' references are on the website"
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            for target in re.findall(r"\]\(([^)]+)\)", build_site.rewrite_links(cell.source)):
                if target.startswith("source/"):
                    assert target in pages and (tmp_path / target).exists(), f"{path}: no page for {target}"
                else:
                    assert target.startswith(("http", "#")) or (ROOT / "notebooks" / target).exists(), target


def test_the_landing_page_holds_the_gallery_and_the_course_map():
    executed = {pathlib.Path(p).name for p in NOTEBOOKS}
    page = build_site.landing_page(executed)
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"\[!\[[^\]]*\]\(gallery/([^)]+)\)\]\((\d\d_\w+\.ipynb)\)", page)
    assert len(pictures) == readme.count("](docs/gallery/") and {nb for _, nb in pictures} == executed
    assert all((ROOT / "docs" / "gallery" / image).exists() for image, _ in pictures)
    assert all(f"]({name})" in page for name in executed), "the course map links every notebook"


def test_every_paper_a_notebook_cites_is_linked():
    """The **Papers.** paragraph that ends each notebook: every title (in italics) is a link."""
    for path in NOTEBOOKS:
        text = "".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
        papers = text[text.index("**Papers"):]
        linked = re.findall(r"\[\*[^*]+\*\]\((https?://[^)]+)\)", papers)
        rest = re.sub(r"\[\*[^*]+\*\]\([^)]+\)", "", papers).replace("**", "")
        unlinked = [t for t in re.findall(r"\*([^*]+)\*", rest) if len(t.split()) > 1]  # one word: emphasis
        assert not unlinked and len(linked) >= 2, f"{pathlib.Path(path).name}: titles without a link: {unlinked}"


def test_the_pages_hand_out_no_solution():
    """The executed copies ran with the solutions; their pages show the student's version, as `make assignments`
    writes it: every exercise a stub, every check cell without the verdict the solution earned, every written
    answer 'YOUR ANSWER HERE'."""
    from course_utils.grading.notebooks import BEGIN, student_version

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:  # as executed: a check cell shows its verdict
            if "nbgrader" in cell.metadata and cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="passed all cases")]
        page = build_site.static_notebook(nb)
        student = student_version(nbformat.read(path, as_version=4))
        for mine, theirs in zip(page.cells, student["cells"]):
            assert BEGIN not in mine.source
            if "nbgrader" in mine.metadata:
                assert mine.source == "".join(theirs["source"]) and not mine.get("outputs")
