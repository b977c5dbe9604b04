"""widgets/dpo.py natively, through the worker's JSON entry point: DPO starts at ln 2 with a zero margin, the margin
rises and held-out unknown people start being refused, each breaking configuration (β near zero, a rate too high,
too many steps) is flagged with its explanation, and bad knobs come back as readable errors."""
import math

import numpy as np
import pytest
from conftest import dispatch_ok, dispatch_error

import gpt_mini
from widgets import dpo

stage = gpt_mini.stage("03_dpo")


def call(fn, **args):
    return dispatch_ok("dpo", fn, **args)


def error(fn, **args):
    return dispatch_error("dpo", fn, **args)


_runs = {}


def run(steps, chunk=25, **knobs):
    """start + every step's metrics up to `steps` + the evaluation at the end (cached: the runs are shared)."""
    key = (steps, chunk, tuple(sorted(knobs.items())))
    if key not in _runs:
        s = call("start", steps=max(steps, dpo.STEPS_RANGE[0]), **knobs)
        metrics, losses, r = {k: [] for k in dpo.METRICS}, [], None
        while len(losses) < steps:
            r = call("step", session=s["session"], n=min(chunk, steps - len(losses)))
            losses += r["losses"]
            for k in dpo.METRICS:
                metrics[k] += r["metrics"][k]
            if r["status"] != "training":
                break
        _runs[key] = (s, r, losses, metrics, call("evaluate", session=s["session"]))
    return _runs[key]


def kinds(ev):
    return [s["kind"] for s in ev["diagnosis"]["symptoms"]]


def test_info_and_defaults_are_the_stages():
    i = call("info")
    assert i["defaults"] == dpo.DEFAULT_KNOBS
    assert dpo.DEFAULT_KNOBS["beta"] == stage.WIDGET.beta == i["lesson_beta"]
    assert dpo.DEFAULT_KNOBS["lr"] == stage.WIDGET.train.lr == i["lesson_lr"]
    assert dpo.DEFAULT_KNOBS["steps"] == stage.WIDGET.train.steps
    assert i["beta_ladder"][0] == 0.001 and i["beta_ladder"][-1] == 1.0 and 0.1 in i["beta_ladder"]
    assert stage.WIDGET.train.lr in i["lr_ladder"] and 4 * stage.WIDGET.train.lr <= i["lr_ladder"][-1]
    assert i["checkpoint"] == "checkpoints/01_sft_widget.npz" and i["refusal"] == "i do not know."


def test_step_zero_is_ln2_with_a_zero_margin_and_the_pairs_are_the_stages():
    s = call("start", steps=25)
    assert s["pairs"] == dpo.N_PAIRS and sum(s["kinds"].values()) == dpo.N_PAIRS
    assert s["kinds"]["unknown"] > 0 and s["kinds"]["known"] > 0
    r = call("step", session=s["session"], n=1)
    assert r["losses"][0] == pytest.approx(math.log(2), abs=1e-6)        # the policy is the reference
    for k in ("rewards/margins", "rewards/chosen", "rewards/rejected"):
        assert r["metrics"][k][0] == pytest.approx(0.0, abs=1e-6)
    before = s["before"]
    assert len(before["rows"]) == dpo.HELD_UNKNOWN + dpo.HELD_OTHER
    assert {r["kind"] for r in before["rows"][:dpo.HELD_UNKNOWN]} == {"unknown"}
    assert all(r["preferred"] == "i do not know." for r in before["rows"][:dpo.HELD_UNKNOWN])
    # the held-out prompts are none of the training pairs' people
    held_names = {p for p in gpt_mini.world.HELD_OUT_UNKNOWN}
    assert all(not any(n in ex["prompt"].split() for n in held_names) for ex in s["examples"])


def test_a_short_run_raises_the_margin_and_unknown_people_start_being_refused():
    s, r, losses, m, ev = run(50)
    margins = m["rewards/margins"]
    assert np.mean(margins[-10:]) > 0.15 > np.mean(margins[:10])
    assert np.mean(m["rewards/accuracies"][-10:]) > 0.6
    assert np.mean(losses[-10:]) < math.log(2) - 0.05
    b, a = ev["before"], ev["after"]
    switched = [x["prompt"] for x, y in zip(b["rows"], a["rows"])
                if x["kind"] == "unknown" and not x["correct"] and y["correct"]]
    assert switched, (b["rows"], a["rows"])
    assert a["refuses_unknown"] > b["refuses_unknown"]
    assert 0 < ev["kl"] < dpo.KL_BROKEN
    assert ev["diagnosis"]["status"] == "ok" and not kinds(ev)


def test_the_default_run_is_not_flagged():
    _, r, _, m, ev = run(150)
    assert r["status"] == "done"
    assert np.mean(m["rewards/margins"][-10:]) > 0.3
    assert not kinds(ev), ev["diagnosis"]


def test_beta_near_zero_is_flagged_tiny_margin_large_log_ratio():
    _, _, losses, m, ev = run(100, beta=0.001)
    assert np.mean(m["rewards/margins"][-10:]) < dpo.BETA_MARGIN
    assert abs(np.mean(losses[-10:]) - math.log(2)) < 0.01
    assert "beta" in kinds(ev)
    s = ev["diagnosis"]["symptoms"][kinds(ev).index("beta")]
    assert "β = 0.001" in s["what"] and "ln 2" in s["what"] and s["why"] and "0.1" in s["try"]
    assert ev["diagnosis"]["status"] == "broken"


def test_a_rate_too_high_breaks_the_replies_and_says_so():
    _, _, _, _, ev = run(50, lr=3e-4)
    assert "lr" in kinds(ev), ev["diagnosis"]
    s = ev["diagnosis"]["symptoms"][kinds(ev).index("lr")]
    assert "replies broke" in s["what"] and "lr = 0.0003" in s["why"] and "2e-05" in s["try"]
    assert ev["kl"] > dpo.KL_BROKEN


def test_too_many_steps_is_flagged_with_displacement():
    _, r, _, m, ev = run(600)
    assert r["status"] == "done"
    assert "long" in kinds(ev), ev["diagnosis"]
    s = ev["diagnosis"]["symptoms"][kinds(ev).index("long")]
    assert "Train fewer steps" in s["try"]
    # the margin kept rising while the chosen log-probs fell
    assert np.mean(m["rewards/margins"][-25:]) > np.mean(m["rewards/margins"][125:150])
    assert np.mean(m["logps/chosen"][-25:]) < np.mean(m["logps/chosen"][125:150])


@pytest.mark.parametrize("knobs, words", [
    ({"beta": 5}, "beta must be between 0.001 and 1, got 5"),
    ({"beta": 0}, "beta must be between 0.001 and 1"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"lr": 1}, "lr must be between"),
    ({"steps": 7.5}, "steps must be a whole number"),
    ({"steps": 10_000}, "steps must be between 25 and 600"),
    ({"path": "weights.bin"}, "a .npz checkpoint file"),
])
def test_bad_knobs_give_readable_errors(knobs, words):
    e = error("start", **knobs)
    assert e["type"] == "ValueError" and words in e["message"], e


def test_bad_sessions_and_chunks_give_readable_errors():
    assert "no training session 9999" in error("step", session=9999, n=1)["message"]
    assert "press Train again" in error("evaluate", session=9999)["message"]
    s = call("start", steps=25)
    assert "n must be between 1 and 25" in error("step", session=s["session"], n=26)["message"]
    assert call("close", session=s["session"]) == {"closed": s["session"]}


def test_a_divergence_is_explained():
    m = {"step": 7, "loss": float("nan")}
    d = dpo._explain_divergence(m, 1e-3, 0.1)
    assert "not a number" in d["what"] and "lr = 0.001" in d["why"] and "2e-05" in d["try"]
