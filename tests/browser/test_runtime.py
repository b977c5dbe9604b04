"""The widget runtime itself, on a test page written into the built site: two widgets of one kind, a widget
whose code never loads, hash keys per instance, and the chart helper later widgets build on."""
import json

import pytest

from .widgetpage import hash_knobs, set_control

pytestmark = pytest.mark.browser

PAGE = "runtime-test.html"
HTML = """<!doctype html>
<html lang="en" data-root="./" data-pyodide="pyodide/">
<head><meta charset="utf-8"><title>runtime test</title>
<script type="module" src="static/runtime.js"></script>
<script type="module" src="static/widgets/shapes.js"></script></head>
<body><main><h1>Runtime test</h1>
<div class="widget" id="a" data-widget="shapes" data-status="booting" aria-busy="true"
     data-knobs='{"B":1,"T":8,"block_size":8,"n_embd":8,"n_head":2,"n_layer":1,"vocab_size":5}'></div>
<div class="widget" id="b" data-widget="shapes" data-status="booting" aria-busy="true"
     data-knobs='{"B":2,"T":4,"block_size":16,"n_embd":12,"n_head":3,"n_layer":2,"vocab_size":7}'></div>
<div class="widget" id="c" data-widget="nosuch" data-status="booting" aria-busy="true" data-knobs='{}'></div>
<div id="chart" class="widget"></div>
</main></body></html>
"""


@pytest.fixture
def test_page(site_dir, open_page):
    (site_dir / PAGE).write_text(HTML)
    w = open_page(PAGE, clean=False)
    w.page.wait_for_function("['a','b','c'].every(id => ['ready', 'error'].includes(document.getElementById(id).dataset.status))",
                             timeout=90_000)
    return w


def result(page, id_):
    return json.loads(page.get_attribute(f"#{id_}", "data-result"))


def test_two_instances_keep_their_own_knobs_and_hash_keys(test_page):
    p = test_page.page
    assert p.get_attribute("#a", "data-status") == "ready" and p.get_attribute("#b", "data-status") == "ready"
    assert result(p, "a")["knobs"]["n_embd"] == 8 and result(p, "b")["knobs"]["n_embd"] == 12
    set_control(p, p.locator('#b .w-field[data-knob="n_layer"] input'), 4)
    p.wait_for_function("JSON.parse(document.getElementById('b').dataset.result).knobs.n_layer === 4")
    p.wait_for_function("location.hash.includes('w-shapes-2=')")
    p.wait_for_timeout(300)
    assert hash_knobs(p.url, "shapes-2")["n_layer"] == 4
    assert hash_knobs(p.url, "shapes") is None          # the first instance was not touched
    assert result(p, "a")["knobs"]["n_layer"] == 1
    assert not test_page.errors and not test_page.external


def test_a_widget_without_code_says_so_instead_of_spinning(test_page):
    p = test_page.page
    assert p.get_attribute("#c", "data-status") == "error"
    assert p.get_attribute("#c", "aria-busy") == "false"
    assert "static/widgets/nosuch.js" in p.locator("#c .w-error").inner_text()


def test_line_chart_helper_draws_and_describes(test_page):
    p = test_page.page
    info = p.evaluate("""async () => {
        const m = await import(new URL("static/runtime.js", location.href).href);
        const box = document.getElementById("chart");
        const c = await m.lineChart(box, {title: "Loss", xLabel: "step", series: [{label: "train"}, {label: "val"}],
            summary: (d) => `Loss after ${d[0].length} steps: ${d[1].at(-1)}.`});
        const xs = [...Array(200).keys()];
        c.update([xs, xs.map(x => 4 / (1 + x)), xs.map(x => NaN)]);
        return {canvas: !!box.querySelector("canvas"), rows: box.querySelectorAll("tbody tr").length,
                summary: box.querySelector(".w-alt-summary").textContent,
                head: [...box.querySelectorAll("thead th")].map(t => t.textContent),
                hidden: box.querySelector(".w-chart-plot").getAttribute("aria-hidden")};
    }""")
    assert info["canvas"] and info["hidden"] == "true"
    assert info["summary"] == "Loss after 200 steps: 0.02."
    assert info["head"] == ["step", "train", "val"]
    assert 50 <= info["rows"] <= 62          # sampled, last point included
    assert not test_page.errors and not test_page.external
