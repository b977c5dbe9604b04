"""Tests for sitebuild/lessons.py: a lesson body -> HTML (math, {code} and {widget} directives, fig() figures,
headings and their ids), each problem at the lesson's line, and the front matter / body widget drift warnings."""
import ast
import json
import re

import pytest

from fixture_sites import LESSON, assert_fails_at, built, fixture_site, listings, make_source, page  # noqa: F401
from sitebuild.lessons import render_lesson_body
from sitebuild.sources import gather

ERRORS = {
    # name: (file, old, new, needle locating the expected line (None: given line), expected line, message part)
    "unknown_widget": (LESSON, "name: dial", "name: dials", "name: dials", None, "unknown widget 'dials'"),
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
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_reports_path_line_and_keeps_previous_site(built, name):
    assert_fails_at(built, ERRORS[name])


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


def test_math_in_headings_and_attr_list_ids(fixture_site):
    _, site = fixture_site
    text = (site / "01-first.html").read_text()
    p = page(site, "01-first.html")
    assert {"beta", "why-ratios"} <= p.ids, "math must not leak placeholders into heading ids"
    toc = text.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="#beta">The <math' in toc and "mdxph" not in toc
    assert "Jinja comment" not in text


def test_widget_drift_between_front_matter_and_body_is_a_warning_at_the_widgets_line(tmp_path):
    src = make_source(tmp_path / "src")
    lesson_path = src / LESSON
    lesson_path.write_text(lesson_path.read_text().replace("widgets: [dial]", "widgets: []"))
    warnings = []
    sources = gather(src, warnings.append)
    lesson = sources.lessons[0]
    render_lesson_body(lesson, sources, warnings.append)
    assert lesson.used_widgets == ["dial"]
    assert [(w.path, w.line, w.message) for w in warnings] == \
        [(LESSON, 5, "widget 'dial' is embedded but not in front matter 'widgets'")]
