"""widgets/grpo.py natively, through the worker's JSON entry point: one group's rewards, advantages and the four
loss types' token weights (those of 04_rlvr.reduction_weights), a short run that raises the reward, each breaking
configuration (K = 1, a temperature too low, an impossible and a trivial problem set, a rate too high) detected
with the right reason, and bad input as readable errors."""
import math

import numpy as np
import pytest
from conftest import dispatch_ok, dispatch_error

import gpt_mini
from widgets import grpo

rl = gpt_mini.stage("04_rlvr")


def call(fn, **args):
    return dispatch_ok("grpo", fn, **args)


def error(fn, **args):
    return dispatch_error("grpo", fn, **args)


_runs = {}


def run(steps, chunk=20, **knobs):
    """start + step up to `steps` (cached: the runs are shared); every step's metrics and the last result."""
    key = (steps, chunk, tuple(sorted(knobs.items())))
    if key not in _runs:
        s = call("start", steps=max(steps, grpo.STEPS_RANGE[0]), **knobs)
        metrics, r = {k: [] for k in grpo.METRICS}, None
        while len(metrics["reward"]) < steps:
            r = call("step", session=s["session"], n=min(chunk, steps - len(metrics["reward"])))
            for k in grpo.METRICS:
                metrics[k] += r["metrics"][k]
            if r["status"] != "training":
                break
        _runs[key] = (s, r, metrics)
    return _runs[key]


def kinds(r):
    return [s["kind"] for s in r["diagnosis"]["symptoms"]]


def test_info_and_defaults_are_the_stages():
    i = call("info")
    d = grpo.DEFAULT_KNOBS
    assert i["defaults"] == d
    assert d["K"] == rl.WIDGET.num_generations and d["temperature"] == rl.WIDGET.temperature
    assert d["beta"] == rl.WIDGET.beta and d["loss_type"] == rl.WIDGET.loss_type and d["lr"] == rl.WIDGET.train.lr
    assert i["loss_types"] == list(rl.LOSS_TYPES) and i["checkpoint"] == "checkpoints/" + rl.WIDGET.init
    assert d["K"] in i["k_options"] and 1 in i["k_options"]
    assert d["temperature"] in i["temperature_ladder"] and d["beta"] in i["beta_ladder"] and d["lr"] in i["lr_ladder"]
    assert {p["value"] for p in i["problem_sets"]} == set(grpo.PROBLEM_SETS) and d["problems"] in grpo.PROBLEM_SETS
    assert all(1 <= v <= grpo.MAX_PROMPTS and v * k <= max(grpo.ROLLOUTS, k)
               for k, v in ((int(k), v) for k, v in i["prompts_per_step"].items()))
    assert grpo.PROBLEM_SETS["mixed"]["summands"] == tuple(rl.WIDGET.summands)


def test_a_group_is_scored_with_group_advantages():
    g = call("group", problem="79+19=?", seed=0)
    assert g["question"] == "79+19=?" and g["answer"] == 98 and g["summands"] == [79, 19] and g["typed"]
    assert g["from"] == "checkpoint" and len(g["rows"]) == 8
    rewards = np.array([r["reward"] for r in g["rows"]])
    assert set(rewards) <= {0.0, 1.0}
    for r in g["rows"]:
        assert r["reward"] == rl.verify(r["reply"], 98) * r["ended"]
        assert r["kl"] == 0.0 and r["tokens"] >= 1
    np.testing.assert_allclose([r["advantage"] for r in g["rows"]], rl.group_advantages(rewards, 8), atol=1e-12)
    assert g["pass_rate"] == rewards.mean()
    assert g["if_equal"] == pytest.approx(g["pass_rate"] ** 8 + (1 - g["pass_rate"]) ** 8)
    assert call("group", problem="79+19=?", seed=0) == g                    # seeded: the same group again
    drawn = call("group", problem="", n=3, seed=5)
    assert len(drawn["summands"]) == 3 and not drawn["typed"]
    assert call("group", problem="", n=3, seed=5)["question"] == drawn["question"]


def test_the_loss_type_weights_are_reduction_weights():
    g = call("group", problem="79+19=?", seed=0, K=16)
    tokens = np.array([r["tokens"] for r in g["rows"]])
    L = rl.WIDGET.max_completion_length
    mask = np.zeros((16, tokens.max() + 3))
    for i, t in enumerate(tokens):
        mask[i, 2:2 + t] = 1.0                        # only the row sums matter
    for lt in rl.LOSS_TYPES:
        w = g["weights"][lt]
        expected = rl.reduction_weights(mask, lt, L).sum(axis=1)
        np.testing.assert_allclose(w["total"], expected, rtol=1e-12)
        np.testing.assert_allclose(np.array(w["per_token"]) * tokens, w["total"], rtol=1e-12)
        assert w["sum"] == pytest.approx(expected.sum())
        np.testing.assert_allclose(w["push"], np.array(w["total"]) * [r["advantage"] for r in g["rows"]])
    # grpo: each reply weighs 1/K in all, so a short reply's tokens weigh more each; the others: equal per token
    np.testing.assert_allclose(g["weights"]["grpo"]["total"], 1 / 16)
    np.testing.assert_allclose(g["weights"]["grpo"]["per_token"], 1 / (16 * tokens))
    for lt in ("bnpo", "dapo"):
        np.testing.assert_allclose(g["weights"][lt]["per_token"], 1 / tokens.sum())
    np.testing.assert_allclose(g["weights"]["dr_grpo"]["per_token"], 1 / (16 * L))
    assert max(max(w["bar"]) for w in g["weights"].values()) == pytest.approx(1.0)


def test_a_group_from_a_trained_policy_has_a_kl():
    s, _, _ = run(10, K=8)
    g = call("group", problem="79+19=?", session=s["session"])
    assert g["from"] == "policy" and g["step"] == 10
    assert any(r["kl"] > 0 for r in g["rows"])
    assert all(r["beta_kl"] == pytest.approx(g["beta"] * r["kl"]) for r in g["rows"])


def test_the_default_run_raises_the_reward():
    s, r, m = run(60)
    assert s["prompts_per_step"] == grpo.prompts_per_step(8) and s["rollouts_per_step"] == 8 * s["prompts_per_step"]
    assert np.mean(m["reward"][-20:]) > np.mean(m["reward"][:10]) + 0.15
    assert 0 < np.mean(m["kl"][-10:]) < grpo.KL_BROKEN
    assert len(r["smooth"]["reward"]) == 20 and r["smooth"]["reward"][-1] == pytest.approx(np.mean(m["reward"][-10:]))
    assert "lr" not in kinds(r) and "impossible" not in kinds(r)


def test_k1_is_detected():
    _, r, m = run(10, K=1)
    assert kinds(r) == ["k1"] and r["diagnosis"]["status"] == "broken"
    assert all(z == 1.0 for z in m["frac_reward_zero_std"]) and all(k == 0.0 for k in m["kl"])
    assert "K = 1" in r["diagnosis"]["symptoms"][0]["what"] and "advantage" in r["diagnosis"]["symptoms"][0]["why"]


def test_a_temperature_too_low_is_detected():
    _, r, m = run(20, temperature=0.1)
    assert kinds(r) == ["temperature"], r["diagnosis"]
    s = r["diagnosis"]["symptoms"][0]
    assert "temperature 0.1" in s["what"] and "identical" in s["what"] and "Raise the temperature" in s["try"]
    assert np.mean(m["frac_reward_zero_std"][-10:]) >= grpo.ZS_WARN


def test_an_impossible_problem_set_is_detected():
    _, r, m = run(10, problems="n7")
    assert kinds(r) == ["impossible"] and r["diagnosis"]["status"] == "broken"
    assert sum(m["reward"]) == 0 and all(z == 1.0 for z in m["frac_reward_zero_std"])
    assert "all wrong" in r["diagnosis"]["symptoms"][0]["what"]


def test_a_trivial_problem_set_is_detected():
    _, r, m = run(100, problems="easiest", lr=3e-4)
    assert kinds(r) == ["trivial"], r["diagnosis"]
    assert np.mean(m["reward"][-20:]) >= grpo.REWARD_ALL
    assert "all right" in r["diagnosis"]["symptoms"][0]["what"]


def test_a_rate_too_high_is_detected():
    _, r, m = run(40, lr=3e-3)
    assert kinds(r) == ["lr"], r["diagnosis"]
    assert np.mean(m["kl"][-10:]) > grpo.KL_BROKEN


@pytest.mark.parametrize("args, words", [
    ({"problem": "12+5+30"}, "12+5+30=?"),
    ({"problem": "twelve plus five"}, "is not a sum the model knows"),
    ({"problem": "12-5=?"}, "whole numbers joined by +"),
    ({"problem": "7=?"}, "give 2 to 7 summands"),
    ({"problem": "1+2+3+4+5+6+7+8=?"}, "has 8 numbers"),
    ({"problem": "120+5=?"}, "120 is too large"),
    ({"problem": 12}, "must be text"),
    ({"K": 3}, "K must be one of"),
    ({"temperature": 0}, "temperature must be between"),
    ({"beta": -1}, "beta must be between"),
    ({"n": 9, "problem": ""}, "n must be between 2 and 7"),
    ({"path": "model.bin"}, "a .npz checkpoint file"),
])
def test_bad_group_input_gives_readable_errors(args, words):
    e = error("group", **args)
    assert e["type"] == "ValueError" and words in e["message"], e


def test_a_typed_problem_is_read_leniently():
    assert grpo.parse_problem(" 12 + 5+30 = ") == [12, 5, 30]


@pytest.mark.parametrize("knobs, words", [
    ({"loss_type": "ppo"}, "loss_type must be one of"),
    ({"problems": "hard"}, "problems must be one of"),
    ({"lr": 1}, "lr must be between"),
    ({"steps": 5}, "steps must be between 10 and 300"),
    ({"K": "8"}, "K must be one of"),
])
def test_bad_knobs_give_readable_errors(knobs, words):
    e = error("start", **knobs)
    assert e["type"] == "ValueError" and words in e["message"], e


def test_bad_sessions_and_chunks_give_readable_errors():
    assert "no training session 9999" in error("step", session=9999, n=1)["message"]
    assert "press Train again" in error("group", session=9999)["message"]
    s = call("start", steps=10)
    assert "n must be between 1 and 20" in error("step", session=s["session"], n=21)["message"]
    assert call("close", session=s["session"]) == {"closed": s["session"]}


def test_a_divergence_is_explained():
    d = grpo._explain_divergence({"step": 7, "loss": float("nan")}, 3e-3)
    assert "step 7" in d["what"] and "nan" in d["what"] and "lr = 0.003" in d["why"] and f"{rl.WIDGET.train.lr:g}" in d["try"]
    assert math.isinf(grpo.DIVERGE_ABOVE) is False and grpo.DIVERGE_ABOVE > 4
