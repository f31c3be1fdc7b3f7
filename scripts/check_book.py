"""Load every page of the built book in headless Chromium, offline; fail on what a reader would see broken.

The book is read offline (README: open _build/html/index.html, or serve the folder on localhost), so this
check serves _build/html on 127.0.0.1 (a free port) and loads each page in headless Chromium with every
request to any other host blocked. A page fails on

- an error in the browser console or an uncaught exception (e.g. a script added to the page twice),
- a request that fails or answers 4xx/5xx, and any request that leaves 127.0.0.1: a page must not need a
  network (links a reader may click, ``<a href="https://...">``, are not loaded; only their count is printed),
- mathematics left untypeset: a Sphinx formula (``.math``) without MathJax's ``mjx-container``, TeX delimiters
  or commands left in the visible text (``$$``, ``\\(``, ``\\[``, ``\\begin{``, ``$\\sigma$``), or a formula
  that MathJax typeset as an error,
- a same-site link to a missing page or anchor, and a notebook page without its Colab launch link,
- a page listed in _toc.yml that was not built.

It keeps a screenshot of the top of every page, and of its first displayed formula when it has one, under
_build/screenshots/ (page path with "/" as "--", e.g. notebooks--01_shapes_as_distributions.png).

Chromium: the OS package (Debian: ``apt-get install chromium``), driven by the Python package ``playwright``
through ``executable_path``; Playwright's own browser download is never used. The binary is --chromium, else
$BOOK_CHECK_CHROMIUM, else the first of chromium, chromium-browser, google-chrome, google-chrome-stable.

Usage: python scripts/check_book.py [--html DIR] [--screenshots DIR] [--chromium PATH] [--timeout SECONDS]
Exit status: 0 every page clean; 1 problems (one line each); 2 nothing built, or Chromium/Playwright missing;
77 Chromium/Playwright missing and BOOK_CHECK_ALLOW_SKIP=1: a SKIP that says why (never when CI=true).
"""

from __future__ import annotations

import argparse
import functools
import html
import os
import re
import shutil
import sys
import threading
import time
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_PROBLEMS, EXIT_CANNOT_RUN, EXIT_SKIPPED = 0, 1, 2, 77

# Flags for a headless Chromium on a machine without network or display (root, so no sandbox).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1280, "height": 900}

# Elements whose text is code, data or MathJax's output, not prose: TeX there is no typesetting failure.
_NOT_PROSE = {"pre", "code", "script", "style", "textarea", "mjx-container", "svg", "kbd", "samp", "noscript",
              "template", "title"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
         "track", "wbr"}
# TeX a reader should never see as text: display/inline delimiters, environments, and $...$ holding a command.
_TEX_RESIDUE = re.compile(
    r"\$\$"
    r"|\\\(|\\\)|\\\[|\\\]"
    r"|\\begin\{"
    r"|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$"
)


# ------------------------------------------------------------------------------------------------------------
# Pure parts (tested in tests/test_check_book.py without a browser)
# ------------------------------------------------------------------------------------------------------------

def list_pages(html_dir: Path) -> list[str]:
    """Every page of a Sphinx HTML build, as paths relative to ``html_dir`` with "/", sorted.

    Folders whose name starts with "_" (_static, _sources, _images, ...) hold assets, not pages: skipped.

    Raises:
        ValueError: if ``html_dir`` is not a folder.
    """
    html_dir = Path(html_dir)
    if not html_dir.is_dir():
        raise ValueError(f"html_dir: {html_dir} is not a folder (run `make book` first)")
    pages = []
    for path in html_dir.rglob("*.html"):
        rel = path.relative_to(html_dir)
        if any(part.startswith("_") or part.startswith(".") for part in rel.parts[:-1]):
            continue
        pages.append(rel.as_posix())
    return sorted(pages)


_REFRESH = re.compile(
    r"""<meta\s[^>]*http-equiv\s*=\s*["']?refresh["']?[^>]*content\s*=\s*["']\s*\d+\s*;\s*url\s*=\s*([^"'>]+)""",
    re.IGNORECASE,
)


def redirect_target(page_html: str) -> str | None:
    """The URL of a ``<meta http-equiv="refresh">`` redirect page (Sphinx's root index.html), else None."""
    match = _REFRESH.search(page_html)
    return html.unescape(match.group(1).strip()) if match else None


def screenshot_name(page: str, suffix: str = "") -> str:
    """Screenshot file of a page: "notebooks/01_x.html" -> "notebooks--01_x.png" (``suffix`` before .png)."""
    stem = page[: -len(".html")] if page.endswith(".html") else page
    return stem.replace("/", "--") + suffix + ".png"


def is_local(url: str, origin: str) -> bool:
    """Whether the browser request ``url`` stays on the book's server ``origin`` ("http://127.0.0.1:PORT").

    data:, blob: and about: URLs never touch a network and count as local.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("data", "blob", "about"):
        return True
    parts, base = urlsplit(url), urlsplit(origin)
    return (parts.scheme, parts.netloc) == (base.scheme, base.netloc)


def is_reported_elsewhere(console_text: str) -> bool:
    """Console errors that only repeat a failed request, which the request handlers report with its URL."""
    return console_text.startswith("Failed to load resource:")


class _Node:
    """An element: tag, classes, parent, and children (elements or text strings)."""

    __slots__ = ("tag", "classes", "parent", "children")

    def __init__(self, tag: str, classes: tuple[str, ...], parent: _Node | None):
        self.tag, self.classes, self.parent = tag, classes, parent
        self.children: list = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, _Node):
                yield from c.iter()


class _TreeBuilder(HTMLParser):
    """A small, forgiving DOM: enough to ask which text sits inside which element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = _Node("#document", (), None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        classes = tuple((dict(attrs).get("class") or "").split())
        node = _Node(tag, classes, self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        classes = tuple((dict(attrs).get("class") or "").split())
        self.cur.children.append(_Node(tag, classes, self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:  # close it (and anything left open inside it)
            self.cur = node.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def _parse(page_html: str) -> _Node:
    builder = _TreeBuilder()
    builder.feed(page_html)
    builder.close()
    return builder.root


def _snippet(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def find_untypeset_math(page_html: str) -> list[str]:
    """Problems with the mathematics of a page as the browser holds it after MathJax ran (``page.content()``).

    - every Sphinx formula (an element with class ``math``) must hold a MathJax ``mjx-container``;
    - visible prose (outside pre, code, script, style and MathJax output) must hold no TeX: ``$$``,
      ``\\(``, ``\\)``, ``\\[``, ``\\]``, ``\\begin{``, or ``$...$`` around a command such as ``\\sigma``;
    - MathJax must not have typeset a formula as an error (``mjx-merror``).

    Returns:
        one message per problem, empty when the page's math is all typeset.
    """
    problems: list[str] = []
    root = _parse(page_html)
    for node in root.iter():
        if "math" in node.classes and node.tag not in ("mjx-container",):
            if not any(n.tag == "mjx-container" for n in node.iter()):
                problems.append(f"formula not typeset: {_snippet(node.text())!r}")
        if node.tag == "mjx-merror":
            problems.append(f"MathJax error in a formula: {_snippet(node.text())!r}")

    def walk(node: _Node):
        for child in node.children:
            if isinstance(child, str):
                for match in _TEX_RESIDUE.finditer(child):
                    start = max(0, match.start() - 25)
                    problems.append(f"raw TeX in the text: {_snippet(child[start:match.end() + 25])!r}")
            elif child.tag not in _NOT_PROSE and "math" not in child.classes:
                walk(child)

    walk(root)
    return problems


_ID = re.compile(r"""\sid\s*=\s*["']([^"']+)["']""")


def page_ids(page_html: str) -> set[str]:
    """The ``id`` attributes of a page (link anchors)."""
    return {html.unescape(m) for m in _ID.findall(page_html)}


def check_links(page: str, hrefs: list[str], html_dir: Path, origin: str, ids_of) -> tuple[list[str], int]:
    """Same-site links of ``page`` that point to a missing file or anchor; and the number of external links.

    Args:
        page: the page, relative to ``html_dir`` ("notebooks/01_x.html").
        hrefs: absolute URLs of its ``<a href>`` as the browser resolved them against ``origin``/``page``.
        ids_of: function(relative page path) -> set of ids on that page.

    Returns:
        (problems, number of links to other hosts, which are not followed).
    """
    problems, external = [], 0
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme in ("mailto", "javascript", "tel", "data"):
            continue
        if not is_local(href, origin):
            external += 1
            continue
        path = unquote(parts.path).lstrip("/")
        target = html_dir / path
        if path == "" or target.is_dir():
            path = (Path(path) / "index.html").as_posix()
            target = html_dir / path
        if not target.is_file():
            problems.append(f"broken link: {href[len(origin):]} (no file {path})")
            continue
        frag = unquote(parts.fragment)
        if frag and path.endswith(".html") and frag not in ids_of(path):
            problems.append(f"broken link: {href[len(origin):]} (no id {frag!r} in {path})")
    return problems, external


_SOURCE_SUFFIXES = (".md", ".ipynb", ".rst", ".myst", ".py")


def toc_pages(toc: dict) -> list[str]:
    """The pages a Jupyter Book ``_toc.yml`` (loaded) asks for, as built paths ("notebooks/01_x.html").

    Walks ``root`` and every ``file`` under parts, chapters, sections, subtrees and entries; ``url`` and
    ``glob`` entries name no single page and are left out.

    Raises:
        TypeError: if ``toc`` is not a mapping.
    """
    if not isinstance(toc, dict):
        raise TypeError(f"toc: expected the mapping read from _toc.yml, got {type(toc).__name__}")
    files: list[str] = []

    def add(name: str):
        name = str(name).strip().lstrip("/")
        for suffix in _SOURCE_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        page = name + ".html"
        if page not in files:
            files.append(page)

    def walk(entry):
        if isinstance(entry, dict):
            if "root" in entry:
                add(entry["root"])
            if "file" in entry:
                add(entry["file"])
            for key in ("parts", "chapters", "sections", "subtrees", "entries"):
                for child in entry.get(key) or []:
                    walk(child)
        elif isinstance(entry, list):
            for child in entry:
                walk(child)

    walk(toc)
    return files


def colab_link(config: dict, page: str) -> str | None:
    """The Colab launch link that sphinx-book-theme puts on a notebook page, from ``_config.yml`` (loaded).

    Args:
        config: the book's _config.yml; uses launch_buttons.colab_url, repository.url, .branch, .path_to_book.
        page: the built page, "notebooks/01_x.html".

    Returns:
        "https://colab.research.google.com/github/ORG/REPO/blob/BRANCH/notebooks/01_x.ipynb", or None when the
        config asks for no Colab button (no colab_url, or a repository that is not on GitHub).
    """
    colab = str((config.get("launch_buttons") or {}).get("colab_url") or "").strip("/")
    repository = config.get("repository") or {}
    repo_url = str(repository.get("url") or "")
    if not colab or "github.com/" not in repo_url:
        return None
    org, repo = repo_url.split("github.com/")[-1].strip("/").split("/")[:2]
    branch = repository.get("branch") or "main"
    prefix = str(repository.get("path_to_book") or "").strip("/")
    prefix = prefix + "/" if prefix else ""
    stem = page[: -len(".html")] if page.endswith(".html") else page
    return f"{colab}/github/{org}/{repo}/blob/{branch}/{prefix}{stem}.ipynb"


def limit_repeats(problems: list[str], keep: int = 5) -> list[str]:
    """Drop repeats; keep the first ``keep`` problems of each kind (the text before ":"), then a count."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for problem in dict.fromkeys(problems):
        kind = problem.split(":", 1)[0]
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= keep:
            out.append(problem)
    out += [f"... and {n - keep} more '{kind}' problems" for kind, n in seen.items() if n > keep]
    return out


# ------------------------------------------------------------------------------------------------------------
# Server and browser
# ------------------------------------------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(html_dir: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``html_dir`` on 127.0.0.1 at a free port from a daemon thread; returns (server, origin)."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of the Chromium binary to drive (see the module docstring), or None."""
    for candidate in (explicit, os.environ.get("BOOK_CHECK_CHROMIUM")):
        if candidate:
            return candidate if Path(candidate).is_file() else shutil.which(candidate)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


# After MathJax's first typesetting pass: whether it loaded and finished, and the TeX of formulas it could
# only show as errors (merror, or an undefined macro drawn in red by the noundefined extension).
_MATHJAX_STATE_JS = """
async (timeoutMs) => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return {loaded: false, done: false, errors: []};
  const done = await Promise.race([mj.startup.promise.then(() => true),
                                   new Promise(resolve => setTimeout(() => resolve(false), timeoutMs))]);
  if (!done) return {loaded: true, done: false, errors: []};
  const errors = [];
  try {
    for (const item of mj.startup.document.math) {
      let bad = false;
      item.root.walkTree(n => {
        if (n.isKind('merror') || (n.isKind('mtext') && n.attributes.get('mathcolor') === 'red')) bad = true;
      });
      if (bad) errors.push(item.math);
    }
  } catch (e) { errors.push('(could not inspect MathJax output: ' + e + ')'); }
  return {loaded: true, done: true, errors};
}
"""
_HREFS_JS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.href)"
_FIRST_DISPLAY_MATH = "mjx-container[display='true']"


def check_pages(html_dir: Path, pages: list[str], shots: Path, chromium: str, timeout_s: float,
                config: dict | None = None):
    """Load ``pages`` in headless Chromium; returns ({page: [problems]}, external links, {page: seconds}).

    With ``config`` (the loaded _config.yml), a page built from a notebook must carry its Colab launch link.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    server, origin = serve(html_dir)
    results: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    external_links = 0
    id_cache: dict[str, set[str]] = {}

    def ids_of(rel: str) -> set[str]:
        if rel not in id_cache:
            id_cache[rel] = page_ids((html_dir / rel).read_text(encoding="utf-8", errors="replace"))
        return id_cache[rel]

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport=VIEWPORT, service_workers="block")
            blocked: list[str] = []

            def route(r):
                if is_local(r.request.url, origin):
                    r.continue_()
                else:
                    blocked.append(f"request leaves the machine ({r.request.resource_type}): {r.request.url}")
                    r.abort("internetdisconnected")

            context.route("**/*", route)
            for rel in pages:
                t0 = time.perf_counter()
                problems: list[str] = []
                blocked.clear()
                source = (html_dir / rel).read_text(encoding="utf-8", errors="replace")
                target = redirect_target(source)
                if target is not None:  # a redirect page: check where it points instead of racing the refresh
                    link = urljoin(f"{origin}/{rel}", target)
                    link_problems, _ = check_links(rel, [link], html_dir, origin, ids_of)
                    results[rel] = link_problems
                    timings[rel] = time.perf_counter() - t0
                    continue
                page = context.new_page()
                page.on("console", lambda m, p=problems: (
                    m.type == "error" and not is_reported_elsewhere(m.text)
                    and p.append(f"console error: {m.text}")))
                page.on("pageerror", lambda e, p=problems: p.append(f"uncaught exception: {e}"))
                page.on("response", lambda r, p=problems: (
                    r.status >= 400 and p.append(f"HTTP {r.status}: {r.url}")))
                page.on("requestfailed", lambda r, p=problems: (
                    is_local(r.url, origin)
                    and p.append(f"request failed ({r.failure}): {r.url}")))
                try:
                    page.goto(f"{origin}/{rel}", wait_until="load", timeout=timeout_s * 1000)
                    state = page.evaluate(_MATHJAX_STATE_JS, timeout_s * 1000)
                    if state["loaded"] and not state["done"]:
                        problems.append(f"MathJax still typesetting after {timeout_s:g} s")
                    try:
                        page.wait_for_load_state("networkidle", timeout=timeout_s * 1000)
                    except PlaywrightError:
                        problems.append(f"still loading after {timeout_s:g} s")
                    dom = page.content()
                    math_problems = find_untypeset_math(dom)
                    if math_problems and not state["loaded"]:
                        problems.append("MathJax did not load, so no formula is typeset")
                    problems += math_problems
                    problems += [f"MathJax could not typeset: {_snippet(tex)!r}" for tex in state["errors"]]
                    hrefs = page.evaluate(_HREFS_JS)
                    link_problems, n_ext = check_links(rel, hrefs, html_dir, origin, ids_of)
                    problems += link_problems
                    external_links += n_ext
                    colab = colab_link(config or {}, rel)
                    built_from_notebook = (html_dir / "_sources" / rel).with_suffix(".ipynb").is_file()
                    if colab and built_from_notebook and colab not in hrefs:
                        problems.append(f"no Colab launch link: {colab}")
                    page.evaluate("window.scrollTo(0, 0)")
                    page.screenshot(path=str(shots / screenshot_name(rel)))
                    formula = page.locator(_FIRST_DISPLAY_MATH).first
                    if formula.count():
                        formula.evaluate("e => e.scrollIntoView({block: 'center'})")
                        page.screenshot(path=str(shots / screenshot_name(rel, "-math")))
                except PlaywrightError as exc:
                    problems.append(f"could not load the page: {str(exc).splitlines()[0]}")
                finally:
                    page.close()
                problems += blocked
                results[rel] = limit_repeats(problems)
                timings[rel] = time.perf_counter() - t0
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return results, external_links, timings


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _cannot_run(reason: str) -> int:
    """Chromium or Playwright is missing: fail, or SKIP (exit 77) where BOOK_CHECK_ALLOW_SKIP=1 outside CI."""
    if _truthy(os.environ.get("CI")):
        print(f"check_book: error: {reason}. In CI the check must run: .ci/run installs Debian's chromium.",
              file=sys.stderr)
        return EXIT_CANNOT_RUN
    if _truthy(os.environ.get("BOOK_CHECK_ALLOW_SKIP")):
        print(f"check_book: SKIP: {reason}. The pages were NOT checked (BOOK_CHECK_ALLOW_SKIP=1).")
        return EXIT_SKIPPED
    print(f"check_book: error: {reason}. Install it (Debian: apt-get install chromium; the playwright "
          "package comes with `make venv`), or set BOOK_CHECK_ALLOW_SKIP=1 to skip this check knowingly.",
          file=sys.stderr)
    return EXIT_CANNOT_RUN


def _load_yaml(path: Path) -> dict:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _book_config(book: Path) -> dict:
    path = book / "_config.yml"
    return _load_yaml(path) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html",
                        help="the built book (_build/html)")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots",
                        help="where the screenshots go (_build/screenshots)")
    parser.add_argument("--chromium", help="Chromium binary (default: $BOOK_CHECK_CHROMIUM, else on PATH)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page to load (60)")
    parser.add_argument("--book", type=Path, default=ROOT,
                        help="folder with _config.yml and _toc.yml (the repository root)")
    args = parser.parse_args(argv)

    if not (args.html / "index.html").is_file():
        print(f"check_book: error: no {args.html / 'index.html'}; build the book first (make book)",
              file=sys.stderr)
        return EXIT_CANNOT_RUN
    pages = list_pages(args.html)
    config, missing = _book_config(args.book), []
    toc_path = args.book / "_toc.yml"
    if toc_path.is_file():
        missing = [p for p in toc_pages(_load_yaml(toc_path)) if p not in pages]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return _cannot_run("the Python package playwright is not installed")
    chromium = find_chromium(args.chromium)
    if chromium is None:
        asked = args.chromium or os.environ.get("BOOK_CHECK_CHROMIUM")
        tried = f"{asked!r} given" if asked else f"tried {', '.join(CHROMIUM_NAMES)} on PATH"
        return _cannot_run(f"no Chromium binary found ({tried})")

    if args.screenshots.exists():
        shutil.rmtree(args.screenshots)
    args.screenshots.mkdir(parents=True)
    print(f"check_book: {len(pages)} pages of {args.html} in {chromium}, offline")
    t0 = time.perf_counter()
    results, external_links, timings = check_pages(args.html, pages, args.screenshots, chromium, args.timeout,
                                                   config)
    failed = len(missing)
    for rel in missing:
        print(f"FAIL {rel}\n     - listed in {toc_path.name} but not built")
    for rel in pages:
        problems = results.get(rel, ["not checked"])
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {rel} ({timings.get(rel, 0.0):.1f} s)")
        for problem in problems:
            print(f"     - {problem}")
    passed = len(pages) + len(missing) - failed
    print(f"check_book: {passed} passed, {failed} failed in {time.perf_counter() - t0:.0f} s; "
          f"{external_links} links to other sites not followed; screenshots in {args.screenshots}")
    return EXIT_PROBLEMS if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
