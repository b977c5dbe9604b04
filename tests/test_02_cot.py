"""Stage 02, chain of thought: the traces, the answer parser, the SFT code path reused, and a quick run."""
import random
from pathlib import Path

import numpy as np
import pytest

import gpt_mini
from conftest import quick_stage_run

cot = gpt_mini.stage("02_cot")
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n", range(1, 12))
def test_the_trace_is_the_running_sum_and_ends_in_the_answer(n):
    rng = random.Random(n)
    for summands in cot.problems(n, 50, rng):
        trace = cot.cot_answer(summands)
        numbers = [int(x) for x in trace.rstrip(".").split()] if n > 1 else []
        assert numbers == [sum(summands[:k]) for k in range(2, n + 1)]
        if n > 1:
            assert cot.final_answer(trace) == sum(summands) == cot.final_answer(cot.direct_answer(summands))
            assert cot.first_error(summands, trace) is None
        assert cot.question(summands) == "+".join(map(str, summands)) + "=?"


def test_first_error_points_at_the_first_wrong_or_missing_partial_sum():
    assert cot.first_error([1, 2, 3, 4], "3 6 10.") is None
    assert cot.first_error([1, 2, 3, 4], "3 7 11.") == 1
    assert cot.first_error([1, 2, 3, 4], "3.") == 1
    assert cot.first_error([1, 2, 3, 4], "") == 0


@pytest.mark.parametrize("text,expected", [("12 25 40.", 40), ("40.", 40), ("", None), ("abc", None), (None, None),
                                          ("<|end|>7", 7), ("1 2 3 4 5 6 7 8 9 10 11 12 13 14", 14), (42, None)])
def test_the_answer_parser_never_raises(text, expected):
    assert cot.final_answer(text) == expected


def test_training_and_evaluation_problems_come_from_different_draws_and_ranges():
    cfg = cot.LESSON
    train = cot.training_problems(cfg)
    lo, hi = cfg.trained
    assert {len(p) for p in train} == set(range(lo, hi + 1)) and len(train) == cfg.n_train
    evals = cot.eval_problems(cfg)
    assert set(evals) == set(range(cfg.evaluated[0], cfg.evaluated[1] + 1)) and max(evals) > hi
    assert all(len(v) == cfg.n_eval for v in evals.values())


def test_wilson_interval():
    lo, hi = cot.wilson(0, 100)
    assert lo == 0 and 0.03 < hi < 0.04
    lo, hi = cot.wilson(50, 100)
    assert lo == pytest.approx(0.404, abs=0.002) and hi == pytest.approx(0.596, abs=0.002)


def test_cot_trains_through_the_sft_code_path_not_a_copy():
    import inspect
    source = inspect.getsource(cot)
    assert source.count("SFT.finetune(") >= 2                      # direct, CoT (and the depth study)
    assert not hasattr(cot, "train") and not hasattr(cot, "next_token_loss")   # no loop or loss of its own


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return quick_stage_run(tmp_path_factory, "02_cot", "01_sft.npz")[1]


def test_a_quick_run_puts_cot_above_direct_at_the_largest_trained_n(quick_run):
    n = str(cot.QUICK.trained[1])
    direct, chain = quick_run["models"]["direct"]["eval"][n], quick_run["models"]["cot"]["eval"][n]
    assert chain["accuracy"] > direct["accuracy"]
    assert chain["tokens"] > direct["tokens"]                 # the trace costs tokens
    assert np.all(np.diff([quick_run["models"]["cot"]["eval"][k]["tokens"] for k in sorted(
        quick_run["models"]["cot"]["eval"], key=int)]) >= -1)   # and costs more the more summands
