"""The DPO widget in Chromium (Pyodide): it boots with the SFT model's held-out replies, Train draws the margin,
rewards, accuracy and log-prob curves (each with its text alternative) on the native trajectory and changes the
held-out replies, β near zero is explained, a shared link reopens the knobs, and a phone-width page fits."""
import json
import math

import numpy as np
import pytest

from .conftest import booted_widget
from .widgetpage import Widget, knobs_hash, set_control, wait_booted
from widgets import dpo

pytestmark = pytest.mark.browser

ui = Widget("dpo", timeout=120_000)          # the longest wait: DPO training to a refusal on a busy machine
NAME, ROOT, PAGE = ui.name, ui.root, ui.path
ds, wait_for, hash_of, click_train, stop = ui.ds, ui.wait_for, ui.hash_of, ui.click_train, ui.stop


def prepared(page):
    """After Reset: a fresh session for the knobs (the pairs were built at boot), no curve."""
    wait_for(page, 'd.train === "idle" && !!d.session && !!d.before', 60_000)
    assert not ds(page, "losses")


booted, page = booted_widget(NAME, PAGE, restore=prepared)


def test_boots_with_the_sft_models_held_out_replies(page):
    before = ds(page, "before")
    assert len(before["rows"]) == dpo.HELD_UNKNOWN + dpo.HELD_OTHER
    native = dpo._base(dpo.CHECKPOINT)["before"]
    assert [r["reply"] for r in before["rows"]] == [r["reply"] for r in native["rows"]]   # greedy: same text
    assert page.locator(f"{ROOT} .w-replies tbody tr").count() == len(before["rows"])
    assert int(ds(page, "pairs")) == dpo.N_PAIRS
    assert page.locator(f"{ROOT} .w-chart").count() == 4
    assert page.locator(f"{ROOT} .w-chart .w-alt-summary").count() == 4
    assert json.loads(ui.control(page, "beta").input_value()) == dpo.DEFAULT_KNOBS["beta"]
    assert json.loads(ui.control(page, "lr").input_value()) == dpo.DEFAULT_KNOBS["lr"]


def test_train_draws_the_curves_on_the_native_trajectory_and_replies_change(page):
    train = page.locator(f"{ROOT} .w-train")
    train.focus()
    page.keyboard.press("Enter")                                     # keyboard operable
    wait_for(page, "Number(d.evalStep || 0) >= 50")
    stop(page)
    losses, m, ev = ds(page, "losses"), ds(page, "metrics"), ds(page, "eval")
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5) and m["rewards/margins"][0] == pytest.approx(0, abs=1e-5)
    assert np.mean(m["rewards/margins"][40:50]) > 0.15 > np.mean(m["rewards/margins"][:10])
    for k in dpo.METRICS:
        assert len(m[k]) == len(losses)
    # the same run natively: same seed, same maths (wasm vs native BLAS)
    s = dpo.start(steps=dpo.DEFAULT_KNOBS["steps"])["session"]
    native = dpo.step(s, 25)["losses"] + dpo.step(s, 25)["losses"]
    np.testing.assert_allclose(losses[:50], native, rtol=1e-3)
    # at least one held-out unknown person is now refused
    before = ds(page, "before")
    assert any(b["kind"] == "unknown" and not b["correct"] and r == "i do not know."
               for b, r in zip(before["rows"], ev["replies"])), ev
    assert ev["refuses_unknown"] > before["refuses_unknown"] and ev["kl"] > 0
    alts = page.locator(f"{ROOT} .w-chart .w-alt-summary").all_inner_texts()
    assert any("reward margin" in a and f"After {len(losses)} steps" in a for a in alts), alts
    assert any("likelihood displacement" in a for a in alts), alts
    assert "Step " in page.locator(f"{ROOT} .w-replies thead").inner_text()


def test_beta_near_zero_is_explained(page):
    set_control(page, ui.control(page, "beta"), json.dumps(0.001))
    set_control(page, ui.control(page, "steps"), 50)
    wait_for(page, 'd.train === "idle" && !!d.session', 30_000)
    click_train(page)
    wait_for(page, 'd.train === "done" && !!d.diagnosis')
    d = ds(page, "diagnosis")
    assert "beta" in [s["kind"] for s in d["symptoms"]], d
    box = page.locator(f"{ROOT} .w-diagnosis")
    assert box.is_visible()
    text = box.inner_text()
    assert "β is too small" in text and "Why:" in text and "Try:" in text
    assert hash_of(page)["beta"] == 0.001


def test_a_shared_link_reopens_the_knobs_and_fits_a_phone(open_page):
    knobs = {"beta": 0.3, "lr": 5e-5, "steps": 200}
    w = open_page(PAGE, knobs_hash(NAME, knobs), viewport={"width": 390, "height": 844})
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, "!!d.info && !!d.before", 60_000)
    assert json.loads(ui.control(w.page, "beta").input_value()) == 0.3
    assert json.loads(ui.control(w.page, "lr").input_value()) == 5e-5
    assert ui.control(w.page, "steps").input_value() == "200"
    assert w.page.evaluate("() => document.documentElement.scrollWidth") <= 390
