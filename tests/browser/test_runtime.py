"""The widget runtime itself, on test pages written into the built site: two widgets of one kind, a widget
whose code never loads, hash keys per instance, the chart helper later widgets build on, and a hung Python call
that restarts the worker under three widgets."""
import json

import pytest

from .widgetpage import hash_knobs, set_control
from widgets import pretrain, shapes

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


RESTART_PAGE = "restart-test.html"


def restart_page_html():
    knobs = json.dumps(pretrain.DEFAULT_KNOBS).replace("'", "&#39;")
    shape_knobs = json.dumps(shapes.DEFAULT_KNOBS).replace("'", "&#39;")
    return f"""<!doctype html>
<html lang="en" data-root="./" data-pyodide="pyodide/">
<head><meta charset="utf-8"><title>restart test</title><link rel="icon" href="data:,">
<script type="module" src="static/runtime.js"></script>
<script type="module" src="static/widgets/pretrain.js"></script>
<script type="module" src="static/widgets/shapes.js"></script></head>
<body><main><h1>Restart test</h1>
<div class="widget" id="p1" data-widget="pretrain" data-status="booting" aria-busy="true" data-knobs='{knobs}'></div>
<div class="widget" id="p2" data-widget="pretrain" data-status="booting" aria-busy="true" data-knobs='{knobs}'></div>
<div class="widget" id="s" data-widget="shapes" data-status="booting" aria-busy="true" data-knobs='{shape_knobs}'></div>
</main></body></html>
"""


def wait_ids(page, ids, statuses=("ready",), timeout=90_000):
    page.wait_for_function("""([ids, statuses]) => ids.every(id => {
        const e = document.getElementById(id);
        return statuses.includes(e.dataset.status) && e.getAttribute("aria-busy") === "false"; })""",
                           arg=[ids, list(statuses)], timeout=timeout)


def train_a_little(page, id_):
    """Train from a fresh model until a few losses are in, Stop; return the losses."""
    page.click(f"#{id_} .w-train")
    page.wait_for_function("id => JSON.parse(document.getElementById(id).dataset.losses || '[]').length >= 3",
                           arg=id_, timeout=60_000)
    page.click(f"#{id_} .w-train")
    page.wait_for_function("id => document.getElementById(id).dataset.train === 'stopped'", arg=id_, timeout=20_000)
    wait_ids(page, [id_])
    return json.loads(page.get_attribute(f"#{id_}", "data-losses"))


def test_a_hung_call_restarts_python_and_every_widget_recovers(site_dir, open_page):
    (site_dir / RESTART_PAGE).write_text(restart_page_html())
    w = open_page(RESTART_PAGE)
    p = w.page
    wait_ids(p, ["p1", "p2", "s"])
    p.wait_for_function("!!document.getElementById('p2').dataset.snapshots", timeout=30_000)
    set_control(p, p.locator('#p2 .w-field[data-knob="snapshot"] input'), 0)   # p2 loads a checkpoint file
    p.wait_for_function("!!document.getElementById('p2').dataset.snapshot", timeout=30_000)
    wait_ids(p, ["p2"])
    [old] = p.workers
    closed = []
    old.on("close", lambda _: closed.append(True))
    p.evaluate("['data-session', 'data-snapshot'].forEach(a => document.getElementById('p2').removeAttribute(a))")

    # Any Python call now runs past its budget: Train's first chunk (pretrain.step) hangs.
    p.evaluate("window.__gpt_mini_call_timeout_ms = 5")
    p.click("#p1 .w-train")
    p.wait_for_function("document.getElementById('p1').dataset.status === 'error'", timeout=20_000)
    p.evaluate("delete window.__gpt_mini_call_timeout_ms")
    message = p.locator("#p1 .w-error").inner_text()
    assert "pretrain.step" in message and "took longer than 0.005 s" in message and "Reset" in message, message
    assert p.get_attribute("#p1", "data-train") == "idle"
    assert p.locator("#p1 .w-train").inner_text() == "Train"
    for _ in range(50):                            # the close event arrives while Playwright waits
        if closed:
            break
        p.wait_for_timeout(100)
    assert closed, "the hung worker was not terminated"

    # The others boot again with a new worker and redraw: a fresh session, the snapshot's file fetched again
    # (the new worker starts with an empty filesystem).
    wait_ids(p, ["p2", "s"])
    [new] = p.workers
    assert new is not old and new.url.endswith("/static/worker.js")
    p.wait_for_function("['session', 'snapshot'].every(k => !!document.getElementById('p2').dataset[k])",
                        timeout=30_000)
    assert json.loads(p.get_attribute("#s", "data-result"))["ok"] is True
    assert p.get_attribute("#p1", "data-status") == "error"         # still saying why, until its Reset
    assert "took longer than" in p.locator("#p1 .w-error").inner_text()
    losses = train_a_little(p, "p2")
    assert losses[0] == pytest.approx(pretrain.info()["baselines"]["uniform"], abs=0.05)   # from an untrained model

    # Reset brings the widget whose call hung back: it trains again, no page reload.
    p.click("#p1 .w-reset")
    wait_ids(p, ["p1"])
    assert p.locator("#p1 .w-error").is_hidden()
    losses = train_a_little(p, "p1")
    assert losses[0] == pytest.approx(pretrain.info()["baselines"]["uniform"], abs=0.05)
    assert len(p.workers) == 1


LOOP_PAGE = "trainloop-test.html"
LOOP_HTML = """<!doctype html>
<html lang="en" data-root="./" data-pyodide="pyodide/">
<head><meta charset="utf-8"><title>trainLoop test</title><link rel="icon" href="data:,">
<script type="module" src="static/runtime.js"></script>
<script type="module">
// A training widget whose "Python" is JS: the loop's contract without a model. step(n) takes `delay` ms per call.
import {registerWidget} from "./static/runtime.js";
registerWidget("fakeloop", {title: "fake training", mount(root, api) {
  const log = window.fakeLog = {starts: 0, chunks: [], ends: [], clears: 0, delay: 20};
  let id = 0;
  window.fakeApi = api;
  window.fakeLoop = api.trainLoop({
    button: api.body, runKnobs: ["steps", "blowup"],
    start: async (k) => { log.starts++; return {session: ++id, step: 0, steps: k.steps, blowup: k.blowup}; },
    step: async (s, n) => {
      await new Promise((resolve) => setTimeout(resolve, log.delay));
      const losses = [];
      while (losses.length < n && s.step < s.steps) losses.push(1 / ++s.step);
      log.chunks.push(n);
      const status = s.step >= s.blowup ? "diverged" : s.step >= s.steps ? "done" : "training";
      return {status, losses, step: s.step, steps: s.steps, session: s.session};
    },
    onEnd: (kind) => { log.ends.push(kind); },
    onClear: () => { log.clears++; },
  });
}});
</script></head>
<body><main><h1>trainLoop test</h1>
<div class="widget" id="f" data-widget="fakeloop" data-status="booting" aria-busy="true"
     data-knobs='{"steps": 60, "blowup": 1000}'></div>
</main></body></html>
"""


def test_the_shared_training_loop(site_dir, open_page):
    (site_dir / LOOP_PAGE).write_text(LOOP_HTML)
    (site_dir / "static" / "widgets" / "fakeloop.css").write_text("/* the fake widget's own CSS */\n")
    w = open_page(LOOP_PAGE)
    p = w.page
    wait_ids(p, ["f"])
    log = lambda: p.evaluate("window.fakeLog")                          # noqa: E731
    train = lambda: p.click("#f .w-train")                              # noqa: E731
    state = lambda: p.get_attribute("#f", "data-train")                 # noqa: E731
    assert state() == "idle" and p.inner_text("#f .w-train") == "Train"

    # Train runs to the end in chunks that grow toward ~300 ms per call (capped at 20 steps), then says so.
    train()
    p.wait_for_function("document.getElementById('f').dataset.train === 'done'", timeout=20_000)
    wait_ids(p, ["f"])
    assert log()["starts"] == 1 and log()["ends"] == ["done"] and sum(log()["chunks"]) >= 60
    assert log()["chunks"][0] == 2 and max(log()["chunks"]) == 20
    assert "Training finished after 60 steps." in p.inner_text("#f [aria-live=polite]")
    assert p.inner_text("#f .w-train") == "Train"

    # Train after done starts a new run; Stop ends it after the chunk in flight; Resume carries the same run on.
    p.evaluate("window.fakeLog.delay = 150; window.fakeApi.knobs.set({steps: 600})")   # a run knob: forgets
    assert log()["clears"] >= 1 and state() == "idle"
    train()
    p.wait_for_function("window.fakeLog.chunks.length >= 3")
    train()                                                                  # Stop
    p.wait_for_function("document.getElementById('f').dataset.train === 'stopped'", timeout=5_000)
    assert p.inner_text("#f .w-train") == "Resume" and log()["starts"] == 2
    n = len(log()["chunks"])
    p.wait_for_timeout(500)
    assert len(log()["chunks"]) == n                                         # nothing runs after Stop
    train()                                                                  # Resume: the same session goes on
    p.wait_for_function(f"window.fakeLog.chunks.length > {n}")
    assert log()["starts"] == 2 and p.get_attribute("#f", "data-status") == "busy"

    # A divergence ends the run as an error with words; a run-knob change clears it.
    p.evaluate("window.fakeApi.knobs.set({blowup: 5})")                     # forgets the running run too
    assert state() == "idle"
    train()
    p.wait_for_function("document.getElementById('f').dataset.train === 'diverged'", timeout=10_000)
    wait_ids(p, ["f"], ("error",))
    assert "Training diverged at step" in p.inner_text("#f .w-error")
    p.click("#f .w-reset")
    wait_ids(p, ["f"])
    assert state() == "idle" and p.locator("#f .w-error").is_hidden()
