"""The shapes widget in Chromium, on its standalone page and in lesson 01: what it renders is exactly what
widgets/shapes.py computes natively, its breaking configurations are explained, its knobs survive a shared link."""
import json
import statistics

import pytest

from .conftest import booted_widget
from .harness import page_exists
from .widgetpage import hash_knobs, knobs_hash, set_control, wait_booted, wait_settled, wait_status
from widgets import shapes

pytestmark = pytest.mark.browser

NAME = "shapes"
ROOT = '[data-widget="shapes"]'
PAGES = ["widgets/shapes.html", "01-architecture.html"]
BIGGEST = dict(B=512, T=2048, block_size=2048, n_embd=2048, n_head=32, n_layer=48, vocab_size=65536)


def native(knobs):
    return without_timing(shapes.compute(**knobs))


def without_timing(r):
    return {k: v for k, v in r.items() if k != "ms"}


def rendered(page):
    return json.loads(page.get_attribute(ROOT, "data-result") or "null")


def defaults(page):
    return json.loads(page.get_attribute(ROOT, "data-knobs"))


def range_input(page, knob):
    return page.locator(f'{ROOT} .w-field[data-knob="{knob}"] input[type=range]')


def output_text(page, knob):
    return page.locator(f'{ROOT} .w-field[data-knob="{knob}"] output').inner_text()


def wait_result(page, knobs, timeout=15_000):
    """Wait until the widget shows the result for exactly these knobs, and has settled."""
    page.wait_for_function(
        """([sel, want]) => {
            const e = document.querySelector(sel);
            const r = e && e.dataset.result && JSON.parse(e.dataset.result);
            return !!r && !!r.knobs && JSON.stringify(Object.keys(want).sort().map(k => r.knobs[k]))
                === JSON.stringify(Object.keys(want).sort().map(k => want[k]));
        }""", arg=[ROOT, knobs], timeout=timeout)
    wait_settled(page, NAME)
    return rendered(page)


booted, page = booted_widget(NAME, *PAGES, restore=lambda p: wait_result(p, defaults(p)))


def test_boots_with_progress_then_shows_the_native_result(open_page):
    w = open_page("widgets/shapes.html")
    p = w.page
    # While Python boots the widget says which step it is on, with a real <progress>.
    steps = set()
    for _ in range(400):
        state = p.evaluate("""sel => { const e = document.querySelector(sel);
            return [e.dataset.status, e.querySelector('.w-state-text').textContent,
                    e.querySelector('progress').hidden, e.querySelector('progress').value]; }""", ROOT)
        if state[0] != "booting":
            break
        steps.add(state[1].split(" (")[0])
        assert state[2] is False and "of 3" in state[1]
        p.wait_for_timeout(50)
    assert "Loading Python runtime" in steps
    assert wait_booted(p, NAME) == "ready"
    assert p.get_attribute(ROOT, "aria-busy") == "false"
    assert p.locator(f"{ROOT} progress").is_hidden()
    assert "ready" in p.locator(f"{ROOT} [aria-live=polite]").inner_text()
    assert without_timing(rendered(p)) == native(defaults(p))
    # the lesson text never waited for Python: it is there before and after
    assert p.locator("h1").count() == 1


def test_initial_result_matches_native(page):
    r = rendered(page)
    assert without_timing(r) == native(defaults(page))
    total = page.locator(f"{ROOT} .w-total strong").first.inner_text()
    assert total == f"{r['params']['total']:,}"


@pytest.mark.parametrize("knob, value", [("B", 7), ("T", 17), ("block_size", 100), ("n_embd", 128), ("n_head", 8),
                                         ("n_layer", 5), ("vocab_size", 257)])
def test_each_knob_changes_the_output_to_the_native_result(page, knob, value):
    knobs = {**defaults(page), knob: value}
    before = rendered(page)
    set_control(page, range_input(page, knob), value)
    r = wait_result(page, knobs)
    assert r != before
    assert without_timing(r) == native(knobs)
    assert output_text(page, knob) == f"{value:,}"
    # the visible table says the same as the data: the logits row and the total
    logits = page.locator(f'{ROOT} tr[data-name="logits"] .w-shape').inner_text()
    assert logits == "(" + ", ".join(map(str, native(knobs)["groups"][2]["rows"][-1]["shape"])) + ")"
    assert page.locator(f"{ROOT} .w-total strong").first.inner_text() == f"{r['params']['total']:,}"
    assert hash_knobs(wait_hash(page), NAME) == knobs


def wait_hash(page):
    page.wait_for_function("() => location.hash.includes('w-shapes=')", timeout=5_000)
    page.wait_for_timeout(300)   # the hash write is debounced; let the last one land
    return page.url


@pytest.mark.parametrize("change, words", [
    (dict(n_head=5), "must be divisible by n_head"),
    (dict(T=100), "exceeds block_size"),
    (dict(n_layer=0), "must be a positive integer"),
])
def test_breaking_configuration_is_explained_and_recoverable(page, change, words):
    knobs = {**defaults(page), **change}
    for knob, value in change.items():
        set_control(page, range_input(page, knob), value)
    r = wait_result(page, knobs)
    assert r == native(knobs) and r["ok"] is False
    assert page.get_attribute(ROOT, "data-status") == "error"
    message = page.locator(f"{ROOT} .w-error").inner_text()
    assert words in message and r["problem"]["hint"] in message
    for knob in r["problem"]["knobs"]:
        assert "w-bad" in page.locator(f'{ROOT} .w-field[data-knob="{knob}"]').get_attribute("class")
    assert words in page.locator(f"{ROOT} [aria-live=polite]").inner_text()
    # still usable: undo the change with the keyboard-free path and the error goes away
    for knob in change:
        set_control(page, range_input(page, knob), defaults(page)[knob])
    wait_result(page, defaults(page))
    assert page.get_attribute(ROOT, "data-status") == "ready"
    assert page.locator(f"{ROOT} .w-error").is_hidden()


def test_preset_sets_every_knob(page):
    select = page.locator(f"{ROOT} select")
    labels = select.locator("option").all_inner_texts()
    assert any("GPT-2 small" in t for t in labels)
    preset = next(p for p in shapes.PRESETS if p["name"].startswith("GPT-2 small"))
    select.select_option(label=preset["name"])
    r = wait_result(page, preset["knobs"])
    assert without_timing(r) == native(preset["knobs"])
    assert r["params"]["total"] == 124_439_808
    assert output_text(page, "vocab_size") == "50,257"


def test_keyboard_arrow_moves_a_knob_and_updates(page):
    slider = range_input(page, "n_layer")
    slider.focus()
    page.keyboard.press("ArrowRight")
    knobs = {**defaults(page), "n_layer": defaults(page)["n_layer"] + 1}
    r = wait_result(page, knobs)
    assert without_timing(r) == native(knobs)
    assert output_text(page, "n_layer") == str(knobs["n_layer"])
    page.keyboard.press("Tab")            # focus moves on to the next control, nothing traps it
    assert page.evaluate("document.activeElement.type") == "range"


def test_reset_restores_the_directive_knobs_and_clears_the_hash(page):
    set_control(page, range_input(page, "n_head"), 5)
    set_control(page, range_input(page, "B"), 9)
    wait_result(page, {**defaults(page), "n_head": 5, "B": 9})
    assert hash_knobs(wait_hash(page), NAME)["B"] == 9
    page.locator(f"{ROOT} .w-reset").click()
    r = wait_result(page, defaults(page))
    assert without_timing(r) == native(defaults(page))
    assert page.get_attribute(ROOT, "data-status") == "ready"
    assert hash_knobs(page.url, NAME) is None
    assert range_input(page, "B").input_value() == str(defaults(page)["B"])


def test_update_at_the_largest_settings_is_under_200ms(page):
    for knob, value in BIGGEST.items():
        set_control(page, range_input(page, knob), value)
    r = wait_result(page, BIGGEST)
    assert r["ok"], r
    times = []
    for i in range(6):
        value = 47 if i % 2 == 0 else 48   # ends on 48
        ms = page.evaluate("""([sel, value]) => new Promise((resolve) => {
            const root = document.querySelector(sel);
            const input = root.querySelector('.w-field[data-knob="n_layer"] input');
            const t0 = performance.now();
            const obs = new MutationObserver(() => {
                const r = JSON.parse(root.dataset.result);
                if (r.knobs.n_layer === value && root.dataset.status === "ready") {
                    obs.disconnect(); resolve(performance.now() - t0);
                }
            });
            obs.observe(root, {attributes: true, attributeFilter: ["data-result", "data-status"]});
            input.value = String(value);
            input.dispatchEvent(new Event("input", {bubbles: true}));
        })""", [ROOT, value])
        times.append(ms)
    assert without_timing(rendered(page)) == native({**BIGGEST, "n_layer": 48})
    print(f"largest-setting update: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
    assert statistics.median(times) < 200, times
    assert max(times) < 400, times


def test_python_exception_is_shown_readably_and_reset_recovers(open_page):
    # A link with a knob the Python function does not take: the TypeError is shown, the page lives on.
    w = open_page("widgets/shapes.html", knobs_hash(NAME, {**shapes.DEFAULT_KNOBS, "bogus": 1}))
    p = w.page
    assert wait_booted(p, NAME) == "error"
    message = p.locator(f"{ROOT} .w-error").inner_text()
    assert "TypeError" in message and "bogus" in message
    p.locator(f"{ROOT} .w-reset").click()
    wait_status(p, NAME, ("ready",))
    assert without_timing(rendered(p)) == native(shapes.DEFAULT_KNOBS)


@pytest.mark.parametrize("path", PAGES)
def test_a_shared_link_reopens_the_widget_as_set(open_page, site_dir, path):
    if not page_exists(site_dir, path):
        pytest.skip(f"{path} is not in the built site")
    broken = {"B": 3, "T": 40, "block_size": 48, "n_embd": 60, "n_head": 7, "n_layer": 3, "vocab_size": 99}
    w = open_page(path, knobs_hash(NAME, broken))
    p = w.page
    assert wait_booted(p, NAME) == "error"        # exactly as shared, even though it cannot run
    assert rendered(p) == native(broken)
    for knob, value in broken.items():
        assert range_input(p, knob).input_value() == str(value)
        assert output_text(p, knob) == f"{value:,}"
    assert "divisible" in p.locator(f"{ROOT} .w-error").inner_text()
    # change one knob: the URL now carries the new state, and opening it reproduces it
    history_length = p.evaluate("history.length")
    set_control(p, range_input(p, "n_head"), 6)
    fixed = {**broken, "n_head": 6}
    wait_result(p, fixed)
    url = wait_hash(p)
    assert hash_knobs(url, NAME) == fixed
    assert p.evaluate("history.length") == history_length   # replaceState: no history entry per knob move
    w2 = open_page(path, "#" + url.split("#", 1)[1])
    assert wait_booted(w2.page, NAME) == "ready"
    assert without_timing(rendered(w2.page)) == native(fixed)


def test_boot_failure_is_an_error_with_the_reason(open_page):
    missing_zip = lambda ctx: ctx.route("**/py/gpt_mini.zip", lambda route: route.fulfill(status=404, body="no"))
    w = open_page("widgets/shapes.html", clean=False, before=missing_zip)   # the 404 is logged: that's the point
    assert wait_booted(w.page, NAME) == "error"
    text = w.page.locator(f"{ROOT} .w-error").inner_text()
    assert "Python could not start" in text and "gpt_mini.zip" in text and "404" in text
    assert w.page.get_attribute(ROOT, "aria-busy") == "false"
    assert not w.external and not [e for e in w.errors if "pageerror" in e]


def test_phone_width_has_no_horizontal_overflow(page):
    page.set_viewport_size({"width": 375, "height": 740})
    try:
        page.wait_for_timeout(100)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        preset = next(p for p in shapes.PRESETS if p["name"].startswith("GPT-2 XL"))
        page.locator(f"{ROOT} select").select_option(label=preset["name"])
        wait_result(page, preset["knobs"])
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        page.set_viewport_size({"width": 1100, "height": 900})
