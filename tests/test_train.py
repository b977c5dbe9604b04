"""The shared loop: schedule, clipping, AdamW, divergence, curve, snapshots, evaluation, chunked resumption."""
import math
from dataclasses import replace

import numpy as np
import pytest

import gpt_mini
import gpt_mini.train
from gpt_mini.data import get_batch
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.train import TrainConfig, TrainState, mean_loss, train, train_step

CFG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
HP = TrainConfig(steps=30, batch_size=4, lr=1e-2, warmup=3)
DATA = np.tile(np.arange(11), 40)                  # a stream the model can learn: each token follows its predecessor


def fresh(seed=0):
    return TrainState(GPT(CFG, seed=seed).params), np.random.default_rng(seed)


def batches(rng):
    return lambda: get_batch(DATA, CFG.block_size, HP.batch_size, rng)


def test_train_is_train_step_in_a_loop_and_chunks_do_not_change_it():
    state, rng = fresh()
    whole = train(state, batches(rng), CFG, HP)
    state2, rng2 = fresh()
    parts = [train(state2, batches(rng2), CFG, HP, until=u) for u in (7, 8, 20, 99)]
    assert [m["loss"] for p in parts for m in p.metrics] == whole.losses
    state3, rng3 = fresh()
    ref = [train_step(state3, batches(rng3)(), CFG, HP)[1]["loss"] for _ in range(HP.steps)]
    assert whole.losses == ref
    assert state.step == HP.steps and len(whole.losses) == HP.steps
    assert whole.losses[-1] < whole.losses[0] - 1.0


def test_the_curve_averages_each_window_and_snapshots_and_evals_come_on_time():
    state, rng = fresh()
    seen = []
    h = train(state, batches(rng), CFG, HP, curve_every=10, snapshots=(0, 5, 30),
              on_snapshot=lambda step, loss: seen.append((step, loss)),
              eval_every=15, evaluate=lambda st: {"step_seen": st.step})
    assert [s for s, _ in h.curve] == [10, 20, 30]
    assert h.curve[0][1] == pytest.approx(np.mean(h.losses[:10]))
    assert seen == [(0, None), (5, h.losses[4]), (30, h.losses[29])]
    assert h.evals == [[15, {"step_seen": 15}], [30, {"step_seen": 30}]]
    assert h.seconds > 0


@pytest.mark.parametrize("on_diverge", ["raise", "stop"])
def test_a_non_finite_or_too_large_loss_is_divergence(monkeypatch, on_diverge):
    real = gpt_mini.train.train_step

    def poisoned(state, batch, config, hp, loss_fn):
        state, m = real(state, batch, config, hp, loss_fn)
        return state, {**m, "loss": math.inf if state.step == 4 else m["loss"]}
    monkeypatch.setattr(gpt_mini.train, "train_step", poisoned)
    state, rng = fresh()
    if on_diverge == "raise":
        with pytest.raises(FloatingPointError, match="at step 4: lower the learning rate"):
            train(state, batches(rng), CFG, HP)
        return
    h = train(state, batches(rng), CFG, HP, on_diverge="stop")
    assert h.diverged["step"] == 4 and len(h.metrics) == 4 and state.step == 4
    state, rng = fresh()
    h = train(state, batches(rng), CFG, HP, on_diverge="stop", diverge_above=0.0)   # every loss is above 0
    assert h.diverged["step"] == 1


def test_a_huge_learning_rate_is_caught_by_the_loss_threshold():
    state, rng = fresh()
    h = train(state, batches(rng), CFG, replace(HP, lr=3.0, warmup=0), on_diverge="stop",
              diverge_above=math.log(CFG.vocab_size) + 1.0)
    assert h.diverged is not None and h.diverged["step"] < HP.steps


def test_mean_loss_weights_batches_by_their_scored_positions():
    params = GPT(CFG, seed=0).params
    idx = np.arange(8)[None, :] % 11
    full = (idx, idx + 1, None)
    one = (idx, idx + 1, np.eye(1, 8, 0, dtype=bool))
    assert mean_loss(params, CFG, [full, one]) == pytest.approx(
        (8 * mean_loss(params, CFG, [full]) + mean_loss(params, CFG, [one])) / 9)


def test_stage_reaches_a_stage_module_by_name():
    assert gpt_mini.stage("00_pretrain").STAGE == "00_pretrain"
    with pytest.raises(ModuleNotFoundError):
        gpt_mini.stage("99_nothing")
