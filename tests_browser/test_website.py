"""The website of the executed course (`make site`, scripts/build_site.py) in Chromium, as a reader meets it.

It is built from the executed notebooks in build/ (`make test` leaves them there; `make site` executes what is
missing), served on localhost, and read page by page: every notebook page shows all its figures (counted
against the executed notebook), every panel says it is live in JupyterLab, no internal link is broken, the
papers are linked and the search finds "Grad-CAM". Screenshots go to build/screenshots/.
"""
import functools
import html.parser
import http.server
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import nbformat
import pytest

from conftest import ROOT, SHOTS

sys.path.insert(0, str(ROOT / "scripts"))
from build_site import widget_tree_outputs  # noqa: E402  (scripts/ is not a package)

SITE = ROOT / "build" / "site" / "_build" / "html"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


@pytest.fixture(scope="module")
def site():
    """`make site`, then the built folder on a local HTTP server (as any static host serves it)."""
    subprocess.run(["make", "site"], cwd=ROOT, check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def executed_figures(name):
    """How many pictures the executed notebook holds: image outputs (the panels' inlined) and markdown images."""
    nb = nbformat.read(ROOT / "build" / name, as_version=4)
    outputs = sum(any(t in o.get("data", {}) for t in IMAGE_TYPES) for c in nb.cells for o in c.get("outputs", []))
    markdown = sum(c.source.count("![") for c in nb.cells if c.cell_type == "markdown")
    return outputs + markdown


def executed_panels(name):
    nb = nbformat.read(ROOT / "build" / name, as_version=4)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return sum(widget_tree_outputs(state, o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"])
               for c in nb.cells for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_page_shows_every_figure(site, browser, path):
    page = browser.new_page()
    try:
        page.goto(f"{site}/{path.stem}.html")
        page.wait_for_load_state("load")
        images = page.evaluate("""() => [...document.querySelectorAll('article.bd-article img')]
            .map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))""")
        broken = [i["src"] for i in images if not i["ok"]]
        assert not broken, f"{path.stem}: images that did not load: {broken[:5]}"
        assert len(images) == executed_figures(path.name), (
            f"{path.stem}: the page shows {len(images)} images, the executed notebook has {executed_figures(path.name)}")
        live = page.locator("article.bd-article .live-panel").count()
        assert live == executed_panels(path.name) >= 1, f"{path.stem}: {live} panels say they are live"
        papers = page.locator("article.bd-article p", has_text="Papers").last
        assert papers.locator("a[href^='http']").count() >= 2, f"{path.stem}: the papers are not linked"
        assert page.title().startswith(path.stem[:2]), page.title()
        assert "BEGIN SOLUTION" not in page.locator("article.bd-article").inner_text(), "a solution is on the page"
        page.locator(".live-panel").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"site_{path.stem[:2]}_panel.png"))
    finally:
        page.close()


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def _fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode("utf-8", "replace") if "html" in r.headers.get("Content-Type", "") else ""


def test_no_broken_internal_link(site):
    """Every page reachable from the landing page: each internal link, picture, script and style sheet is
    served, and each #anchor exists on its page."""
    seen, queue, parsed, broken = set(), [f"{site}/index.html"], {}, []
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            text = _fetch(url)
        except urllib.error.HTTPError as e:
            broken.append(f"{url}: {e.code}")
            continue
        if not text:
            continue
        p = Links()
        p.feed(text)
        parsed[url] = p
        for href in p.links:
            target = urllib.parse.urljoin(url, href)
            if not target.startswith(site):
                continue
            page_url, _, anchor = target.partition("#")
            if anchor:
                queue.append(page_url)
                parsed.setdefault("anchors", []).append((url, page_url, anchor))
            queue.append(page_url)
    for source, page_url, anchor in parsed.pop("anchors", []):
        ids = parsed[page_url].ids if page_url in parsed else set()
        if urllib.parse.unquote(anchor) not in ids:
            broken.append(f"{source} links to #{anchor} in {page_url}, which has no such id")
    pages = [u for u in parsed if u.endswith(".html")]
    assert all(any(u.endswith(f"/{p.stem}.html") for u in pages) for p in NOTEBOOKS), "a notebook page is not linked"
    assert not broken, f"{len(broken)} broken internal links of {len(seen)} checked: {broken[:10]}"


def test_landing_page_is_the_gallery_and_the_course_map(site, browser):
    page = browser.new_page()
    try:
        page.goto(f"{site}/index.html")
        page.wait_for_load_state("load")
        gallery = page.evaluate("""() => [...document.querySelectorAll('article.bd-article a img')].map(i => ({
            ok: i.complete && i.naturalWidth > 0, href: i.closest('a').getAttribute('href')}))""")
        readme = (ROOT / "README.md").read_text()
        assert len(gallery) == readme.count("](docs/gallery/") and all(g["ok"] for g in gallery)
        assert all(g["href"].split("#")[0].endswith(".html") for g in gallery), gallery
        toc = page.evaluate("() => [...document.querySelectorAll('nav.bd-links a')].map(a => a.textContent.trim())")
        numbers = [t[:2] for t in toc if t[:2].isdigit()]
        assert numbers == [p.stem[:2] for p in NOTEBOOKS], f"the table of contents is not the course map: {toc[:14]}"
        page.screenshot(path=str(SHOTS / "site_index.png"))
    finally:
        page.close()


def test_search_finds_gradcam(site, browser):
    page = browser.new_page()
    try:
        page.goto(f"{site}/search.html?q=Grad-CAM")
        results = page.locator("#search-results ul.search li")
        deadline = time.time() + 30
        while results.count() == 0:
            assert time.time() < deadline, "the search found nothing for Grad-CAM"
            time.sleep(0.5)
        found = page.evaluate("() => [...document.querySelectorAll('#search-results ul.search li a')].map(a => a.getAttribute('href'))")
        assert any(h.startswith("03_") or h.startswith("04_") for h in found), found
        page.screenshot(path=str(SHOTS / "site_search.png"))
    finally:
        page.close()
