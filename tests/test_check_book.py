"""scripts/check_book.py: the parts that need no browser (pages, math and link detectors, toc, Colab link)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "http://127.0.0.1:8123"


def _load_script():
    spec = importlib.util.spec_from_file_location("check_book", ROOT / "scripts" / "check_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cb():
    return _load_script()


# --- pages --------------------------------------------------------------------------------------------------

def _touch(path: Path, text: str = "<html></html>"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_list_pages_skips_asset_folders_and_finds_new_chapters(cb, tmp_path):
    for rel in ["index.html", "search.html", "book/intro.html", "notebooks/01_a.html",
                "notebooks/06_new.html", "_static/webpack-macros.html", "_sources/notebooks/01_a.ipynb",
                "_images/x.html",
                "notebooks/.ipynb_checkpoints/01_a.html"]:
        _touch(tmp_path / rel)
    assert cb.list_pages(tmp_path) == ["book/intro.html", "index.html", "notebooks/01_a.html",
                                       "notebooks/06_new.html", "search.html"]


def test_list_pages_rejects_a_missing_build(cb, tmp_path):
    with pytest.raises(ValueError, match="html_dir"):
        cb.list_pages(tmp_path / "nothing")


def test_redirect_target(cb):
    page = '<html><head><meta http-equiv="Refresh" content="0; url=book/intro.html" /></head></html>'
    assert cb.redirect_target(page) == "book/intro.html"
    assert cb.redirect_target("<html><head><meta charset='utf-8'></head></html>") is None


def test_screenshot_name(cb):
    assert cb.screenshot_name("notebooks/01_a.html") == "notebooks--01_a.png"
    assert cb.screenshot_name("index.html", "-math") == "index-math.png"


def test_toc_pages_reads_parts_chapters_and_sections(cb):
    toc = {"format": "jb-book", "root": "book/intro",
           "parts": [{"caption": "A", "chapters": [{"file": "notebooks/01_a"},
                                                   {"file": "notebooks/02_b.ipynb",
                                                    "sections": [{"file": "book/extra.md"}]}]},
                     {"caption": "B",
                      "chapters": [{"url": "https://example.org"}, {"file": "book/notation"}]}]}
    assert cb.toc_pages(toc) == ["book/intro.html", "notebooks/01_a.html", "notebooks/02_b.html",
                                 "book/extra.html", "book/notation.html"]
    with pytest.raises(TypeError, match="toc"):
        cb.toc_pages(["book/intro"])


def test_toc_pages_of_this_book_are_all_chapters(cb):
    import yaml

    pages = cb.toc_pages(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
    assert pages[0] == "book/intro.html"
    assert any(p.startswith("notebooks/01_") for p in pages)


# --- requests and console -----------------------------------------------------------------------------------

def test_is_local(cb):
    assert cb.is_local(f"{ORIGIN}/_static/mathjax/tex-chtml.js", ORIGIN)
    assert cb.is_local("data:image/png;base64,AAAA", ORIGIN)
    assert not cb.is_local("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js", ORIGIN)
    assert not cb.is_local("http://127.0.0.1:9999/x.js", ORIGIN)  # another port is another server
    assert not cb.is_local("http://localhost:8123/x.js", ORIGIN)


def test_console_lines_that_repeat_a_failed_request_are_left_to_the_request_report(cb):
    assert cb.is_reported_elsewhere("Failed to load resource: net::ERR_INTERNET_DISCONNECTED")
    message = "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared"
    assert not cb.is_reported_elsewhere(message)


def test_limit_repeats(cb):
    problems = [f"formula not typeset: {k}" for k in range(8)] + ["HTTP 404: a", "HTTP 404: a"]
    out = cb.limit_repeats(problems, keep=3)
    assert out == ["formula not typeset: 0", "formula not typeset: 1", "formula not typeset: 2",
                   "HTTP 404: a", "... and 5 more 'formula not typeset' problems"]


# --- mathematics --------------------------------------------------------------------------------------------

TYPESET = (
    '<p>The width <span class="math notranslate nohighlight"><mjx-container class="MathJax" jax="CHTML">'
    '<mjx-math><mjx-mi>σ</mjx-mi></mjx-math></mjx-container></span> sets the scale.</p>'
    '<div class="math notranslate nohighlight" id="equation-a"><span class="eqno">(1)</span>'
    '<mjx-container class="MathJax" jax="CHTML" display="true"><mjx-math>x</mjx-math></mjx-container></div>'
)


def test_typeset_page_passes(cb):
    assert cb.find_untypeset_math(f"<html><body>{TYPESET}</body></html>") == []


def test_formula_left_as_tex_is_found(cb):
    page = '<p>Width <span class="math notranslate nohighlight">\\(\\sigma\\)</span>.</p>' + TYPESET
    problems = cb.find_untypeset_math(page)
    assert len(problems) == 1 and problems[0].startswith("formula not typeset") and "sigma" in problems[0]


def test_display_formula_left_as_tex_is_found(cb):
    page = '<div class="math notranslate nohighlight">\\[ x = \\frac{1}{2} \\]</div>'
    assert cb.find_untypeset_math(page)[0].startswith("formula not typeset")


@pytest.mark.parametrize("text", ["$$ x^2 $$", "where $\\sigma$ is small", "\\( x \\)", "\\[ y \\]",
                                  "\\begin{align} a \\end{align}"])
def test_raw_tex_in_prose_is_found(cb, text):
    problems = cb.find_untypeset_math(f"<html><body><p>Text {text} here.</p></body></html>")
    assert problems and problems[0].startswith("raw TeX in the text")


@pytest.mark.parametrize("text", ["costs $5 and $6", "a 50% cut", "C:/path"])
def test_ordinary_prose_is_not_tex(cb, text):
    assert cb.find_untypeset_math(f"<p>{text}</p>") == []


def test_tex_in_code_and_scripts_is_not_prose(cb):
    page = ("<pre>print('$\\sigma$ and $$')</pre><code>\\(x\\)</code>"
            "<script>var s = '\\\\[ x \\\\]';</script><style>/* $$ */</style>")
    assert cb.find_untypeset_math(page) == []


def test_mathjax_error_output_is_found(cb):
    page = ('<span class="math"><mjx-container class="MathJax"><mjx-merror>'
            '<mjx-mtext>Undefined control sequence</mjx-mtext></mjx-merror></mjx-container></span>')
    problems = cb.find_untypeset_math(page)
    assert problems == ["MathJax error in a formula: 'Undefined control sequence'"]


def test_unclosed_tags_do_not_hide_text(cb):
    page = "<div><p>one<p>two $$ x $$</div><p>three</p>"
    assert any("raw TeX" in p for p in cb.find_untypeset_math(page))


# --- links --------------------------------------------------------------------------------------------------

def test_check_links(cb, tmp_path):
    _touch(tmp_path / "book/intro.html", '<h1 id="top">x</h1>')
    _touch(tmp_path / "notebooks/01_a.html", '<section id="smoothing">x</section>')
    _touch(tmp_path / "index.html")

    def ids_of(rel):
        return cb.page_ids((tmp_path / rel).read_text())

    hrefs = [f"{ORIGIN}/notebooks/01_a.html#smoothing", f"{ORIGIN}/book/intro.html#top", f"{ORIGIN}/",
             "https://arxiv.org/abs/2008.06520", "mailto:someone@example.org",
             f"{ORIGIN}/notebooks/06_missing.html", f"{ORIGIN}/book/intro.html#nowhere"]
    problems, external = cb.check_links("book/intro.html", hrefs, tmp_path, ORIGIN, ids_of)
    assert external == 1
    assert problems == ["broken link: /notebooks/06_missing.html (no file notebooks/06_missing.html)",
                        "broken link: /book/intro.html#nowhere (no id 'nowhere' in book/intro.html)"]


def test_colab_link_follows_the_config(cb):
    config = {"repository": {"url": "https://github.com/gfbook/gfbook", "path_to_book": "", "branch": "main"},
              "launch_buttons": {"colab_url": "https://colab.research.google.com"}}
    assert cb.colab_link(config, "notebooks/01_a.html") == (
        "https://colab.research.google.com/github/gfbook/gfbook/blob/main/notebooks/01_a.ipynb")
    config["repository"]["path_to_book"] = "docs/"
    assert cb.colab_link(config, "x.html").endswith("/blob/main/docs/x.ipynb")
    assert cb.colab_link({"repository": config["repository"]}, "x.html") is None
    assert cb.colab_link({}, "x.html") is None


def test_colab_link_of_this_book_points_at_main(cb):
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    link = cb.colab_link(config, "notebooks/01_shapes_as_distributions.html")
    assert link is not None and "/blob/main/notebooks/01_shapes_as_distributions.ipynb" in link


# --- running without a browser ------------------------------------------------------------------------------

def test_missing_build_is_an_error_not_a_pass(cb, tmp_path, capsys):
    assert cb.main(["--html", str(tmp_path / "none")]) == cb.EXIT_CANNOT_RUN
    assert "make book" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "expected"), [({"CI": "true", "BOOK_CHECK_ALLOW_SKIP": "1"}, 2),
                                               ({"BOOK_CHECK_ALLOW_SKIP": "1"}, 77),
                                               ({}, 2)])
def test_missing_chromium_skips_only_when_allowed_and_never_in_ci(cb, tmp_path, monkeypatch, capsys, env,
                                                                   expected):
    _touch(tmp_path / "index.html")
    for name in ("CI", "BOOK_CHECK_ALLOW_SKIP", "BOOK_CHECK_CHROMIUM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium on PATH
    code = cb.main(["--html", str(tmp_path), "--book", str(tmp_path),
                    "--screenshots", str(tmp_path / "shots")])
    out = capsys.readouterr()
    assert code == expected
    if expected == 77:
        assert "SKIP" in out.out and "NOT checked" in out.out
    else:
        assert "error" in out.err
