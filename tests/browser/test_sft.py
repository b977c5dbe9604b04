"""The SFT widget in Chromium (Pyodide): the standalone page boots, the token view is 01_sft's mask and follows the
boundary control, Train fine-tunes the shipped small base and shows held-out scores, a broken mask is explained,
a shared link reopens the widget with its knobs, and nothing overflows a phone's width."""
import json
import time

import pytest

from .harness import Watched, page_exists
from .widgetpage import hash_knobs, knobs_hash, set_control, wait_booted, wait_settled
from widgets import sft

pytestmark = pytest.mark.browser

NAME = "sft"
ROOT = '[data-widget="sft"]'
PAGE = "widgets/sft.html"
TRAIN_TIMEOUT_MS = 90_000


def ds(page, key):
    raw = page.evaluate("([sel, k]) => document.querySelector(sel).dataset[k] ?? null", [ROOT, key])
    return None if raw is None else json.loads(raw) if raw[:1] in "[{" else raw


def wait_for(page, js, timeout=TRAIN_TIMEOUT_MS):
    page.wait_for_function(f"sel => {{ const d = document.querySelector(sel).dataset; return {js}; }}", arg=ROOT,
                           timeout=timeout)


def control(page, knob):
    return page.locator(f'{ROOT} .w-field[data-knob="{knob}"] input, {ROOT} .w-field select[name="{knob}"]').first


@pytest.fixture(scope="module")
def booted(browser, site_url, site_dir):
    if not page_exists(site_dir, PAGE):
        pytest.fail(f"{PAGE} is not in the built site")
    w = Watched(browser)
    w.page.goto(site_url + PAGE)
    assert wait_booted(w.page, NAME) == "ready", w.page.inner_text(ROOT)
    yield w
    w.close()


@pytest.fixture
def page(booted):
    p = booted.page
    p.locator(f"{ROOT} .w-reset").click()
    wait_for(p, 'd.train === "idle" && !!d.tokens && JSON.parse(d.tokens).shift === 0 && '
                'JSON.parse(d.tokens).mask === "assistant"', 20_000)
    wait_settled(p, NAME)
    yield p
    booted.assert_clean()


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
    page.wait_for_function("name => location.hash.includes('w-' + name + '=')", arg=NAME, timeout=5_000)
    page.wait_for_timeout(300)
    assert hash_knobs(page.url, NAME)["mask"] == "all" and hash_knobs(page.url, NAME)["shift"] == 2


def test_train_fine_tunes_and_shows_held_out_scores_within_30_s(page, site_dir):
    t0 = time.perf_counter()
    page.locator(f"{ROOT} .w-train").click()
    wait_for(page, "!!d.metrics && JSON.parse(d.metrics).ends_turn > 0.5")
    first_eval = time.perf_counter() - t0
    m = ds(page, "metrics")
    assert m["p_user_after_end"] < 0.05 and first_eval < 30, (first_eval, m)
    rows = page.locator(f"{ROOT} .w-scores tbody tr")
    assert rows.count() >= 4 and "%" in rows.first.inner_text()
    assert page.locator(f"{ROOT} .w-samples li").count() == len(sft.EVAL_PER_SET)
    assert len(ds(page, "losses")) >= sft.EVAL_EVERY
    page.locator(f"{ROOT} .w-train").click()                        # Stop
    wait_for(page, 'd.train === "stopped"', 15_000)
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
    page.locator(f"{ROOT} .w-train").click()
    wait_for(page, '!!d.diagnosis && JSON.parse(d.diagnosis).status === "broken"')
    box = page.locator(f"{ROOT} .w-diagnosis")
    assert box.is_visible()
    text = box.inner_text()
    assert "does not end its turn" in text and "Try:" in text
    assert "never ended" in page.locator(f"{ROOT} .w-samples").inner_text()
    page.locator(f"{ROOT} .w-train").click()
    wait_for(page, 'd.train === "stopped"', 15_000)


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
