"""Tests for build.py, the entry point: the whole build of a fixture site, the packed Python, the command line,
--strict (every warning an error, the previous site kept), the atomic swap, and one build of the real repository.

The parts have their own test files (test_sitebuild_*.py); the fixture plumbing is tests/fixture_sites.py.
"""
import ast
import re
import zipfile

import pytest

import build
from fixture_sites import (CACHE, LESSON, NODE_MODULES, REPO, assert_links_resolve,  # noqa: F401 (fixtures)
                           assert_no_leftovers, built, edit, fixture_site, line_of, listings, page,
                           require_node_modules, run_build, snapshot)
from sitebuild import BuildError
from sitebuild.lessons import find_symbol
from sitebuild.vendor import NUMPY_WHEEL


def test_every_page_and_asset_exists(fixture_site):
    _, site = fixture_site
    for path in ["index.html", "01-first.html", "02-second.html", "code/toy.py.html", "code/__init__.py.html",
                 "widgets/dial.html", "widgets/index.html", "static/css/site.css", "static/css/code.css",
                 "static/site.js", "static/runtime.js", "static/widgets/dial.js",
                 "static/vendor/uplot/uPlot.iife.min.js", "static/vendor/uplot/uPlot.min.css",
                 "py/gpt_mini.zip", "results/00_toy.json", "checkpoints/toy.bin", ".nojekyll"]:
        assert (site / path).is_file(), path
    assert not list(site.parent.glob("site.tmp-*")), "temp build dir left behind"


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


def test_refuses_to_overwrite_sources_or_foreign_dirs(built, tmp_path):
    src, _, _ = built
    with pytest.raises(BuildError, match="over the sources"):
        run_build(src, src)
    with pytest.raises(BuildError, match="over the sources"):
        run_build(src, src / "lessons")
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(BuildError, match="not a site this script built"):
        run_build(src, foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"


# ---------------------------------------------------------------------------------------------------------------
# Warnings: printed, and the site built; with --strict each is an error naming file and line, the old site kept
# ---------------------------------------------------------------------------------------------------------------

WIDGET_LINE = 5  # `widgets: [dial]` in the fixture lesson's front matter

WARNINGS = {
    # name: (file to create or None, edit (file, old, new) or None, expected path, line, message part)
    "lone_python_half": ("widgets/lonely.py", None, "widgets/lonely.py", 1,
                         "widget 'lonely' has no static/widgets/lonely.js yet"),
    "lone_js_half": ("static/widgets/solo.js", None, "static/widgets/solo.js", 1,
                     "widget 'solo' has no widgets/solo.py yet"),
    "misnamed_lesson": ("lessons/3-third.md", None, "lessons/3-third.md", 1, "not a lesson name"),
    "declared_not_embedded": (None, (LESSON, "```{widget}\nname: dial", "```yaml\nname: dial"), LESSON, WIDGET_LINE,
                              "widget 'dial' is in front matter but not embedded"),
    "embedded_not_declared": (None, (LESSON, "widgets: [dial]", "widgets: []"), LESSON, WIDGET_LINE,
                              "widget 'dial' is embedded but not in front matter 'widgets'"),
}


def provoke(src, name):
    """Apply one WARNINGS case to a fixture source."""
    create, change, *_ = WARNINGS[name]
    if create:
        (src / create).write_text("---\ntitle: x\nsummary: y\n---\n" if create.endswith(".md") else "# half\n")
    if change:
        edit(src, *change)


@pytest.mark.parametrize("name", sorted(WARNINGS))
def test_warning_is_printed_and_the_site_built(built, capsys, name):
    src, site, _ = built
    provoke(src, name)
    *_, path, line, message = WARNINGS[name]
    assert build.main(["--src", str(src), "--out", str(site), "--pyodide-cdn"]) == 0
    warnings = [w for w in capsys.readouterr().err.splitlines() if w.startswith("build: warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith(f"build: warning: {path}:{line}: "), warnings
    assert message in warnings[0]
    assert (site / "01-first.html").is_file()


@pytest.mark.parametrize("name", sorted(WARNINGS))
def test_strict_makes_the_warning_an_error_and_keeps_the_site(built, capsys, name):
    src, site, before = built
    provoke(src, name)
    *_, path, line, message = WARNINGS[name]
    with pytest.raises(BuildError) as info:
        run_build(src, site, strict=True)
    assert (info.value.path, info.value.line) == (path, line) and message in info.value.message
    assert build.main(["--src", str(src), "--out", str(site), "--pyodide-cdn", "--strict"]) == 1
    err = capsys.readouterr().err
    assert f"build: error: {path}:{line}: " in err and message in err and "--strict" in err
    assert "build: warning:" not in err and "build: wrote" not in err
    assert snapshot(site) == before, "a failed strict build touched the previous site"
    assert_no_leftovers(site)


def test_helpers_and_styles_next_to_widgets_are_not_halves(built, capsys):
    """widgets/_shared.py is a helper module (packed, never a widget); static/widgets/*.css are styles."""
    src, site, _ = built
    (src / "widgets" / "_shared.py").write_text("HALF = 0.5\n")
    (src / "static" / "widgets" / "dial.css").write_text(".dial {}\n")
    (src / "static" / "widgets" / "widgets.css").write_text(".widget {}\n")
    assert build.main(["--src", str(src), "--out", str(site), "--pyodide-cdn", "--strict"]) == 0
    assert "warning" not in capsys.readouterr().err
    with zipfile.ZipFile(site / "py" / "gpt_mini.zip") as zf:
        assert "widgets/_shared.py" in zf.namelist()
    assert (site / "static" / "widgets" / "dial.css").is_file()
    assert not (site / "widgets" / "_shared.html").exists() and not (site / "widgets" / "widgets.html").exists()


# ---------------------------------------------------------------------------------------------------------------
# The real repository
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    """The actual lessons, built once (self-hosted Pyodide, strict: as CI and Pages build them)."""
    require_node_modules()
    return build.build(REPO, tmp_path_factory.mktemp("real") / "site", pyodide="local",
                       node_modules=NODE_MODULES, cache_dir=CACHE, strict=True)


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
    assert (real_site / "pyodide" / NUMPY_WHEEL).is_file()
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
            span = find_symbol(tree, symbol)
            assert span is not None, f"{md.name}: {file}:{symbol}"
            html_text = (real_site / f"{md.stem}.html").read_text()
            assert f"{file}</a> · lines {span[0]}–{span[1]}" in html_text, f"{md.name}: {symbol}"
    if not seen:
        pytest.skip("no lesson has code listings yet")
