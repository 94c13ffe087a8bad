"""The published book, tested in a real browser (headless Chromium driven by Playwright).

The site built by the session fixture `built_book` (tests/conftest.py) is served on
127.0.0.1, and every page of `_toc.yml` is opened with every request to another host blocked.
Each page must render its math (MathJax, served by the site), load every image, render its
widgets (ipywidgets, from the state embedded at execution), link the right notebook in Colab,
and log no error. Screenshots of the introduction and chapter 1 go to `_build/screenshots/`.

Needs a Chromium: `$PNC_CHROMIUM`, `chromium` on the PATH (Debian's, which `make test` installs
as root) or Playwright's own (`playwright install chromium`, which `make test` tries otherwise);
found by `tools/ensure_system.find_chromium`, the function `make test` uses. Without one these
tests are skipped and the closing summary of pytest says so (root `conftest.py`).
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from ensure_system import find_chromium  # noqa: E402

CHROMIUM = find_chromium()
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: not in $PNC_CHROMIUM, not on the PATH, no Playwright browser "
    "(Debian: apt-get install chromium)")


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part["chapters"]:
            pages.append(ch["file"])
            pages += [s["file"] for s in ch.get("sections", [])]
    return pages


def _colab_link(page: str) -> str:
    """The Colab address JB1 must generate for `page`, from `_config.yml`."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = cfg["repository"]
    org_repo = urlsplit(repo["url"]).path.strip("/").removesuffix(".git")
    book = (repo.get("path_to_book") or "").strip("/")
    path = f"{book}/{page}" if book else page
    colab = cfg["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{org_repo}/blob/{repo.get('branch', 'main')}/{path}.ipynb"


PAGES = _toc_pages()

# Text outside code that is TeX which MathJax did not typeset: delimiters, common commands,
# and $...$ that dollarmath did not parse.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\(?:begin|end|frac|mathbf|mathrm|operatorname|sum|left"
                     r"|right|alpha|sigma|lambda|epsilon|top|cdot|le|ge)\b"
                     r"|(?<![\w$])\$[^\s$][^$\n]{0,60}[_^\\{}][^$\n]{0,60}\$(?![\w$])")

# Visible text of the page, without code, scripts and typeset math.
JS_PROSE = """() => {
  const skip = new Set(["SCRIPT", "STYLE", "PRE", "CODE", "TEXTAREA", "NOSCRIPT",
                        "MJX-CONTAINER", "MJX-ASSISTIVE-MML"]);
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    let p = n.parentElement, ok = true;
    for (; p; p = p.parentElement) if (skip.has(p.tagName)) { ok = false; break; }
    if (ok) out.push(n.textContent);
  }
  return out.join(" ");
}"""

JS_WIDGETS_RENDERED = """() => {
  const views = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]');
  return Array.from(views).every(s => {
    const area = s.previousElementSibling;
    return area && area.classList.contains("widget-subarea")
        && area.querySelector(".jupyter-widgets, .lm-Widget") !== null;
  });
}"""

JS_IMAGES = """async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener("load", r); i.addEventListener("error", r); setTimeout(r, 10000); })));
  return imgs.map(i => ({src: i.src.slice(0, 120), ok: i.complete && i.naturalWidth > 0}));
}"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def site(built_book):
    """The built site served on 127.0.0.1 (a free port); yields its base URL."""
    html = built_book.html
    assert (html / "index.html").exists(), "the book was not built:\n" + built_book.log_tail()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class _Visit:
    """A browser page that records console errors, page errors and blocked external requests."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                           service_workers="block")
        self.errors: list[str] = []
        self.external: list[str] = []
        self.failed: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console: {m.text} ({m.location.get('url', '')})"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(
            f"HTTP {r.status} {r.url}"))

    def _route(self, route):
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:  # the site must not need the network: block, record, and check it still works
            self.external.append(url)
            route.abort("blockedbyclient")

    def problems(self) -> list[str]:
        return ([f"request to another host: {u}" for u in self.external]
                + self.failed + self.errors)

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser):
    v = _Visit(browser)
    yield v
    v.close()


@pytest.mark.parametrize("docname", PAGES)
def test_page_renders_offline(site, visit, docname):
    page = visit.page
    page.goto(f"{site}/{docname}.html", wait_until="load")
    failures: list[str] = []
    html = page.content()

    # math: every math element typeset by MathJax, no TeX error, no raw TeX left in the prose
    n_math = page.locator(".math").count()
    if n_math:
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup"
                                   ".promise", timeout=15_000)
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
        except PlaywrightError as err:
            failures.append(f"MathJax did not start: {str(err).splitlines()[0]}")
        untypeset = page.locator(".math:not(:has(mjx-container))").count()
        if untypeset or page.locator("mjx-container").count() == 0:
            failures.append(f"{untypeset} of {n_math} math elements not typeset by MathJax")
        if page.locator("mjx-merror").count():
            failures.append(f"MathJax errors: {page.locator('mjx-merror').all_inner_texts()[:5]}")
    raw = sorted({m.group(0) for m in RAW_TEX.finditer(page.evaluate(JS_PROSE))})
    if raw:
        failures.append(f"raw TeX in the rendered text: {raw}")

    # widgets: every embedded view rendered from the saved widget state
    n_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if "application/vnd.jupyter.widget-state+json" in html:
        assert n_views, "widget state without any widget view"
        try:
            page.wait_for_function(JS_WIDGETS_RENDERED, timeout=20_000)
        except PlaywrightError:
            failures.append(f"{n_views} widget view(s) not rendered")

    # images (figures and widget images): all loaded
    images = page.evaluate(JS_IMAGES)
    broken = [i["src"] for i in images if not i["ok"]]
    if broken:
        failures.append(f"{len(broken)} of {len(images)} images not loaded: {broken[:5]}")

    # Colab: the launch link of a chapter opens this notebook from the repository
    colab = sorted(set(page.eval_on_selector_all(
        'a[href*="colab.research.google.com"]', "els => els.map(e => e.href)")))
    if (ROOT / f"{docname}.ipynb").exists():
        if colab != [_colab_link(docname)]:
            failures.append(f"Colab link {colab}, expected {_colab_link(docname)}")
    elif colab:
        failures.append(f"Colab link on a page without a notebook: {colab}")

    if docname in (PAGES[0], "book/ch01_metrics"):
        _screenshots(page, docname)

    failures += visit.problems()
    assert not failures, f"{docname}:\n" + "\n".join(failures) + _hint(failures)


def _hint(failures: list[str]) -> str:
    if any("THEBE_JS_URL" in f for f in failures):
        return ("\n(Sphinx 7.4 writes sphinx-thebe's inline script twice: load tools/"
                "sphinx_dedupe_js.py with `sphinx: local_extensions: {sphinx_dedupe_js: tools/}`"
                " in _config.yml)")
    return ""


def _screenshots(page, docname: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = Path(docname).name
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    widget = page.locator(".widget-subarea").first
    if widget.count():
        widget.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}_widget.png"))
    figure = page.locator("div.cell_output img").first
    if figure.count():
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}_figure.png"))


def test_search_finds_pages(site, visit):
    page = visit.page
    page.goto(f"{site}/search.html?q=compression", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=TIMEOUT_MS)
    hits = page.locator("#search-results ul.search li a").all_inner_texts()
    assert hits, "search for 'compression' found nothing"
    assert not visit.problems(), "\n".join(visit.problems()) + _hint(visit.problems())


def test_book_builds_without_warnings(built_book):
    """Build the whole book with execution (quick mode) and -W -n: no warning, no broken link.

    Figures and their cross-references exist only in executed notebooks, so the build
    executes every chapter, as `make book` does, but at quick-mode scale. The build itself is
    the session fixture `built_book` (tests/conftest.py), shared with the browser tests below
    (one file, so that `pytest -n 2 --dist loadfile` builds the book once).
    """
    assert built_book.returncode == 0, built_book.log_tail()
    html = built_book.html
    assert (html / "book" / "intro.html").exists()
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        page = (html / "book" / f"{nb.stem}.html").read_text()
        assert "<img" in page or not nb.exists(), f"{nb.stem}: no figure was rendered"
