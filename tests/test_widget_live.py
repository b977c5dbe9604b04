"""widgets/_live.py: what every live widget shares (sessions, knob checks, the chunked run, distributions)."""
import math

import numpy as np
import pytest

import widgets
from gpt_mini import world
from gpt_mini.data import get_batch
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.train import TrainConfig, TrainState, next_token_loss, train
from widgets._live import LiveRun, Sessions, choice, distribution, encode_prompt, label, number

CFG = GPTConfig(vocab_size=world.tokenizer().vocab_size, block_size=8, n_layer=1, n_head=2, n_embd=16)
DATA = np.array(world.tokenizer().encode("ada lives in paris. " * 30))


def run(lr=1e-2, steps=25, above=math.inf):
    rng = np.random.default_rng(0)
    return LiveRun(TrainState(GPT(CFG, seed=0).params), TrainConfig(steps=steps, batch_size=4, lr=lr, warmup=2), CFG,
                   lambda: get_batch(DATA, CFG.block_size, 4, rng), next_token_loss, diverge_above=above, window=5)


def test_number_and_choice_name_the_knob_and_the_range():
    assert number("lr", 0.5, 0, 1) == 0.5 and number("n", 3.0, 1, 5, integer=True) == 3
    for bad, match in [(True, "must be a number"), (float("nan"), "must be a number"), ("1", "must be a number"),
                       (2.5, "whole number"), (9, "between 1 and 5")]:
        with pytest.raises(ValueError, match=match):
            number("n", bad, 1, 5, integer=True)
    assert choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b', got 'c'"):
        choice("mode", "c", ("a", "b"))


def test_sessions_drop_the_oldest_and_explain_a_missing_one():
    s = Sessions(limit=2)
    ids = [s.add(object()) for _ in range(3)]
    assert ids[0] not in s and ids[2] in s and len(s) == 2
    s.close(ids[2])
    with pytest.raises(KeyError, match="press Train again"):
        s.get(ids[2])


def test_a_live_run_in_chunks_is_the_shared_loop_end_to_end():
    chunked = run()
    losses = []
    while chunked.status in ("ready", "training"):
        losses += chunked.advance(7).losses
    assert chunked.status == "done" and chunked.state.step == 25 and chunked.advance(5).losses == []
    whole = run()
    ref = train(whole.state, whole.next_batch, CFG, whole.hp, next_token_loss)
    assert losses == ref.losses
    assert len(chunked.recent) == 5 and chunked.recent == losses[-5:]


def test_a_live_run_stops_as_diverged_and_reports_a_stall_only_above_the_baseline():
    r = run(above=0.0)
    r.advance(5)
    assert r.status == "diverged" and r.diverged["step"] == 1 and r.advance(5).losses == []
    r = run(steps=40)
    r.advance(20)
    assert r.stalled(baseline=100.0, after=10) is None                     # well below the baseline: learning
    assert r.stalled(baseline=0.0, after=10) == pytest.approx(np.mean(r.recent))   # above it, 10+ steps in
    assert r.stalled(baseline=0.0, after=30) is None                       # above it, but too early to say


def test_distribution_is_the_models_softmax_with_readable_labels():
    params = GPT(CFG, seed=0).params
    d = distribution(params, CFG, "ada ", top_k=5)
    assert d["ok"] and len(d["top"]) == 5 and d["top"][0]["p"] >= d["top"][-1]["p"]
    assert d["entropy"] <= math.log(CFG.vocab_size) + 1e-9
    assert label(" ") == "␣" and label("\n") == "↵"
    bad = distribution(params, CFG, "Ada!")
    assert not bad["ok"] and "lowercase" in bad["problem"]["hint"] and bad["problem"]["chars"] == ["A", "!"]
    assert encode_prompt(3)[1]["message"].startswith("the prompt must be text")


def test_a_helper_module_is_not_a_widget_the_page_can_call():
    import json
    reply = json.loads(widgets.dispatch("_live", "number", '{"name": "x", "value": 1, "lo": 0, "hi": 2}'))
    assert not reply["ok"] and "not a widget name" in reply["error"]["message"]
