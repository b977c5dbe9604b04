"""The attention widget in Chromium, standalone and in lesson 01: it shows exactly what widgets/attention.py
computes natively from the shipped checkpoint, for the default prompt and a typed one, every layer and head."""
import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import booted_widget
from .widgetpage import set_control, wait_settled
from widgets import attention

pytestmark = pytest.mark.browser

NAME = "attention"
ROOT = '[data-widget="attention"]'
CKPT = str(Path(__file__).resolve().parents[2] / attention.CHECKPOINT)


def rendered(page):
    return json.loads(page.get_attribute(ROOT, "data-result") or "null")


def wait_prompt(page, prompt, timeout=30_000):
    page.wait_for_function(
        """([sel, want]) => {
            const e = document.querySelector(sel);
            const r = e && e.dataset.result && JSON.parse(e.dataset.result);
            return !!r && r.ok && r.tokens.slice(1).join("") === want;
        }""", arg=[ROOT, prompt.replace(" ", "␣")], timeout=timeout)
    wait_settled(page, NAME)
    return rendered(page)


def assert_native(r, prompt):
    """Same result as natively; floats to wasm's float32 rounding (BLAS sums in another order)."""
    want = attention.attend(CKPT, prompt)
    assert {k: r[k] for k in ("ok", "step", "model", "tokens", "truncated")} == \
        {k: want[k] for k in ("ok", "step", "model", "tokens", "truncated")}
    np.testing.assert_allclose(r["weights"], want["weights"], atol=2 * 10 ** -attention.DECIMALS)
    for got, exp in zip(sum(r["patterns"], []), sum(want["patterns"], [])):
        assert got == pytest.approx(exp, abs=1e-5)
    assert [n["token"] for n in r["next"][:2]] == [n["token"] for n in want["next"][:2]]
    assert [n["p"] for n in r["next"]] == pytest.approx([n["p"] for n in want["next"]], abs=1e-5)


booted, page = booted_widget(NAME, "widgets/attention.html", "01-architecture.html",
                             restore=lambda p: wait_prompt(p, attention.DEFAULT_KNOBS["prompt"]))


def test_default_prompt_matches_native_and_draws_every_head(page):
    r = wait_prompt(page, attention.DEFAULT_KNOBS["prompt"])
    assert_native(r, attention.DEFAULT_KNOBS["prompt"])
    L, H = r["model"]["n_layer"], r["model"]["n_head"]
    assert page.locator(f"{ROOT} .w-head").count() == L * H
    assert page.locator(f'{ROOT} .w-head[aria-pressed="true"]').count() == 1


def test_typed_prompt_and_head_choice(page):
    prompt = "bob has a dog. bob works as a"
    set_control(page, page.locator(f"{ROOT} input[name=prompt]"), prompt)
    r = wait_prompt(page, prompt)
    assert_native(r, prompt)
    page.locator(f'{ROOT} .w-head[data-layer="2"][data-head="1"]').click()
    page.wait_for_selector(f'{ROOT} .w-head[data-layer="2"][data-head="1"][aria-pressed="true"]')
    assert "Layer 2, head 1" in page.locator(f"{ROOT} .w-bigmap figcaption").inner_text()


def test_a_character_outside_the_alphabet_is_explained(page):
    set_control(page, page.locator(f"{ROOT} input[name=prompt]"), "Ada")
    page.wait_for_function("sel => document.querySelector(sel).dataset.status === 'error'", arg=ROOT)
    assert "lowercase" in page.locator(ROOT).inner_text()


def test_training_without_the_mask_runs_live_and_reports_both_losses(page):
    """Train with the mask off for a few chunks: the loop reports the loss as trained and the honest loss of the
    same weights (the full run, where the first falls below the floor, is checked natively)."""
    page.locator(f"{ROOT} .w-leak button.w-primary, {ROOT} .w-leak button").first.click()
    page.wait_for_function("""sel => {
        const r = document.querySelector(sel).dataset.leak;
        return r && JSON.parse(r).step >= 20;
    }""", arg=ROOT, timeout=120_000)
    r = json.loads(page.get_attribute(ROOT, "data-leak"))
    assert r["mask"] == "off" and r["steps"] == attention.leak_info()["steps"]
    assert 0 < r["as_trained_loss"] < 5 and 0 < r["honest_loss"] < 5
    page.locator(f"{ROOT} .w-leak button").first.click()          # Stop
    page.wait_for_function("sel => document.querySelector(sel).dataset.train !== 'training'", arg=ROOT)
