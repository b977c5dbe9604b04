"""The CoT widget in Chromium (Pyodide): the standalone page boots with 02_cot's ranges, the slider changes n and an n
beyond the trained range is explained, Answer has both shipped models answer and fills the accuracy chart, a trace
shows its first wrong partial sum, a too-hot temperature is explained, a shared link reopens the widget with its
knobs, the sliders work from the keyboard, and nothing overflows a phone's width."""
import pytest

from .conftest import booted_widget
from .widgetpage import Widget, knobs_hash, set_control, wait_booted
from widgets import cot

pytestmark = pytest.mark.browser

ui = Widget("cot", timeout=120_000)          # the longest wait: both models answering every n on a busy machine
NAME, ROOT, PAGE = ui.name, ui.root, ui.path
ds, wait_for, hash_of, click_train, stop, control = ui.ds, ui.wait_for, ui.hash_of, ui.click_train, ui.stop, ui.control
N0 = cot.DEFAULT_KNOBS["n"]


def restored(page):
    """After Reset: no experiment, the default n's (empty) view drawn."""
    wait_for(page, f'd.train === "idle" && !!d.info && d.viewN === "{N0}" && d.tallies === "null"', 20_000)


booted, page = booted_widget(NAME, PAGE, restore=restored)


def answer_until(page, js, timeout=None):
    """Press Answer, wait until `js` (over the root's dataset `d`), then Stop (unless the experiment is done)."""
    click_train(page)
    wait_for(page, js, timeout)
    if page.locator(f"{ROOT} .w-train").inner_text() == "Stop":
        stop(page)


def test_boots_with_the_stages_ranges_and_the_slider_changes_n(page):
    info = ds(page, "info")
    assert info["trained"] == list(cot.CFG.trained) and info["evaluated"] == list(cot.CFG.evaluated)
    n = control(page, "n")
    assert n.get_attribute("min") == "2" and n.get_attribute("max") == "7" and n.is_enabled()
    assert "beyond the trained range" in page.locator(f'{ROOT} .w-field[data-knob="n"] .w-help').inner_text()
    assert page.locator(f"{ROOT} .w-nscale .w-beyond").all_inner_texts() == ["6", "7"]
    assert not page.locator(f"{ROOT} .w-beyond-box").is_visible()
    set_control(page, n, 3)
    wait_for(page, 'd.viewN === "3"', 15_000)
    assert hash_of(page)["n"] == 3


def test_a_beyond_range_n_shows_its_explanation(page):
    control(page, "n").focus()
    page.keyboard.press("End")                       # keyboard operable: End is the slider's maximum
    wait_for(page, 'd.viewN === "7"', 15_000)
    box = page.locator(f"{ROOT} .w-beyond-box")
    assert box.is_visible()
    text = box.inner_text()
    assert "Beyond the trained range" in text and "length generalisation" in text and "Try:" in text
    assert "beyond training" in control(page, "n").get_attribute("aria-valuetext")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_for(page, 'd.viewN === "5"', 15_000)
    assert not box.is_visible()


def test_answering_fills_the_chart_and_a_trace_shows_its_first_error(page):
    set_control(page, control(page, "n"), 7)
    wait_for(page, 'd.viewN === "7"', 15_000)
    answer_until(page, 'JSON.parse(d.tallies || "null")?.["7"]?.cot.answered >= 6 && '
                       'JSON.parse(d.trace || "null")?.first_error != null')
    t = ds(page, "tallies")["7"]
    assert t["direct"]["answered"] == t["cot"]["answered"] >= 6
    assert t["cot"]["tokens"] > t["direct"]["tokens"]
    # the chart's text alternative carries the numbers
    summary = page.locator(f"{ROOT} .w-panel .w-alt-summary").first.inner_text()
    assert "n = 7 (beyond training)" in summary and "CoT" in summary
    # the trace: its first wrong partial sum marked with what it should have been
    tr = ds(page, "trace")
    marked = page.locator(f"{ROOT} .w-trace-panel .w-first-error")
    assert marked.count() == 1 and marked.is_visible()
    if tr["missing"]:
        assert f"should be {tr['missing']['expected']}" in marked.inner_text()
    else:
        assert marked.inner_text() == [p for p in tr["parts"] if p.get("first_error")][0]["text"]
        assert f"should be {tr['expected'][tr['first_error']]}" in page.locator(
            f"{ROOT} .w-trace-panel .w-should").inner_text()
    assert tr["expected_text"] in page.locator(f"{ROOT} .w-trace-panel .w-expected").inner_text()
    # the beyond-range box now cites what was measured
    assert "Here the direct model got" in page.locator(f"{ROOT} .w-beyond-box").inner_text()


def test_a_hot_temperature_is_explained(page):
    set_control(page, control(page, "temperature"), cot.TEMPERATURES.index(1.5))
    set_control(page, control(page, "n"), 3)
    wait_for(page, 'd.viewN === "3"', 15_000)
    answer_until(page, 'JSON.parse(d.hot || "null") !== null')
    box = page.locator(f"{ROOT} .w-hot-box")
    assert box.is_visible()
    assert "Too hot" in box.inner_text() and "wrong digit" in box.inner_text()
    assert hash_of(page)["temperature"] == 1.5


def test_a_shared_link_reopens_the_widget_as_it_was(open_page):
    knobs = {"n": 6, "temperature": 1.5, "seed": 2}
    w = open_page(PAGE, knobs_hash(NAME, knobs))
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, 'd.viewN === "6" && !!d.info', 30_000)
    assert control(w.page, "n").input_value() == "6" and control(w.page, "seed").input_value() == "2"
    assert w.page.locator(f'{ROOT} .w-field[data-knob="temperature"] output').inner_text() == "1.5"
    assert w.page.locator(f"{ROOT} .w-beyond-box").is_visible()


def test_a_phone_sized_page_does_not_overflow(open_page):
    w = open_page(PAGE, viewport={"width": 390, "height": 844})
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, "!!d.info", 30_000)
    assert w.page.evaluate("document.documentElement.scrollWidth") <= 390
