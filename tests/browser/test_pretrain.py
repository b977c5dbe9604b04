"""The pretrain widget in Chromium (Pyodide): it trains the real WIDGET model live, its loss trajectory is the
native one, Stop stops, prompts and snapshots redraw the distribution, a divergent learning rate is explained."""
import json
import math
import time

import numpy as np
import pytest

from .conftest import booted_widget
from .widgetpage import Widget, knobs_hash, set_control, wait_booted, wait_settled
from widgets import pretrain

pytestmark = pytest.mark.browser

ui = Widget("pretrain", timeout=60_000)      # the longest wait: a few chunks of training on a busy machine
NAME, ROOT, PAGE = ui.name, ui.root, ui.path
ds, wait_for, hash_of, click_train, stop = ui.ds, ui.wait_for, ui.hash_of, ui.click_train, ui.stop


def n_losses(page):
    return len(ds(page, "losses") or [])


def native_run(n, prompt, **knobs):
    """The same run natively: start + n steps, and the distribution for `prompt` afterwards."""
    knobs = {**{k: v for k, v in pretrain.DEFAULT_KNOBS.items() if k in ("lr", "steps", "seed")}, **knobs}
    s = pretrain.start(prompt=prompt, **knobs)
    losses = []
    while len(losses) < n:
        r = pretrain.step(s["session"], min(50, n - len(losses)), prompt)
        losses += r["losses"]
    return losses, pretrain.probs(s["session"], prompt), s["dist"]


def same_dist(a, b, atol):
    assert a["ok"] and b["ok"]
    pa = {t["char"]: t["p"] for t in a["top"]}
    pb = {t["char"]: t["p"] for t in b["top"]}
    shared = set(pa) & set(pb)
    assert len(shared) >= len(pa) - 2, (a["top"], b["top"])      # near-ties may swap at the bottom of the top 10
    for c in shared:
        assert pa[c] == pytest.approx(pb[c], abs=atol), (c, a["top"], b["top"])


def untrained(page):
    """After Reset: a fresh untrained model for the default prompt, no curve."""
    wait_for(page, 'd.train === "idle" && !!d.dist && JSON.parse(d.dist).prompt === "ada lives in "', 20_000)
    assert n_losses(page) == 0


booted, page = booted_widget(NAME, PAGE, restore=untrained)


def test_ready_with_the_untrained_models_distribution(page):
    dist = ds(page, "dist")
    _, _, untrained = native_run(0, pretrain.DEFAULT_KNOBS["prompt"])
    same_dist(dist, untrained, 1e-5)
    assert dist["top"][0]["p"] < 0.1                                # untrained: nearly uniform over 47 tokens
    bars = page.locator(f"{ROOT} .w-livedist li")
    assert bars.count() == pretrain.TOP_K
    assert "␣" in page.locator(f"{ROOT} .w-livedist").inner_text() or all(
        t["char"] != " " for t in dist["top"])                       # space is drawn as a visible symbol


def test_train_loss_falls_matches_native_and_stop_stops(page):
    t0 = time.perf_counter()
    click_train(page)
    wait_for(page, "JSON.parse(d.losses || '[]').length > 0", 30_000)
    first_change = time.perf_counter() - t0
    wait_for(page, "JSON.parse(d.losses || '[]').length >= 60")
    stop(page)
    losses = ds(page, "losses")
    n = len(losses)
    time.sleep(1.5)
    assert n_losses(page) == n, "training went on after Stop"
    assert page.locator(f"{ROOT} .w-train").inner_text() == "Resume"
    assert first_change < 30, f"{first_change:.1f} s from Train to the first loss"

    native, native_probs, _ = native_run(n, pretrain.DEFAULT_KNOBS["prompt"])
    np.testing.assert_allclose(losses, native, rtol=1e-4)           # same seed, same maths, wasm vs native BLAS
    baselines = pretrain.info()["baselines"]
    assert losses[0] == pytest.approx(baselines["uniform"], abs=0.05)
    assert np.mean(losses[-10:]) < baselines["unigram"] - 0.3, losses[-10:]
    dist = ds(page, "dist")
    same_dist(dist, native_probs, 2e-3)
    assert dist["top"][0]["p"] > 0.1                                 # mass has concentrated
    # the chart's text alternative follows the curve
    assert f"Loss after {n} steps" in page.locator(f"{ROOT} .w-chart .w-alt-summary").inner_text()

    # Resume carries on the same run, from where it stopped
    click_train(page)
    wait_for(page, f"JSON.parse(d.losses || '[]').length > {n}", 20_000)
    stop(page)
    more = ds(page, "losses")
    assert more[:n] == losses
    np.testing.assert_allclose(more, native_run(len(more), "")[0], rtol=1e-4)


def test_prompt_changes_redraw_the_distribution(page):
    before = ds(page, "dist")
    text = page.locator(f'{ROOT} .w-field[data-knob="prompt"] input')
    text.fill("23+4=")
    wait_for(page, 'JSON.parse(d.dist).prompt === "23+4="', 10_000)
    after = ds(page, "dist")
    assert after["top"] != before["top"]
    same_dist(after, native_run(0, "23+4=")[2], 1e-5)
    assert hash_of(page)["prompt"] == "23+4="
    # a preset from the menu
    select = page.locator(f"{ROOT} select").first
    set_control(page, select, json.dumps("the small dog "))
    wait_for(page, 'JSON.parse(d.dist).prompt === "the small dog "', 10_000)
    assert text.input_value() == "the small dog "


def test_a_prompt_outside_the_alphabet_is_explained(page):
    page.locator(f'{ROOT} .w-field[data-knob="prompt"] input').fill("Ada lives in!")
    wait_for(page, 'JSON.parse(d.dist).prompt === "Ada lives in!"', 10_000)
    dist = ds(page, "dist")
    assert dist["ok"] is False and set(dist["problem"]["chars"]) == {"A", "!"}
    shown = page.locator(f"{ROOT} .w-livedist-wrap .w-bad-prompt")
    assert shown.is_visible() and "alphabet" in shown.inner_text() and "lowercase" in shown.inner_text()
    assert wait_settled(page, NAME) == "ready"                      # an explained input, not a broken widget


def test_a_divergent_learning_rate_is_caught_and_explained(page):
    lr = page.locator(f'{ROOT} .w-field[data-knob="lr"] input')
    set_control(page, lr, lr.get_attribute("max"))                   # the slider's far right: lr = 3
    wait_settled(page, NAME)
    assert page.locator(f'{ROOT} .w-field[data-knob="lr"] output').inner_text() == "3"
    click_train(page)
    wait_for(page, 'd.train === "diverged"', 30_000)
    assert wait_settled(page, NAME) == "error"
    box = page.locator(f"{ROOT} .w-diverged")
    assert box.is_visible()
    text = box.inner_text()
    assert "Training diverged" in text and "Why:" in text and "Lower the learning rate" in text
    losses = ds(page, "losses")
    assert not math.isfinite(float(losses[-1])) or float(losses[-1]) > math.log(pretrain.CFG.model.vocab_size) + 1
    assert "diverged at step" in page.locator(f"{ROOT} .w-error").inner_text()
    assert page.locator(f"{ROOT} .w-livedist").get_attribute("class").count("w-stale")   # no garbage bars
    assert page.locator(f"{ROOT} .w-train").inner_text() == "Train"
    # natively the same run diverges at the same step
    s = pretrain.start(lr=3.0)
    r = {"status": "training"}
    while r["status"] == "training":
        r = pretrain.step(s["session"], 10, "")
    assert r["status"] == "diverged" and r["diverged"]["step"] == len(losses)
    # a lower rate clears it
    set_control(page, lr, 7)                                          # the ladder's 1e-2
    wait_for(page, 'd.train === "idle"', 10_000)
    assert wait_settled(page, NAME) == "ready" and not box.is_visible()


def test_scrubbing_the_snapshots_changes_the_distribution(page, site_dir):
    results = site_dir / "results" / "00_pretrain.json"
    if not results.exists():
        pytest.skip("this build has no results/00_pretrain.json (the full run is not committed yet)")
    wait_for(page, "!!d.snapshots", 30_000)
    assert not page.evaluate(f"document.querySelector('{ROOT}').dataset.snapshot")   # nothing fetched until asked
    steps = ds(page, "snapshots")
    listing = pretrain.snapshots(str(results))["snapshots"]
    assert steps == [s["step"] for s in listing]
    scrub = page.locator(f'{ROOT} .w-field[data-knob="snapshot"] input')
    seen = {}
    for i in (0, len(steps) - 1):
        set_control(page, scrub, i)
        wait_for(page, f"!!d.snapshot && JSON.parse(d.snapshot).step === {steps[i]}", 20_000)
        got = ds(page, "snapshot")
        native = pretrain.snapshot(str(site_dir / "checkpoints" / listing[i]["checkpoint"]), "ada lives in ")
        same_dist(got["dist"], native["dist"], 1e-4)
        assert got["continuation"] == native["continuation"]
        assert page.locator(f'{ROOT} .w-field[data-knob="snapshot"] output').inner_text() == f"step {steps[i]}"
        seen[i] = got
    first, last = seen[0]["dist"], seen[len(steps) - 1]["dist"]
    assert first["top"] != last["top"] and last["entropy"] < first["entropy"] - 1
    assert last["top"][0]["p"] > 0.3
    assert hash_of(page)["snapshot"] == steps[-1]
    # the snapshot view follows the prompt too
    page.locator(f'{ROOT} .w-field[data-knob="prompt"] input').fill("23+4=")
    wait_for(page, 'JSON.parse(d.snapshot).dist.prompt === "23+4="', 20_000)


def test_a_shared_link_reopens_the_widget_as_it_was(open_page):
    w = open_page(PAGE, knobs_hash(NAME, {"prompt": "bob has a ", "lr": 0.03, "steps": 100, "seed": 2}))
    assert wait_booted(w.page, NAME) == "ready"
    wait_for(w.page, 'JSON.parse(d.dist || "{}").prompt === "bob has a "', 20_000)
    assert w.page.locator(f'{ROOT} .w-field[data-knob="lr"] output').inner_text() == "3e−2"
    assert w.page.locator(f'{ROOT} .w-field[data-knob="steps"] output').inner_text() == "100"
    same_dist(ds(w.page, "dist"), pretrain.start(lr=0.03, steps=100, seed=2, prompt="bob has a ")["dist"], 1e-5)
