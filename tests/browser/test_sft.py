"""The SFT widget in Chromium (Pyodide): the standalone page boots, the token view is 01_sft's mask and follows the
boundary control, Train fine-tunes the shipped small base and shows held-out scores, a broken mask is explained,
a shared link reopens the widget with its knobs, and nothing overflows a phone's width."""
import json
import time

import pytest

from .conftest import booted_widget
from .widgetpage import Widget, knobs_hash, set_control, wait_booted
from widgets import sft

pytestmark = pytest.mark.browser

ui = Widget("sft", timeout=90_000)           # the longest wait: training to a held-out score on a busy machine
NAME, ROOT, PAGE = ui.name, ui.root, ui.path
ds, wait_for, hash_of, click_train, stop, control = ui.ds, ui.wait_for, ui.hash_of, ui.click_train, ui.stop, ui.control


def restored(page):
    """After Reset: no run, and the token view back at the default mask and boundary."""
    wait_for(page, 'd.train === "idle" && !!d.tokens && JSON.parse(d.tokens).shift === 0 && '
                   'JSON.parse(d.tokens).mask === "assistant"', 20_000)


booted, page = booted_widget(NAME, PAGE, restore=restored)


def test_the_token_view_is_the_stages_mask_and_follows_the_boundary(page):
    view = ds(page, "tokens")
    assert view == json.loads(json.dumps(sft.tokens(0, "assistant", 0)))
    chips = page.locator(f"{ROOT} .w-tokens .w-tok")
    assert chips.count() == view["total"]
    assert page.locator(f"{ROOT} .w-tokens .w-counted").count() == view["counted"]
    assert "user" in page.locator(f"{ROOT} .w-tokens .w-special").first.inner_text()
    assert "count in the loss" in page.locator(f"{ROOT} .w-tokens-panel .w-alt-summary").inner_text()
    set_control(page, control(page, "shift"), -3)
    wait_for(page, "JSON.parse(d.tokens).shift === -3", 15_000)
    assert page.locator(f"{ROOT} .w-tokens .w-leaked").count() == 3 == ds(page, "tokens")["leaked"]
    assert "leaks 3 prompt tokens" in page.locator(f"{ROOT} .w-effect").inner_text()
    set_control(page, control(page, "shift"), 2)
    wait_for(page, "JSON.parse(d.tokens).shift === 2", 15_000)
    assert page.locator(f"{ROOT} .w-tokens .w-cut").count() == 2
    page.locator(f'{ROOT} select[name="mask"]').select_option(json.dumps("all"))
    wait_for(page, 'JSON.parse(d.tokens).mask === "all"', 15_000)
    assert ds(page, "tokens") == json.loads(json.dumps(sft.tokens(0, "all", 2)))
    knobs = hash_of(page)
    assert knobs["mask"] == "all" and knobs["shift"] == 2


def test_train_fine_tunes_and_shows_held_out_scores_within_30_s(page, site_dir):
    t0 = time.perf_counter()
    click_train(page)
    wait_for(page, "!!d.metrics && JSON.parse(d.metrics).ends_turn > 0.5")
    first_eval = time.perf_counter() - t0
    m = ds(page, "metrics")
    assert m["p_user_after_end"] < 0.05 and first_eval < 30, (first_eval, m)
    assert int(ds(page, "evalStep")) % sft.EVAL_EVERY == 0           # scored exactly where the thresholds were measured
    rows = page.locator(f"{ROOT} .w-scores tbody tr")
    assert rows.count() >= 4 and "%" in rows.first.inner_text()
    assert page.locator(f"{ROOT} .w-samples li").count() == len(sft.EVAL_PER_SET)
    assert len(ds(page, "losses")) >= sft.EVAL_EVERY
    stop(page)
    n = len(ds(page, "losses"))
    time.sleep(1.5)
    assert len(ds(page, "losses")) == n, "training went on after Stop"
    if (site_dir / "results" / "01_sft.json").exists():
        wait_for(page, "!!d.reference", 10_000)
        if ds(page, "reference") != "missing":
            assert "%" in rows.nth(1).locator("td").nth(1).inner_text()


def test_a_mask_without_end_is_explained(page):
    page.locator(f'{ROOT} select[name="mask"]').select_option(json.dumps("no_end"))
    wait_for(page, 'JSON.parse(d.tokens).mask === "no_end"', 15_000)
    click_train(page)
    wait_for(page, '!!d.diagnosis && JSON.parse(d.diagnosis).status === "broken"')
    box = page.locator(f"{ROOT} .w-diagnosis")
    assert box.is_visible()
    text = box.inner_text()
    assert "does not end its turn" in text and "Try:" in text
    assert "never ended" in page.locator(f"{ROOT} .w-samples").inner_text()
    stop(page)


def test_a_shared_link_reopens_the_widget_as_it_was(open_page):
    knobs = {"conversation": 2, "mask": "no_end", "shift": -2, "lr": 0.001, "steps": 200, "seed": 0}
    w = open_page(PAGE, knobs_hash(NAME, knobs))
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, "!!d.tokens && JSON.parse(d.tokens).shift === -2", 30_000)
    assert ds(w.page, "tokens") == json.loads(json.dumps(sft.tokens(2, "no_end", -2)))
    assert json.loads(w.page.locator(f'{ROOT} select[name="mask"]').input_value()) == "no_end"
    assert json.loads(w.page.locator(f'{ROOT} select[name="lr"]').input_value()) == 0.001


def test_a_phone_sized_page_does_not_overflow(open_page):
    w = open_page(PAGE, viewport={"width": 390, "height": 844})
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, "!!d.tokens", 30_000)
    assert w.page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_too_large_learning_rate_is_explained_and_a_knob_change_clears_it(page):
    set_control(page, control(page, "lr"), "1")                      # the ladder's top, lr = 1 (its JSON)
    click_train(page)
    wait_for(page, 'd.train === "diverged"', 60_000)
    box = page.locator(f"{ROOT} .w-diverged")
    assert box.is_visible()
    text = box.inner_text()
    assert "Training diverged" in text and "Why:" in text and "Lower the learning rate" in text
    assert "diverged at step" in page.locator(f"{ROOT} .w-error").inner_text()
    assert page.locator(f"{ROOT} .w-train").inner_text() == "Train"
    set_control(page, control(page, "lr"), json.dumps(sft.DEFAULT_KNOBS["lr"]))
    wait_for(page, 'd.train === "idle" && d.losses === "[]"', 10_000)
    assert not box.is_visible() and page.locator(f"{ROOT} .w-error").is_hidden()


def test_a_run_knob_changed_while_training_forgets_the_run(page):
    click_train(page)
    wait_for(page, "JSON.parse(d.losses || '[]').length > 0", 30_000)
    set_control(page, control(page, "shift"), 1)
    wait_for(page, 'd.train === "idle" && d.losses === "[]" && !d.metrics', 15_000)
    time.sleep(1.0)
    assert ds(page, "losses") == [] and ds(page, "train") == "idle", "training went on after the run was forgotten"
    assert page.locator(f"{ROOT} .w-train").inner_text() == "Train"
