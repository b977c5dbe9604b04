"""Tests for sitebuild/sources.py: reading lessons (front matter, encodings), widgets (which files are halves) and
results; every problem at its file line, the previous site kept."""
import pytest

from fixture_sites import LESSON, assert_fails_at, built, run_build  # noqa: F401
from sitebuild import BuildError, warner
from sitebuild.sources import read_widgets, widget_halves

ERRORS = {
    # name: (file, old, new, needle locating the expected line (None: given line), expected line, message part)
    "yaml": (LESSON, 'summary: "Exercises every feature of the build."', "summary: [unclosed", None, 4, "invalid YAML"),
    "no_front_matter": (LESSON, "---\ntitle:", "title:", None, 1, "front matter"),
    "unclosed_front_matter": (LESSON, "widgets: [dial]\n---\n", "widgets: [dial]\n", None, 1, "never closed"),
    "missing_title": (LESSON, 'title: "First — the fixture lesson"\n', "", None, 2, "'title'"),
    "bad_results_json": ("results/00_toy.json", '"final": {', '"final": {,', None, 2, "invalid JSON"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_reports_path_line_and_keeps_previous_site(built, name):
    assert_fails_at(built, ERRORS[name])


def test_crlf_and_bom_lessons_build_the_same(built):
    src, site, before = built
    path = src / LESSON
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    run_build(src, site)
    assert (site / "01-first.html").read_bytes() == before["01-first.html"]


def widget_tree(root, files):
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text('"""A widget."""\n' if name.endswith(".py") else "// ui\n")
    return root


def test_widget_halves_are_named_pairs_not_helpers_or_styles(tmp_path):
    root = widget_tree(tmp_path, ["widgets/__init__.py", "widgets/_live.py", "widgets/dial.py", "widgets/lonely.py",
                                  "static/widgets/dial.js", "static/widgets/dial.css", "static/widgets/widgets.css",
                                  "static/widgets/_shared.js", "static/widgets/solo.js"])
    pys, jss = widget_halves(root)
    assert sorted(pys) == ["dial", "lonely"] and sorted(jss) == ["dial", "solo"]
    warnings = []
    widgets = read_widgets(root, warnings.append)
    assert list(widgets) == ["dial"] and widgets["dial"].title == "A widget"
    assert [(w.path, w.line) for w in warnings] == [("widgets/lonely.py", 1), ("static/widgets/solo.js", 1)]
    assert "no static/widgets/lonely.js" in warnings[0].message and "no widgets/solo.py" in warnings[1].message


def test_a_lone_half_warns_even_when_no_lesson_uses_it(tmp_path):
    root = widget_tree(tmp_path, ["widgets/unused.py"])
    with pytest.raises(BuildError, match=r"widgets/unused.py:1: widget 'unused' has no static/widgets/unused.js"):
        read_widgets(root, warner(strict=True))
