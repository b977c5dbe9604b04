"""The GRPO widget in Chromium (Pyodide): it boots with a group of the default problem (the same rollouts as
natively), the loss-type toggle changes the weights shown without resampling, Train draws the reward, KL and
zero-spread curves (each with its text alternative), a breaking configuration (K = 1, an impossible problem set) is
explained, a bad typed problem is a readable error, and a shared link reopens the knobs on a phone-width page."""
import json

import pytest

from .conftest import booted_widget
from .widgetpage import Widget, knobs_hash, set_control, wait_booted
from widgets import grpo

pytestmark = pytest.mark.browser

ui = Widget("grpo", timeout=90_000)
NAME, ROOT, PAGE = ui.name, ui.root, ui.path
ds, wait_for, hash_of, click_train, stop = ui.ds, ui.wait_for, ui.hash_of, ui.click_train, ui.stop


def restored(page):
    """After Reset: the default problem's group is shown again, no curve."""
    wait_for(page, 'd.train === "idle" && !!d.group && JSON.parse(d.group).question === "79+19=?" '
                   '&& JSON.parse(d.group).seed === 0', 60_000)
    assert not ds(page, "losses")


booted, page = booted_widget(NAME, PAGE, restore=restored)


def test_boots_with_the_default_group_as_natively(page):
    g = ds(page, "group")
    native = grpo.group(problem=grpo.DEFAULT_KNOBS["problem"], seed=0)
    assert [r["reply"] for r in g["rows"]] == [r["reply"] for r in native["rows"]]
    assert [r["reward"] for r in g["rows"]] == [r["reward"] for r in native["rows"]]
    assert page.locator(f"{ROOT} .w-rollouts tbody tr").count() == grpo.DEFAULT_KNOBS["K"]
    assert page.locator(f"{ROOT} .w-chart").count() == 3
    assert page.locator(f"{ROOT} .w-chart .w-alt-summary").count() == 3
    assert "79+19=?" in page.locator(f"{ROOT} .w-group-head").inner_text()


def test_the_loss_type_toggle_changes_the_weights_without_resampling(page):
    calls = ds(page, "groupCalls")
    g = ds(page, "group")
    cells = lambda: page.locator(f"{ROOT} .w-rollouts tbody tr td:nth-of-type(6)").all_inner_texts()
    for lt in ("grpo", "dr_grpo", "bnpo", "dapo"):
        radio = page.locator(f'{ROOT} .w-loss-toggle input[value=\'"{lt}"\']')
        radio.focus()
        page.keyboard.press("Space")                                  # keyboard operable
        wait_for(page, f'd.lossType === "{lt}"', 5_000)
        shown = [float(x) for x in cells()]
        assert shown == pytest.approx(g["weights"][lt]["per_token"], abs=6e-5)
        assert lt in page.locator(f"{ROOT} .w-loss-note").inner_text()
    page.wait_for_timeout(300)
    assert ds(page, "groupCalls") == calls and ds(page, "group") == g         # no new group was sampled
    assert hash_of(page)["loss_type"] == "dapo"


def test_new_problem_and_a_bad_typed_problem(page):
    calls = int(ds(page, "groupCalls"))
    page.locator(f"{ROOT} .w-new").click()
    wait_for(page, f"Number(d.groupCalls) > {calls}", 30_000)
    g = ds(page, "group")
    assert not g["typed"] and len(g["summands"]) == grpo.DEFAULT_KNOBS["n"]
    page.locator(f'{ROOT} .w-field[data-knob="problem"] input').fill("12-5=?")
    page.wait_for_function(f"sel => document.querySelector(sel).dataset.status === 'error'", arg=ROOT,
                           timeout=15_000)
    assert "whole numbers joined by +" in page.locator(f"{ROOT} .w-error").inner_text()
    page.locator(f'{ROOT} .w-field[data-knob="problem"] input').fill("12+5+30=?")
    wait_for(page, 'JSON.parse(d.group).question === "12+5+30=?"', 30_000)
    assert hash_of(page)["problem"] == "12+5+30=?"


def test_train_draws_curves_and_the_reward_rises(page):
    click_train(page)
    wait_for(page, "d.losses && JSON.parse(d.losses).length >= 40")
    stop(page)
    m = ds(page, "metrics")
    assert len(m["reward"]) == len(ds(page, "losses")) >= 40
    assert sum(m["reward"][-15:]) / 15 > sum(m["reward"][:10]) / 10
    alts = page.locator(f"{ROOT} .w-chart .w-alt-summary").all_inner_texts()
    assert any("mean reward" in a and "After" in a for a in alts), alts
    assert any("zero spread" in a for a in alts), alts
    # a group sampled now comes from the trained policy
    page.locator(f"{ROOT} .w-again").click()
    wait_for(page, 'JSON.parse(d.group).from === "policy"', 30_000)


@pytest.mark.parametrize("knob, value, kind, words", [
    ("K", 1, "k1", "K = 1"),
    ("problems", "n7", "impossible", "too hard"),
])
def test_a_breaking_configuration_is_explained(page, knob, value, kind, words):
    set_control(page, ui.control(page, knob), json.dumps(value))
    set_control(page, ui.control(page, "steps"), 10)
    wait_for(page, 'd.train === "idle"', 10_000)
    click_train(page)
    wait_for(page, 'd.train === "done" && !!d.diagnosis')
    d = ds(page, "diagnosis")
    assert [s["kind"] for s in d["symptoms"]] == [kind], d
    box = page.locator(f"{ROOT} .w-diagnosis")
    assert box.is_visible()
    text = box.inner_text()
    assert words in text and "Why:" in text and "Try:" in text
    assert hash_of(page)[knob] == value


def test_a_shared_link_reopens_the_knobs_and_fits_a_phone(open_page):
    knobs = {**grpo.DEFAULT_KNOBS, "K": 4, "temperature": 0.3, "loss_type": "grpo", "problems": "easiest",
             "problem": "23+44=?"}
    w = open_page(PAGE, knobs_hash(NAME, knobs), viewport={"width": 390, "height": 844})
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, '!!d.group && JSON.parse(d.group).question === "23+44=?"', 60_000)
    g = ds(w.page, "group")
    assert g["K"] == 4 and g["temperature"] == 0.3
    assert json.loads(ui.control(w.page, "problems").input_value()) == "easiest"
    assert ds(w.page, "lossType") == "grpo"
    assert w.page.locator(f'{ROOT} .w-loss-toggle input[value=\'"grpo"\']').is_checked()
    assert w.page.evaluate("() => document.documentElement.scrollWidth") <= 390
