"""Tests for sitebuild/links.py: the built site's links all resolve, and a broken link or anchor fails the build at
the lesson line that wrote it, leaving the previous site as it was."""
import pytest

from fixture_sites import LESSON, assert_fails_at, assert_links_resolve, built, fixture_site  # noqa: F401
from sitebuild.links import LinkScan, link_problem
from sitebuild.vendor import PYODIDE_CDN

ERRORS = {
    # name: (file, old, new, needle locating the expected line (None: given line), expected line, message part)
    "broken_link": (LESSON, "[the next lesson](02-second.html)", "[the next lesson](03-third.html)", "03-third.html",
                    None, "broken link '03-third.html'"),
    "broken_anchor": (LESSON, "[the maths](#maths)", "[the maths](#mathz)", "#mathz", None, "no id 'mathz'"),
    "broken_code_anchor": (LESSON, "code/toy.py.html#L8", "code/toy.py.html#L800", "#L800", None, "no id 'L800'"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_reports_path_line_and_keeps_previous_site(built, name):
    assert_fails_at(built, ERRORS[name])


def test_internal_links_resolve(fixture_site):
    _, site = fixture_site
    assert_links_resolve(site, allow_cdn=True)


def test_absolute_outside_and_third_party_references_are_problems(tmp_path):
    (tmp_path / "a.html").write_text('<p id="x">a</p>')
    problem = lambda value, tag="a", attr="href", pyodide="local": link_problem(  # noqa: E731
        tmp_path, "a.html", tag, attr, value, lambda p: LinkScan.of(tmp_path / p), pyodide)
    assert problem("a.html#x") is None and problem("https://example.org/") is None  # a link a reader follows
    assert "absolute path" in problem("/a.html")
    assert "outside the site" in problem("../b.html")
    assert "third-party request" in problem("https://example.org/x.js", "script", "src")
    assert problem(PYODIDE_CDN + "pyodide.js", "script", "src", pyodide="cdn") is None
    assert "third-party request" in problem(PYODIDE_CDN + "pyodide.js", "script", "src")
