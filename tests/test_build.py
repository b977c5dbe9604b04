"""Tests for build.py: fixture sites built into temp dirs, plus one build of the real repository.

Most tests build tests/fixtures/site (copied to tmp_path, with the real templates/ and static/css) with
pyodide="cdn", which is fast; the self-hosted Pyodide copy is exercised once per module.
They need node_modules/ (uPlot, Pyodide): without it they skip locally, and fail under CI=true.
"""
import ast
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import threading
import urllib.parse
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import build  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "site"
NODE_MODULES = REPO / "node_modules"
CACHE = REPO / ".cache"  # the real wheel cache: downloaded once, shared by every test that needs the wheel
LESSON = "lessons/01-first.md"


def require_node_modules():
    """Skip without node_modules locally; in CI a missing install is a failure, not a skip."""
    if (NODE_MODULES / "pyodide" / "package.json").exists() and (NODE_MODULES / "uplot").is_dir():
        return
    message = "node_modules/ is missing (run `npm ci`): the build vendors Pyodide and uPlot from it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def make_source(dest: Path) -> Path:
    """A copy of the fixture source tree with the real templates and CSS, ready to mutate."""
    shutil.copytree(FIXTURE, dest)
    shutil.copytree(REPO / "templates", dest / "templates")
    shutil.copytree(REPO / "static" / "css", dest / "static" / "css")
    shutil.copy2(REPO / "static" / "site.js", dest / "static" / "site.js")
    return dest


def run_build(src: Path, out: Path, pyodide="cdn", cache=CACHE) -> Path:
    """build() with this checkout's node_modules and wheel cache."""
    return build.build(src, out, pyodide=pyodide, node_modules=NODE_MODULES, cache_dir=cache)


class Page(HTMLParser):
    """Ids, references, scripts and text of one built page (parsed independently of build.py's own checker)."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.refs, self.scripts, self.tags, self.text = set(), [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.refs.append((tag, key, attrs[key]))
        if tag == "script":
            self.scripts.append(attrs.get("src"))

    def handle_data(self, data):
        self.text.append(data)

    def html_attrs(self):
        return next(a for t, a in self.tags if t == "html")


def page(site: Path, path: str) -> Page:
    return Page((site / path).read_text(encoding="utf-8"))


def all_pages(site: Path):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).as_posix().startswith("pyodide/"))


def assert_links_resolve(site: Path, allow_cdn=False):
    """Every relative href/src of every page names a file of the site, and every #anchor an id of its page."""
    parsed = {}

    def ids(target):
        if target not in parsed:
            parsed[target] = page(site, target).ids
        return parsed[target]

    for path in all_pages(site):
        for tag, attr, value in page(site, path).refs:
            parts = urllib.parse.urlsplit(value)
            if parts.scheme or parts.netloc:
                loads = attr == "src" or tag == "link"
                if parts.scheme == "data" or not loads:
                    continue
                assert allow_cdn and value.startswith(build.PYODIDE_CDN), f"{path}: third-party load {value}"
                continue
            target = path
            if parts.path:
                target = os.path.normpath(os.path.join(os.path.dirname(path), urllib.parse.unquote(parts.path)))
                assert not target.startswith(".."), f"{path}: {value} leaves the site"
                if (site / target).is_dir():
                    target = os.path.join(target, "index.html")
                assert (site / target).is_file(), f"{path}: {value} -> {target} missing"
            if parts.fragment and target.endswith(".html"):
                assert parts.fragment in ids(target), f"{path}: {value}: no such anchor"


def snapshot(site: Path) -> dict:
    """Path -> bytes of every file of a built site (to prove a failed build did not touch it)."""
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def listing_text(html_fragment: str) -> str:
    """The source text of a highlighted listing: tags and line-number spans removed, entities decoded."""
    body = re.sub(r'<(span|a) class="ln"[^>]*>\d+</(span|a)>', "", html_fragment)
    body = re.sub(r"<[^>]+>", "", body)
    return build.html.unescape(body)


def listings(html_text: str):
    """(file, first, last, source text) of every code directive on a page."""
    pattern = re.compile(r'<figure class="listing"><figcaption><a href="[^"]*">([^<]+)</a> · lines (\d+)–(\d+)'
                         r"</figcaption>\s*<div class=\"highlight\"><pre>(.*?)</pre>", re.S)
    return [(m.group(1), int(m.group(2)), int(m.group(3)), listing_text(m.group(4))) for m in pattern.finditer(html_text)]


# ---------------------------------------------------------------------------------------------------------------
# Fixture site, CDN mode (fast)
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory):
    require_node_modules()
    base = tmp_path_factory.mktemp("fixture")
    src = make_source(base / "src")
    return src, run_build(src, base / "site", pyodide="cdn")


def test_every_page_and_asset_exists(fixture_site):
    _, site = fixture_site
    for path in ["index.html", "01-first.html", "02-second.html", "code/toy.py.html", "code/__init__.py.html",
                 "widgets/dial.html", "widgets/index.html", "static/css/site.css", "static/css/code.css",
                 "static/site.js", "static/runtime.js", "static/widgets/dial.js",
                 "static/vendor/uplot/uPlot.iife.min.js", "static/vendor/uplot/uPlot.min.css",
                 "py/gpt_mini.zip", "results/00_toy.json", "checkpoints/toy.bin", ".nojekyll"]:
        assert (site / path).is_file(), path
    assert not list(site.parent.glob("site.tmp-*")), "temp build dir left behind"


def test_internal_links_resolve(fixture_site):
    _, site = fixture_site
    assert_links_resolve(site, allow_cdn=True)


def test_every_page_has_root_and_pyodide_and_landmarks(fixture_site):
    _, site = fixture_site
    for path in all_pages(site):
        p = page(site, path)
        html_attrs = p.html_attrs()
        assert html_attrs["lang"] == "en"
        assert html_attrs["data-root"] == ("./" if "/" not in path else "../"), path
        assert html_attrs["data-pyodide"] == build.PYODIDE_CDN
        tags = [t for t, _ in p.tags]
        assert "main" in tags and "header" in tags and "footer" in tags, path
        assert any(t == "a" and a.get("href") == "#main" for t, a in p.tags), f"{path}: no skip link"


def test_math_is_mathml_without_script(fixture_site):
    _, site = fixture_site
    text = (site / "01-first.html").read_text()
    assert text.count("<math ") == 8  # 6 in the prose, the 2 in headings again in the TOC
    assert text.count('display="block"') == 1
    for piece in ("<mfrac>", "&#x1D53C;", "<mtext>KL</mtext>", "&#x003C0;", "&#x003C3;", "&#x003B2;",
                  'fence="true"', "&#x02211;", '<mi mathvariant="normal">r</mi>'):
        assert piece in text, piece
    assert "$HOME" in text and "$not math$" in text, "dollars in code must stay code"
    assert "a price of $5" in text, "escaped dollar must become a literal $"
    assert "mdxph" not in text, "a placeholder leaked"
    scripts = [s for s in page(site, "01-first.html").scripts if s]
    assert not [s for s in scripts if re.search(r"math|katex|tex", s, re.I)], scripts


def test_code_directives_equal_current_source(fixture_site):
    src, site = fixture_site
    source = (src / "gpt_mini" / "toy.py").read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    double = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "double")
    counter = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    bump = next(n for n in counter.body if isinstance(n, ast.FunctionDef) and n.name == "bump")
    expected = [(double.decorator_list[0].lineno, double.end_lineno), (bump.lineno, bump.end_lineno), (1, 3)]
    got = listings((site / "01-first.html").read_text())
    assert [(a, b) for _, a, b, _ in got] == expected
    for file, a, b, text in got:
        assert file == "gpt_mini/toy.py"
        assert text == "\n".join(lines[a - 1:b]) + "\n"


def test_code_page_has_every_line_anchored(fixture_site):
    src, site = fixture_site
    n = len((src / "gpt_mini" / "toy.py").read_text().splitlines())
    ids = page(site, "code/toy.py.html").ids
    assert {f"L{i}" for i in range(1, n + 1)} <= ids
    assert f"L{n + 1}" not in ids
    text = (site / "code/toy.py.html").read_text()
    assert listing_text(text.split('<div class="highlight">', 1)[1].split("</pre>", 1)[0]).rstrip("\n") == \
        (src / "gpt_mini" / "toy.py").read_text().rstrip("\n")


def test_figures_and_results_loop_and_raw(fixture_site):
    _, site = fixture_site
    text = (site / "01-first.html").read_text()
    assert "The final loss was 1.235 with accuracy 81.2%; at step 10 it was 2.5." in text
    assert "<td><code>2+2=</code></td>" in text and "<td><code>3+4=</code></td>" in text
    assert "Literal {{ braces }} stay." in text


def test_widget_directive_and_scripts(fixture_site):
    _, site = fixture_site
    p = page(site, "01-first.html")
    div = next(a for t, a in p.tags if t == "div" and a.get("class") == "widget")
    assert div["data-widget"] == "dial" and div["data-status"] == "booting" and div["aria-busy"] == "true"
    assert json.loads(div["data-knobs"]) == {"turns": 5, "label": "it's <ok>"}  # defaults, overridden
    assert "This widget runs Python in your browser" in "".join(p.text)
    assert p.scripts.index("./static/runtime.js") < p.scripts.index("./static/widgets/dial.js")
    assert "./static/runtime.js" not in page(site, "02-second.html").scripts, "no runtime without widgets"
    standalone = page(site, "widgets/dial.html")
    div = next(a for t, a in standalone.tags if t == "div" and a.get("class") == "widget")
    assert json.loads(div["data-knobs"]) == {"turns": 3, "label": "it's <ok>"}
    assert "../static/runtime.js" in standalone.scripts and "../static/widgets/dial.js" in standalone.scripts
    assert any(t == "a" and a.get("href") == "../widgets/dial.html" for t, a in page(site, "widgets/index.html").tags)


def test_draft_lesson_and_index(fixture_site):
    _, site = fixture_site
    draft = "".join(page(site, "02-second.html").text)
    assert "What the second lesson will be about." in draft and "in preparation" in draft
    index = page(site, "index.html")
    text = " ".join(index.text)
    assert "In preparation" in text
    stages = [a for t, a in index.tags if t == "li" and "stage" in a.get("class", "").split()]
    assert len(stages) == 5
    # what each arrow adds is text on the page (not a title attribute), and so is why each stage exists
    for adds in ("+ chat template", "+ loss mask", "+ reasoning data", "(no loss change)", "+ π", "+ pairs",
                 "+ closed-form", "+ rollouts", "+ KL anchor", "next character of raw text", "closed-form loss"):
        assert adds in text, adds
    assert not [a for t, a in index.tags if "title" in a and t != "title"], "no tooltip-only text"
    whys = {a["id"] for t, a in index.tags if "stage-why" in a.get("class", "").split()}
    assert whys == {f"why-{k}" for k in ("pretrain", "sft", "cot", "dpo", "rlvr")}
    assert "model.py" in text and "same architecture" in text.lower() and "only the data and the loss change" in text.lower()
    # the fixture has no lesson named like a stage: the boxes are not links
    assert not [a for t, a in index.tags if t == "a" and "stage-box" in a.get("class", "")]
    assert "min read" in text and "of reading" in text


def test_lesson_page_navigation_and_toc(fixture_site):
    _, site = fixture_site
    p = page(site, "01-first.html")
    hrefs = [a.get("href") for t, a in p.tags if t == "a"]
    assert "./02-second.html" in hrefs and "./code/toy.py.html" in hrefs
    assert {"#maths", "#code", "#figures", "#widget"} <= set(hrefs)
    assert any(t == "nav" and a.get("class") == "toc" for t, a in p.tags)
    assert "./01-first.html" in [a.get("href") for t, a in page(site, "02-second.html").tags if t == "a"]


def test_math_in_headings_and_attr_list_ids(fixture_site):
    _, site = fixture_site
    text = (site / "01-first.html").read_text()
    p = page(site, "01-first.html")
    assert {"beta", "why-ratios"} <= p.ids, "math must not leak placeholders into heading ids"
    toc = text.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="#beta">The <math' in toc and "mdxph" not in toc
    assert "Jinja comment" not in text


def test_cdn_build_ships_no_pyodide(fixture_site):
    _, site = fixture_site
    assert not (site / "pyodide").exists()
    assert not list(site.rglob("*.whl"))
    assert page(site, "index.html").html_attrs()["data-pyodide"] == "https://cdn.jsdelivr.net/pyodide/v0.27.7/full/"


def test_python_zip_is_deterministic_and_complete(fixture_site, tmp_path):
    src, site = fixture_site
    with zipfile.ZipFile(site / "py" / "gpt_mini.zip") as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert names == ["gpt_mini/__init__.py", "gpt_mini/toy.py", "widgets/__init__.py", "widgets/dial.py",
                         "widgets/dial_data.json"]
        assert {i.date_time for i in zf.infolist()} == {build.ZIP_EPOCH}
        assert zf.read("gpt_mini/toy.py") == (src / "gpt_mini" / "toy.py").read_bytes()
    build.pack_python(src, tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == (site / "py" / "gpt_mini.zip").read_bytes()


def test_default_build_makes_no_third_party_request(tmp_path):
    require_node_modules()
    src = make_source(tmp_path / "src")
    css = (src / "static" / "css" / "site.css").read_text()
    assert "@import" not in css and "url(http" not in css and "@font-face" not in css
    for path in ("templates/base.html",):
        assert "http" not in re.sub(r'xmlns="[^"]+"', "", (src / path).read_text())


# ---------------------------------------------------------------------------------------------------------------
# Errors: each gives path:line and leaves the previous site as it was
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def built(tmp_path):
    """A fresh fixture source and a first good build of it; yields (src, site, snapshot)."""
    require_node_modules()
    src = make_source(tmp_path / "src")
    site = run_build(src, tmp_path / "site")
    return src, site, snapshot(site)


def edit(src: Path, rel_path: str, old: str, new: str):
    path = src / rel_path
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def line_of(src: Path, rel_path: str, needle: str) -> int:
    return next(i for i, line in enumerate((src / rel_path).read_text().splitlines(), 1) if needle in line)


ERRORS = {
    # name: (file, old, new, needle locating the expected line (None: given line), expected line, message part)
    "yaml": (LESSON, 'summary: "Exercises every feature of the build."', "summary: [unclosed", None, 4, "invalid YAML"),
    "no_front_matter": (LESSON, "---\ntitle:", "title:", None, 1, "front matter"),
    "unclosed_front_matter": (LESSON, "widgets: [dial]\n---\n", "widgets: [dial]\n", None, 1, "never closed"),
    "missing_title": (LESSON, 'title: "First — the fixture lesson"\n', "", None, 2, "'title'"),
    "unknown_widget": (LESSON, "name: dial", "name: dials", "name: dials", None, "unknown widget 'dials'"),
    "front_matter_widget": (LESSON, "widgets: [dial]", "widgets: [dial, knob]", None, 5, "unknown widget 'knob'"),
    "front_matter_code": (LESSON, "code: [gpt_mini/toy.py]", "code: [gpt_mini/nope.py]", None, 4, "nope.py"),
    "missing_code_file": (LESSON, "file: gpt_mini/toy.py\nsymbol: double", "file: gpt_mini/gone.py\nsymbol: double",
                          "file: gpt_mini/gone.py", None, "no such file 'gpt_mini/gone.py'"),
    "missing_symbol": (LESSON, "symbol: Counter.bump", "symbol: Counter.pop", "symbol: Counter.pop", None,
                       "'Counter.pop'"),
    "bad_lines": (LESSON, "lines: 1-3", "lines: 1-300", "lines: 1-300", None, "outside gpt_mini/toy.py"),
    "missing_results_file": (LESSON, 'fig("00_toy", "final.acc", ".1%")', 'fig("09_none", "final.acc")',
                             "09_none", None, "results/09_none.json does not exist"),
    "missing_results_key": (LESSON, '"snapshots.1.val_loss"', '"snapshots.7.val_loss"', "snapshots.7", None,
                            "index out of range"),
    "undefined_in_template": (LESSON, "{% for s in results[\"00_toy\"].samples %}",
                              "{% for s in results[\"00_toy\"].sample %}", ".sample %}", None, "sample"),
    "latex_error": (LESSON, r"\text{KL}_{\beta}", r"\frac{KL}{", r"\frac{KL}{", None, "LaTeX error"),
    "latex_unknown_command": (LESSON, r"\text{KL}_{\beta}", r"\notacommand x", r"\notacommand", None,
                              r"unknown command \notacommand"),
    "broken_link": (LESSON, "[the next lesson](02-second.html)", "[the next lesson](03-third.html)", "03-third.html",
                    None, "broken link '03-third.html'"),
    "broken_anchor": (LESSON, "[the maths](#maths)", "[the maths](#mathz)", "#mathz", None, "no id 'mathz'"),
    "broken_code_anchor": (LESSON, "code/toy.py.html#L8", "code/toy.py.html#L800", "#L800", None, "no id 'L800'"),
    "bad_results_json": ("results/00_toy.json", '"final": {', '"final": {,', None, 2, "invalid JSON"),
    "template_error": ("templates/lesson.html", "{{ lesson.summary }}</p>", "{{ lesson.nothing }}</p>", None, None,
                       "nothing"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_reports_path_line_and_keeps_previous_site(built, name):
    src, site, before = built
    file, old, new, needle, line, message = ERRORS[name]
    edit(src, file, old, new)
    with pytest.raises(build.BuildError) as info:
        run_build(src, site)
    err = info.value
    assert err.path == file
    expected_line = line if line is not None else (line_of(src, file, needle) if needle else err.line)
    if name == "template_error":
        expected_line = line_of(src, file, "lesson.nothing")
    assert err.line == expected_line, str(err)
    assert message in err.message, str(err)
    assert str(err).startswith(f"{file}:{expected_line}: ")
    assert snapshot(site) == before, "a failed build touched the previous site"
    assert not list(site.parent.glob("site.tmp-*")), "temp dir left behind"
    assert not list(site.parent.glob("site.old-*"))


def test_crlf_and_bom_lessons_build_the_same(built):
    src, site, before = built
    path = src / LESSON
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    run_build(src, site)
    assert (site / "01-first.html").read_bytes() == before["01-first.html"]


def test_main_prints_path_line_and_exits_1(built, capsys):
    src, site, before = built
    edit(src, LESSON, "name: dial", "name: dials")
    code = build.main(["--src", str(src), "--out", str(site), "--pyodide-cdn"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{LESSON}:{line_of(src, LESSON, 'name: dials')}: unknown widget 'dials'" in err
    assert snapshot(site) == before


def test_main_builds(built):
    src, site, _ = built
    assert build.main(["--src", str(src), "--out", str(site), "--pyodide-cdn"]) == 0
    assert (site / "01-first.html").is_file()


def test_missing_runtime_is_an_error(built):
    src, site, before = built
    (src / "static" / "runtime.js").unlink()
    with pytest.raises(build.BuildError, match="static/runtime.js:1: missing"):
        run_build(src, site)


def test_draft_may_name_future_code_and_widgets_but_written_lesson_may_not(built):
    src, site, _ = built  # 02-second.md names a missing file and widget, yet the build passed
    path = src / "lessons" / "02-second.md"
    path.write_text(path.read_text() + "Now it has a body.\n")
    with pytest.raises(build.BuildError, match=r"lessons/02-second.md:4: .*missing_yet.py"):
        run_build(src, site)


def test_refuses_to_overwrite_sources_or_foreign_dirs(built, tmp_path):
    src, _, _ = built
    with pytest.raises(build.BuildError, match="over the sources"):
        run_build(src, src)
    with pytest.raises(build.BuildError, match="over the sources"):
        run_build(src, src / "lessons")
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(build.BuildError, match="not a site this script built"):
        run_build(src, foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_missing_node_modules_says_npm_ci(built, tmp_path):
    src, site, _ = built
    with pytest.raises(build.BuildError, match="npm ci"):
        build.build(src, site, pyodide="cdn", node_modules=tmp_path / "nothing", cache_dir=CACHE)


# ---------------------------------------------------------------------------------------------------------------
# Self-hosted Pyodide and the verified NumPy wheel
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_site(tmp_path_factory):
    """The fixture site with self-hosted Pyodide (downloads the NumPy carrier into .cache/ on first use)."""
    require_node_modules()
    base = tmp_path_factory.mktemp("local")
    src = make_source(base / "src")
    return run_build(src, base / "site", pyodide="local")


def lock():
    return json.loads((NODE_MODULES / "pyodide" / "pyodide-lock.json").read_text())


def test_pyodide_folder_holds_core_and_verified_wheel(local_site):
    pyodide = local_site / "pyodide"
    assert json.loads((NODE_MODULES / "pyodide" / "package.json").read_text())["version"] == "0.27.7"
    for name in build.PYODIDE_FILES:
        assert (pyodide / name).read_bytes() == (NODE_MODULES / "pyodide" / name).read_bytes(), name
    entry = lock()["packages"]["numpy"]
    wheel = pyodide / entry["file_name"]
    assert wheel.name == "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == entry["sha256"]
    assert page(local_site, "index.html").html_attrs()["data-pyodide"] == "./pyodide/"
    assert page(local_site, "widgets/dial.html").html_attrs()["data-pyodide"] == "./pyodide/"
    assert_links_resolve(local_site, allow_cdn=False)


def test_tampered_wheel_is_refused(local_site, tmp_path):
    entry = lock()["packages"]["numpy"]
    cache = tmp_path / "cache"
    (cache / "pyodide").mkdir(parents=True)
    good = (local_site / "pyodide" / entry["file_name"]).read_bytes()
    tampered = bytearray(good)
    tampered[len(tampered) // 2] ^= 0xFF
    (cache / "pyodide" / entry["file_name"]).write_bytes(bytes(tampered))
    with pytest.raises(build.BuildError, match="refusing to ship it") as info:
        build.verified_numpy_wheel(NODE_MODULES, cache)
    assert entry["sha256"] in str(info.value)
    # and through a whole build: refused, nothing half-written left behind
    src = make_source(tmp_path / "src")
    with pytest.raises(build.BuildError, match="does not match pyodide-lock.json"):
        run_build(src, tmp_path / "site", pyodide="local", cache=cache)
    assert not (tmp_path / "site").exists() and not list(tmp_path.glob("site.tmp-*"))


def test_lock_naming_another_wheel_is_refused(tmp_path):
    require_node_modules()
    fake = tmp_path / "node_modules" / "pyodide"
    fake.mkdir(parents=True)
    data = lock()
    data["packages"]["numpy"]["file_name"] = "numpy-9.9.9-cp312-cp312-pyodide_2024_0_wasm32.whl"
    (fake / "pyodide-lock.json").write_text(json.dumps(data))
    with pytest.raises(build.BuildError, match="does not name numpy-2.0.2"):
        build.numpy_lock_entry(tmp_path / "node_modules")


# ---------------------------------------------------------------------------------------------------------------
# The development server
# ---------------------------------------------------------------------------------------------------------------

def test_server_mime_types_and_no_store(local_site):
    import functools
    server = build.http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(build.SiteHandler, directory=str(local_site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        expected = {"/pyodide/pyodide.asm.wasm": "application/wasm", "/pyodide/pyodide.mjs": "text/javascript",
                    "/static/runtime.js": "text/javascript", "/py/gpt_mini.zip": "application/zip",
                    "/pyodide/pyodide-lock.json": "application/json",
                    f"/pyodide/{build.NUMPY_WHEEL}": "application/octet-stream"}
        for path, mime in expected.items():
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
            conn.request("HEAD", path)
            resp = conn.getresponse()
            assert resp.status == 200, path
            assert resp.getheader("Content-Type") == mime, path
            assert resp.getheader("Cache-Control") == "no-store"
            conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_watch_rebuilds_on_change(tmp_path):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "01-a.md").write_text("x")
    calls, stop = [], threading.Event()

    def rebuild():
        calls.append(1)
        stop.set()

    t = threading.Thread(target=build.watch, args=(tmp_path, rebuild, 0.05, stop), daemon=True)
    t.start()
    import time
    time.sleep(0.2)
    (tmp_path / "lessons" / "02-b.md").write_text("new file")
    t.join(timeout=5)
    assert calls == [1]


# ---------------------------------------------------------------------------------------------------------------
# The real repository
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    """The actual lessons, built once (self-hosted Pyodide, as shipped)."""
    require_node_modules()
    return build.build(REPO, tmp_path_factory.mktemp("real") / "site", pyodide="local",
                       node_modules=NODE_MODULES, cache_dir=CACHE)


def test_real_site_pages_exist_and_links_resolve(real_site):
    lessons = sorted(p.stem for p in (REPO / "lessons").glob("[0-9][0-9]-*.md"))
    assert lessons, "no lessons"
    for slug in lessons:
        assert (real_site / f"{slug}.html").is_file()
    for py in (REPO / "gpt_mini").glob("*.py"):
        assert (real_site / "code" / f"{py.name}.html").is_file()
    for js in (REPO / "static" / "widgets").glob("*.js"):
        if (REPO / "widgets" / f"{js.stem}.py").exists():
            assert (real_site / "widgets" / f"{js.stem}.html").is_file()
    assert (real_site / "pyodide" / build.NUMPY_WHEEL).is_file()
    assert_links_resolve(real_site, allow_cdn=False)


def test_real_index_pipeline_links_each_stage_to_its_lesson(real_site):
    index = page(real_site, "index.html")
    boxes = {a["aria-describedby"]: a["href"] for t, a in index.tags if t == "a" and "stage-box" in a.get("class", "")}
    for key in ("pretrain", "sft", "cot", "dpo", "rlvr"):
        lesson = next((p.stem for p in (REPO / "lessons").glob(f"[0-9][0-9]-{key}.md")), None)
        if lesson:
            assert boxes[f"why-{key}"] == f"./{lesson}.html", key


def test_real_code_listings_equal_the_source(real_site):
    seen = 0
    for path in sorted(real_site.glob("[0-9][0-9]-*.html")):
        for file, a, b, text in listings(path.read_text()):
            lines = (REPO / file).read_text().splitlines()
            assert text == "\n".join(lines[a - 1:b]) + "\n", f"{path.name}: {file} {a}-{b}"
            seen += 1
    # symbol directives in the markdown resolve to the ast span of the real file
    for md in sorted((REPO / "lessons").glob("[0-9][0-9]-*.md")):
        for file, symbol in re.findall(r"```\{code\}\nfile: (\S+)\nsymbol: (\S+)\n", md.read_text()):
            tree = ast.parse((REPO / file).read_text())
            span = build.find_symbol(tree, symbol)
            assert span is not None, f"{md.name}: {file}:{symbol}"
            html_text = (real_site / f"{md.stem}.html").read_text()
            assert f"{file}</a> · lines {span[0]}–{span[1]}" in html_text, f"{md.name}: {symbol}"
    if not seen:
        pytest.skip("no lesson has code listings yet")
