"""Stage 03, DPO: sequence log-probs, the sigmoid loss against hand values and against TRL's own code, its
gradient through the whole model, the pairs, and a quick run."""
import collections
import math
import types
from pathlib import Path

import numpy as np
import pytest

import gpt_mini
from conftest import assert_grads_match_fd, quick_stage_run, require
from gpt_mini import chat, world
from gpt_mini.model import GPT, GPTConfig, forward

dpo = gpt_mini.stage("03_dpo")
ROOT = Path(__file__).resolve().parent.parent
TOK = world.tokenizer()
CFG = GPTConfig(vocab_size=TOK.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16)
ITEMS = [([("user", "where does ada live?")], "ada lives in oslo.", "ada lives in lima.", "near"),
         ([("user", "what is 2+3?")], "2+3=5.", "2+3=6.", "sum"),
         ([("user", "where does zed live?")], world.REFUSAL, "eve lives in rome.", "unknown")]


def model64():
    model = GPT(CFG, seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    return {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in model.params.items()}


def test_dpo_loss_against_hand_computed_values():
    losses, cr, rr = dpo.dpo_loss(np.array([-1.0, -5.0]), np.array([-3.0, -2.0]),
                                  np.array([-2.0, -4.0]), np.array([-2.0, -4.0]), beta=0.5)
    # pair 0: logits (-1 + 3) - 0 = 2, loss -log σ(1) = log(1 + e^-1); pair 1: (-5 + 2) = -3, -log σ(-1.5)
    np.testing.assert_allclose(losses, [math.log1p(math.exp(-1.0)), math.log1p(math.exp(1.5))], rtol=1e-12)
    np.testing.assert_allclose(cr, [0.5, -0.5]) and np.testing.assert_allclose(rr, [-0.5, 1.0])
    # stable where a naive -log(sigmoid(z)) would overflow or underflow
    big, _, _ = dpo.dpo_loss(np.array([-1e4]), np.array([0.0]), np.array([0.0]), np.array([0.0]), beta=1.0)
    assert big[0] == pytest.approx(1e4)


def test_at_step_zero_the_loss_is_ln2_and_every_margin_zero():
    params = model64()
    ids, mask = dpo.tensors(ITEMS)
    logps, _ = dpo.sequence_logps(params, ids, mask, CFG)
    B = len(ITEMS)
    loss, _, m = dpo.dpo_loss_fn(0.1)(params, (ids, mask, logps[:B], logps[B:]), CFG)
    assert loss == pytest.approx(math.log(2), abs=1e-12)
    assert m["rewards/margins"] == 0 and m["rewards/chosen"] == 0 and m["rewards/accuracies"] == 0


def test_sequence_logps_is_the_sum_over_the_completion_of_a_direct_log_softmax():
    params = model64()
    ids, mask = dpo.tensors(ITEMS)
    logps, _ = dpo.sequence_logps(params, ids, mask, CFG)
    logits, _ = forward(params, ids[:, :-1], CFG)
    logsm = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for r in range(len(ids)):
        positions = [t for t in range(1, ids.shape[1]) if mask[r, t]]       # the completion's own tokens
        direct = sum(logsm[r, t - 1, ids[r, t]] for t in positions)          # token t from the logits at t-1
        assert logps[r] == pytest.approx(direct, rel=1e-12)
    # the completion is exactly the reply and its <|end|>
    chosen = TOK.decode(ids[0][mask[0]])
    assert chosen == ITEMS[0][1] + chat.END


@pytest.mark.parametrize("rpo_alpha", [None, 1.0])
def test_the_dpo_gradient_through_the_whole_model_matches_finite_differences(rpo_alpha):
    params = model64()
    ids, mask = dpo.tensors(ITEMS)
    B = len(ITEMS)
    ref = dpo.sequence_logps(params, ids, mask, CFG)[0] + np.random.default_rng(2).normal(0, 1, 2 * B)
    batch = (ids, mask, ref[:B], ref[B:])
    loss_fn = dpo.dpo_loss_fn(0.5, rpo_alpha)
    _, grads, _ = loss_fn(params, batch, CFG)
    assert_grads_match_fd(lambda p: loss_fn(p, batch, CFG)[0], params, grads,
                          ("wte", "h.0.attn.c_attn.w", "h.0.mlp.c_proj.b", "ln_f.g"))


def test_loss_and_metrics_equal_trls_own_dpo_code_on_the_same_numbers():
    """TRL 1.16's DPOTrainer._compute_loss, sigmoid loss, fed our per-token log-probs through a stand-in model."""
    torch = require("torch")
    trl = require("trl")
    params = model64()
    ids, mask = dpo.tensors(ITEMS)
    B = len(ITEMS)
    logps, (_, shift_mask, per_token) = dpo.sequence_logps(params, ids, mask, CFG)
    ref = logps + np.random.default_rng(4).normal(0, 2, 2 * B)
    ours, cr, rr = dpo.dpo_loss(logps[:B], logps[B:], ref[:B], ref[B:], beta=0.1)
    ours_metrics = dpo.metrics(cr, rr, logps[:B], logps[B:])

    T1 = ids.shape[1] - 1
    outputs = types.SimpleNamespace(log_probs=torch.tensor(per_token * shift_mask), entropy=torch.zeros(2 * B, T1),
                                    mean_logits=torch.zeros(2 * B, T1), is_top1=torch.zeros(2 * B, T1, dtype=bool))
    model = lambda **kwargs: outputs   # noqa: E731 - a stand-in for the network: TRL's arithmetic is what's tested
    model.training = True

    class Accelerator:
        device = torch.device("cpu")
        gather = gather_for_metrics = staticmethod(lambda x: x)
    trainer = types.SimpleNamespace(
        model=model, accelerator=Accelerator(), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=["sigmoid"], loss_weights=[1.0], beta=0.1, use_weighting=False,
        _metrics={"train": collections.defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.tensor(ids), "attention_mask": torch.ones(ids.shape, dtype=torch.long),
              "completion_mask": torch.tensor(mask.astype(np.int64)),
              "ref_chosen_logps": torch.tensor(ref[:B]), "ref_rejected_logps": torch.tensor(ref[B:])}
    loss = trl.DPOTrainer._compute_loss(trainer, model, inputs, False)
    assert float(loss) == pytest.approx(float(ours.mean()), rel=1e-10)
    logged = trainer._metrics["train"]
    for key, value in ours_metrics.items():   # TRL averages the accuracies as float32
        assert logged[key][-1] == pytest.approx(value, rel=1e-7 if key == "rewards/accuracies" else 1e-9), key


def test_near_misses_differ_by_a_word_and_pairs_keep_held_out_people_out():
    rng = __import__("random").Random(0)
    assert dpo.near_miss("ada lives in oslo.", rng).startswith("ada lives in ")
    assert dpo.near_miss("ada lives in oslo.", rng) != "ada lives in oslo."
    assert set(world.DPO_UNKNOWN).isdisjoint(world.HELD_OUT_UNKNOWN)
    assert set(world.DEMO_UNKNOWN).isdisjoint(world.DPO_UNKNOWN + world.HELD_OUT_UNKNOWN)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return quick_stage_run(tmp_path_factory, "03_dpo", "01_sft.npz")[1]


def test_a_quick_run_starts_at_ln2_and_raises_the_margin(quick_run):
    curve = quick_run["curve"]
    # float32 sums over differently composed batches: equal to rounding, not bit for bit (the float64 test is exact)
    assert curve[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert curve[0]["rewards/margins"] == pytest.approx(0, abs=1e-5)
    assert np.mean([c["rewards/margins"] for c in curve[-2:]]) > 0.05
    assert quick_run["after"]["reward_accuracy"] > 0.5
    for item in quick_run["data"]["examples"]:
        assert item["chosen"] != item["rejected"]
