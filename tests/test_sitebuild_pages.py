"""Tests for sitebuild/pages.py: every page from templates/ (relative root, Pyodide URL, landmarks), the index and
its pipeline, navigation, code pages, front matter references, and template errors at their line."""
import re

import pytest

from fixture_sites import (LESSON, all_pages, assert_fails_at, built, fixture_site, listing_text,  # noqa: F401
                           make_source, page, require_node_modules, run_build)
from sitebuild import BuildError
from sitebuild.vendor import PYODIDE_CDN

ERRORS = {
    # name: (file, old, new, needle locating the expected line (None: given line), expected line, message part)
    "front_matter_widget": (LESSON, "widgets: [dial]", "widgets: [dial, knob]", None, 5, "unknown widget 'knob'"),
    "front_matter_code": (LESSON, "code: [gpt_mini/toy.py]", "code: [gpt_mini/nope.py]", None, 4, "nope.py"),
    "template_error": ("templates/lesson.html", "{{ lesson.summary }}</p>", "{{ lesson.nothing }}</p>",
                       "lesson.nothing", None, "nothing"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_reports_path_line_and_keeps_previous_site(built, name):
    assert_fails_at(built, ERRORS[name])


def test_every_page_has_root_and_pyodide_and_landmarks(fixture_site):
    _, site = fixture_site
    for path in all_pages(site):
        p = page(site, path)
        html_attrs = p.html_attrs()
        assert html_attrs["lang"] == "en"
        assert html_attrs["data-root"] == ("./" if "/" not in path else "../"), path
        assert html_attrs["data-pyodide"] == PYODIDE_CDN
        tags = [t for t, _ in p.tags]
        assert "main" in tags and "header" in tags and "footer" in tags, path
        assert any(t == "a" and a.get("href") == "#main" for t, a in p.tags), f"{path}: no skip link"


def test_code_page_has_every_line_anchored(fixture_site):
    src, site = fixture_site
    n = len((src / "gpt_mini" / "toy.py").read_text().splitlines())
    ids = page(site, "code/toy.py.html").ids
    assert {f"L{i}" for i in range(1, n + 1)} <= ids
    assert f"L{n + 1}" not in ids
    text = (site / "code/toy.py.html").read_text()
    assert listing_text(text.split('<div class="highlight">', 1)[1].split("</pre>", 1)[0]).rstrip("\n") == \
        (src / "gpt_mini" / "toy.py").read_text().rstrip("\n")


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


def test_default_build_makes_no_third_party_request(tmp_path):
    require_node_modules()
    src = make_source(tmp_path / "src")
    css = (src / "static" / "css" / "site.css").read_text()
    assert "@import" not in css and "url(http" not in css and "@font-face" not in css
    for path in ("templates/base.html",):
        assert "http" not in re.sub(r'xmlns="[^"]+"', "", (src / path).read_text())


def test_missing_runtime_is_an_error(built):
    src, site, before = built
    (src / "static" / "runtime.js").unlink()
    with pytest.raises(BuildError, match="static/runtime.js:1: missing"):
        run_build(src, site)


def test_draft_may_name_future_code_and_widgets_but_written_lesson_may_not(built):
    src, site, _ = built  # 02-second.md names a missing file and widget, yet the build passed
    path = src / "lessons" / "02-second.md"
    path.write_text(path.read_text() + "Now it has a body.\n")
    with pytest.raises(BuildError, match=r"lessons/02-second.md:4: .*missing_yet.py"):
        run_build(src, site)
