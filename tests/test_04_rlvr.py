"""Stage 04's GRPO pieces: the verifier, group advantages, k3, and every loss type against hand values and by
finite differences on the log-probs."""
import collections
import math
from dataclasses import replace
from pathlib import Path
import types

import numpy as np
import pytest

import gpt_mini
from conftest import require

rl = gpt_mini.stage("04_rlvr")


@pytest.mark.parametrize("text,answer,reward", [("12 25 40.", 40, 1.0), ("40.", 40, 1.0), ("41.", 40, 0.0),
                                                ("", 40, 0.0), (None, 40, 0.0), ("<|end|>", 40, 0.0),
                                                ("the answer is forty", 40, 0.0), ("40", "x", 0.0), (40, 40, 0.0)])
def test_the_verifier_scores_the_final_number_and_never_raises(text, answer, reward):
    assert rl.verify(text, answer) == reward


def test_group_advantages_by_hand():
    r = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    a = rl.group_advantages(r, 4, "group")
    std = np.std([1, 0, 0, 0], ddof=1)                          # unbiased, as torch.std
    np.testing.assert_allclose(a[:4], (np.array([1, 0, 0, 0]) - 0.25) / (std + 1e-4))
    np.testing.assert_array_equal(a[4:], 0.0)                   # a group of equal rewards: no signal
    np.testing.assert_allclose(rl.group_advantages(r, 4, "none")[:4], [0.75, -0.25, -0.25, -0.25])
    np.testing.assert_allclose(rl.group_advantages(r, 4, "batch")[:4],
                               np.array([0.75, -0.25, -0.25, -0.25]) / (np.std(r, ddof=1) + 1e-4))
    assert rl.zero_std_fraction(r, 4) == 0.5
    with pytest.raises(ValueError, match="do not split"):
        rl.group_advantages(r, 3)
    with pytest.raises(ValueError, match="scale must be"):
        rl.group_advantages(r, 4, "mean")


def test_k3_is_nonnegative_zero_at_equality_and_unbiased_for_kl():
    assert rl.k3_kl(np.log(0.3), np.log(0.3)) == 0
    x = np.linspace(-5, 5, 101)
    assert np.all(rl.k3_kl(x, 0.0) >= 0)
    # tokens sampled from π: the mean of k3 is KL(π ‖ π_ref)
    rng = np.random.default_rng(0)
    p, q = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.5, 0.3])
    draws = rng.choice(3, 200_000, p=p)
    kl = float(np.sum(p * np.log(p / q)))
    assert rl.k3_kl(np.log(p[draws]), np.log(q[draws])).mean() == pytest.approx(kl, rel=0.02)


def per_token_by_hand(logp, old, ref, A, beta, lo=0.2, hi=0.2):
    ratio = math.exp(logp - old)
    loss = -min(ratio * A, min(max(ratio, 1 - lo), 1 + hi) * A)
    return loss + beta * (math.exp(ref - logp) - (ref - logp) - 1)


@pytest.mark.parametrize("loss_type", rl.LOSS_TYPES)
def test_every_loss_type_against_a_loop_by_hand(loss_type):
    rng = np.random.default_rng(1)
    B, T = 3, 5
    logps, old, ref = (rng.normal(-1.5, 0.4, (B, T)) for _ in range(3))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], float)
    A = np.array([1.5, -0.7, 0.2])
    loss, _, _ = rl.grpo_loss(logps, old, ref, A, mask, beta=0.04, loss_type=loss_type, max_completion_length=T,
                              num_items_in_batch=20)
    tok = [[per_token_by_hand(logps[b, t], old[b, t], ref[b, t], A[b], 0.04) for t in range(T)] for b in range(B)]
    rows = [sum(tok[b][t] for t in range(T) if mask[b, t]) for b in range(B)]
    expected = {"grpo": np.mean([rows[b] / mask[b].sum() for b in range(B)]), "bnpo": sum(rows) / mask.sum(),
                "dr_grpo": sum(rows) / (B * T), "dapo": sum(rows) / 20}[loss_type]
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss_type", rl.LOSS_TYPES)
def test_the_gradient_with_respect_to_the_log_probs_matches_finite_differences(loss_type):
    rng = np.random.default_rng(2)
    B, T = 4, 6
    logps, old, ref = (rng.normal(-1.0, 0.3, (B, T)) for _ in range(3))
    mask = (rng.random((B, T)) > 0.3).astype(float)
    A = rng.normal(0, 1, B)
    args = dict(beta=0.1, loss_type=loss_type, max_completion_length=T, epsilon_low=0.1, epsilon_high=0.15)
    _, d, _ = rl.grpo_loss(logps, old, ref, A, mask, **args)
    h = 1e-6
    for b in range(B):
        for t in range(T):
            x = logps.copy()
            x[b, t] += h
            up = rl.grpo_loss(x, old, ref, A, mask, **args)[0]
            x[b, t] -= 2 * h
            down = rl.grpo_loss(x, old, ref, A, mask, **args)[0]
            assert d[b, t] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_on_policy_the_ratio_is_one_and_clipping_never_binds():
    rng = np.random.default_rng(3)
    logps = rng.normal(-1, 0.5, (2, 4))
    loss, d, m = rl.grpo_loss(logps, logps, logps, np.array([1.0, -1.0]), np.ones((2, 4)), beta=0.0)
    assert m["clip_ratio/region_mean"] == 0 and loss == pytest.approx(0.0)   # the mean advantage is 0
    np.testing.assert_allclose(d, -np.array([[1.0] * 4, [-1.0] * 4]) / 8)   # -A × 1/(tokens) / B for "grpo"


def test_grpo_favours_long_wrong_answers_and_dr_grpo_does_not():
    """The length bias: under "grpo", a token of a long sequence weighs 1/len; with a negative advantage a long
    wrong answer is pushed down less per token than a short one. dr_grpo weighs every token the same."""
    mask = np.array([[1, 1, 0, 0, 0, 0, 0, 0], [1] * 8], float)
    lp = np.full((2, 8), -1.0)
    A = np.array([-1.0, -1.0])
    _, d_grpo, _ = rl.grpo_loss(lp, lp, lp, A, mask, beta=0.0, loss_type="grpo")
    _, d_dr, _ = rl.grpo_loss(lp, lp, lp, A, mask, beta=0.0, loss_type="dr_grpo", max_completion_length=8)
    assert d_grpo[1, 0] == pytest.approx(d_grpo[0, 0] / 4)        # the long one's tokens: a quarter of the push
    assert d_dr[1, 0] == pytest.approx(d_dr[0, 0])
    with pytest.raises(ValueError, match="needs max_completion_length"):
        rl.grpo_loss(lp, lp, lp, A, mask, beta=0.0, loss_type="dr_grpo")


def trl_grpo_trainer(torch, per_token_logps, loss_type, beta, epsilon_low, epsilon_high, max_completion_length):
    """A stand-in for GRPOTrainer's `self`, holding exactly what _compute_loss reads: one process, no gradient
    accumulation (so grpo/bnpo/dr_grpo are not divided further and dapo's normalizer is num_items_in_batch itself),
    token-level ratios, no entropy masking, no off-policy mask, no vLLM, no entropy bonus, no aux loss. Its
    "model" returns our fixed log-probs: TRL's arithmetic is what's tested."""
    class Accelerator:
        num_processes = 1
        sync_gradients = True
        gather = gather_for_metrics = staticmethod(lambda x: x)
        reduce = staticmethod(lambda x, reduction: x)
    return types.SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *args, **kwargs: (per_token_logps, torch.zeros_like(per_token_logps),
                                                                    None),
        model=types.SimpleNamespace(training=True), accelerator=Accelerator(), loss_type=loss_type, beta=beta,
        epsilon_low=epsilon_low, epsilon_high=epsilon_high, max_completion_length=max_completion_length,
        importance_sampling_level="token", top_entropy_quantile=1.0, off_policy_mask_threshold=None, use_vllm=False,
        aux_loss_enabled=False, _entropy_bonus_enabled=False, current_gradient_accumulation_steps=1,
        args=types.SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
        _metrics={"train": collections.defaultdict(list)})


@pytest.mark.parametrize("off_policy", [True, False], ids=["off_policy", "on_policy"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", rl.LOSS_TYPES)
def test_loss_gradient_and_metrics_equal_trls_own_grpo_code_on_the_same_numbers(loss_type, beta, off_policy):
    """TRL 1.16's GRPOTrainer._compute_loss, fed our log-probs, in float64: the loss, its gradient with respect to
    the per-token log-probs (torch autograd on a leaf tensor against our dlogps), and the logged kl and
    clip_ratio/{low,high,region}_mean. Off-policy, the ratios spread over [0.5, 1.6] and advantages of both signs,
    so clipping binds on both sides (asymmetric ε, as DAPO's); on-policy TRL uses logps.detach() as the old ones."""
    torch = require("torch")
    trl = require("trl")
    from trl.trainer.grpo_trainer import GRPOTrainer
    rng = np.random.default_rng(6)
    B, T, lo, hi = 6, 7, 0.2, 0.28
    logps, ref = rng.normal(-1.2, 0.5, (B, T)), rng.normal(-1.2, 0.5, (B, T))
    old = logps - np.log(rng.uniform(0.5, 1.6, (B, T))) if off_policy else logps
    lengths = np.array([7, 3, 5, 1, 6, 4])
    mask = (np.arange(T) < lengths[:, None]).astype(np.int64)          # right-padded, as TRL's completion_mask
    A = np.array([1.3, -0.8, 0.4, -1.1, 0.9, -0.5])
    num_items = int(mask.sum()) + 9                                     # the whole generation batch's tokens (say)
    ours, dlogps, metrics = rl.grpo_loss(logps, old, ref, A, mask, beta=beta, epsilon_low=lo, epsilon_high=hi,
                                         loss_type=loss_type, max_completion_length=T, num_items_in_batch=num_items)
    if off_policy:                                                      # both sides of the clip are exercised
        assert metrics["clip_ratio/low_mean"] > 0 and metrics["clip_ratio/high_mean"] > 0
    else:
        assert metrics["clip_ratio/region_mean"] == 0

    leaf = torch.tensor(logps, dtype=torch.float64, requires_grad=True)
    trainer = trl_grpo_trainer(torch, leaf, loss_type, beta, lo, hi, T)
    inputs = {"prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": torch.tensor(mask),
              "advantages": torch.tensor(A), "ref_per_token_logps": torch.tensor(ref),
              "num_items_in_batch": torch.tensor(float(num_items), dtype=torch.float64)}
    if off_policy:                                  # absent: TRL takes per_token_logps.detach(), as we take logps
        inputs["old_per_token_logps"] = torch.tensor(old)
    loss = GRPOTrainer._compute_loss(trainer, None, inputs)
    assert loss.dtype == torch.float64
    loss.backward()
    assert loss.item() == pytest.approx(ours, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(dlogps, leaf.grad.numpy(), rtol=1e-12, atol=1e-15)
    logged = trainer._metrics["train"]
    assert ("kl" in logged) == ("kl" in metrics) == (beta != 0)
    for key, value in metrics.items():   # TRL counts clipped tokens with .float(): a float32 share of float32 counts
        expected = float(np.float32(value)) if key.startswith("clip_ratio/") else pytest.approx(value, rel=1e-12)
        assert logged[key] == [expected], key


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_equal_trls_arithmetic_with_its_own_nanstd(scale):
    """TRL computes advantages inline in GRPOTrainer._generate_and_score_completions (the "sum_then_normalize"
    branch), not in a function we can call, so this repeats its lines with TRL's own nanstd: rewards minus the
    group's mean, divided by nanstd over the group ("group") or over the whole batch ("batch") plus 1e-4, or not
    divided ("none"); frac_reward_zero_std is the share of completions whose std isclose to 0."""
    torch = require("torch")
    require("trl")
    from trl.trainer.utils import nanstd
    K = 4
    rewards = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.25])
    r = torch.tensor(rewards, dtype=torch.float64)
    mean = torch.nanmean(r.view(-1, K), dim=1).repeat_interleave(K, dim=0)
    std = nanstd(r.view(-1, K), dim=1).repeat_interleave(K, dim=0) if scale != "batch" else nanstd(r).expand_as(r)
    advantages = r - mean
    if scale != "none":
        advantages = advantages / (std + 1e-4)
    # Not to 1e-13: TRL's nanstd takes Bessel's factor count / (count - 1) of two integer tensors, which torch
    # divides in its default float32 (4/3 -> 1.3333333730697632), so even on float64 rewards its std is off by a
    # relative ~1.5e-8; ours is float64 throughout. Equal to float32 rounding, then, and no closer.
    np.testing.assert_allclose(rl.group_advantages(rewards, K, scale), advantages.numpy(), rtol=1e-7, atol=1e-15)
    group_std = nanstd(r.view(-1, K), dim=1).repeat_interleave(K, dim=0)
    is_std_zero = torch.isclose(group_std, torch.zeros_like(group_std))
    assert rl.zero_std_fraction(rewards, K) == pytest.approx(is_std_zero.double().mean().item(), rel=1e-15)


# ----------------------------------------------------------------------------- the stage: data, loss, run

from conftest import assert_grads_match_fd                         # noqa: E402
from gpt_mini import chat, world                                  # noqa: E402
from gpt_mini.model import GPT, GPTConfig, token_logps            # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOK = world.tokenizer()
TINY = GPTConfig(vocab_size=TOK.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16)


def tiny64():
    model = GPT(TINY, seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    return {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in model.params.items()}


def scored_batch(params, cfg, seed=0):
    """A real batch from the sampler on a tiny random model, with advantages set by hand (its rewards are all 0)."""
    batch = rl.generate_and_score(params, params, TINY, cfg, [[3, 5], [12, 40, 7]], seed)
    batch.advantages = np.random.default_rng(seed).normal(0, 1, len(batch.rewards))
    return batch


@pytest.mark.parametrize("loss_type,temperature,beta", [("grpo", 1.0, 0.0), ("dapo", 0.7, 0.1),
                                                        ("dr_grpo", 1.3, 0.04), ("bnpo", 1.0, 0.04)])
def test_the_grpo_gradient_through_the_whole_model_matches_finite_differences(loss_type, temperature, beta):
    params = tiny64()
    cfg = replace(rl.LESSON, num_generations=3, temperature=temperature, beta=beta, loss_type=loss_type,
                  max_completion_length=8)
    batch = scored_batch(params, cfg)
    ids = batch.input_ids
    # the sampler's old log-probs are held fixed (as after num_iterations > 1), the reference is another model
    batch.old_logps, _ = token_logps(params, ids[:, :-1], ids[:, 1:], TINY, temperature)
    ref = tiny64()
    ref["wte"] = ref["wte"] + 0.05
    batch.ref_logps, _ = token_logps(ref, ids[:, :-1], ids[:, 1:], TINY, temperature)
    loss_fn = rl.grpo_loss_fn(cfg)
    _, grads, _ = loss_fn(params, batch, TINY)
    assert_grads_match_fd(lambda p: loss_fn(p, batch, TINY)[0], params, grads,
                          ("wte", "wpe", "h.0.attn.c_attn.w", "h.0.mlp.c_fc.b", "ln_f.g"), abs_tol=1e-10)


def test_on_policy_the_loss_scores_the_samplers_own_log_probs():
    """The sampler's log-probs (logits / temperature) equal what the loss recomputes, so the first ratio is 1."""
    params = tiny64()
    cfg = replace(rl.LESSON, num_generations=4, temperature=0.8, max_completion_length=10)
    end = TOK.special_id(chat.END)
    roll = rl.sample_batch(params, TINY, [rl.prompt_ids([3, 5])] * 4, 10, 0.8, stop_ids=(end,), seed=0)
    ids, mask = roll.sequences()
    logp, _ = token_logps(params, ids[:, :-1], ids[:, 1:], TINY, cfg.temperature)
    for b in range(4):
        np.testing.assert_allclose(logp[b][mask[b, 1:]], roll.logps[b][roll.completion_mask[b]], rtol=1e-9)


def test_generate_and_score_groups_k_rollouts_per_problem_and_scores_them_with_the_verifier():
    from gpt_mini import checkpoint
    config, _, params, _ = checkpoint.load(ROOT / "checkpoints" / rl.WIDGET.init)   # the small CoT model
    cfg = replace(rl.WIDGET, num_generations=4)
    probs = [[3, 5], [12, 40, 7], [20, 31]]
    batch = rl.generate_and_score(params, params, config, cfg, probs, 0)
    assert batch.input_ids.shape[0] == 12 and batch.summands == [2] * 4 + [3] * 4 + [2] * 4
    assert batch.old_logps is None                                   # used once: the ratio is 1
    answers = [sum(p) for p in probs for _ in range(4)]
    expected = [rl.verify(t, a) if e else 0.0 for t, a, e in zip(batch.texts, answers, batch.ended)]
    np.testing.assert_array_equal(batch.rewards, expected)
    assert 0 < batch.rewards.sum() < 12                              # this model gets some right, not all
    np.testing.assert_array_equal(batch.lengths, batch.completion_mask.sum(axis=1))
    np.testing.assert_allclose(batch.advantages, rl.group_advantages(batch.rewards, 4))
    for r in range(12):                                              # a group's rollouts share its prompt
        prompt = TOK.decode(batch.input_ids[r][~batch.completion_mask[r]])
        assert rl.COT.question(probs[r // 4]) in prompt


def test_a_reply_scores_only_if_it_ended():
    assert rl.reward({"text": "8 15.", "ended": True}, 15) == 1.0
    assert rl.reward({"text": "8 15.", "ended": False}, 15) == 0.0     # cut off at max_completion_length


def test_paired_change_by_hand():
    before = {"3": {"right_per_problem": [4, 0, 8]}}
    after = {"3": {"right_per_problem": [6, 0, 8]}}
    d = np.array([2, 0, 0]) / 8
    got = rl.paired_change(before, after, 8)["3"]
    assert got["pass@1"] == pytest.approx(d.mean()) and got["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(3))


def test_pass_at_k_is_chens_unbiased_estimator():
    c = np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert rl.pass_at_k(c, 1) == pytest.approx(np.mean([0.25, 1, 0]))
    assert rl.pass_at_k(c, 2) == pytest.approx(np.mean([1 - 3 / 6, 1, 0]))   # 1 - C(3,2)/C(4,2)
    assert rl.pass_at_k(c, 4) == pytest.approx(2 / 3)


def test_without_accumulation_bnpo_and_dapo_are_the_same_loss():
    rng = np.random.default_rng(5)
    lp, mask = rng.normal(-1, 0.3, (4, 6)), rng.random((4, 6)) > 0.3
    A = rng.normal(0, 1, 4)
    a = rl.grpo_loss(lp, lp, lp, A, mask, beta=0.0, loss_type="bnpo")
    b = rl.grpo_loss(lp, lp, lp, A, mask, beta=0.0, loss_type="dapo")
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_reused_rollouts_move_the_ratio_so_clipping_can_bind():
    params = tiny64()
    cfg = replace(rl.LESSON, num_generations=4, max_completion_length=8, num_iterations=3,
                  train=replace(rl.LESSON.train, batch_size=2, lr=3e-2, warmup=0, steps=3))
    from gpt_mini.train import TrainState, train
    nb = rl.rollouts(params, {k: v.copy() for k, v in params.items()}, TINY, cfg, {})
    seen = []

    def next_batch():
        seen.append(nb())
        seen[-1].advantages = np.where(np.arange(8) % 2, 1.0, -1.0)     # a signal, whatever the rewards
        return seen[-1]
    history = train(TrainState(params), next_batch, TINY, cfg.train, rl.grpo_loss_fn(cfg))
    assert seen[0] is seen[1] is seen[2] and seen[0].old_logps is not None
    assert history.metrics[0]["clip_ratio/region_mean"] == 0             # step 1: ratio 1
    assert history.metrics[2]["clip_ratio/region_mean"] > 0              # step 3: the policy has moved


def test_training_problems_never_include_a_held_out_one():
    cfg = replace(rl.QUICK, summands=(2, 2))
    held = rl.held_out_problems(replace(cfg, eval_summands=(2, 2), n_eval=2000))
    stream = rl.problems(cfg, held)
    heldset = {tuple(p) for p in held[2]}
    assert not any(tuple(next(stream)) in heldset for _ in range(3000))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from conftest import quick_stage_run
    return quick_stage_run(tmp_path_factory, "04_rlvr", "02_cot_cot.npz")


def test_a_quick_run_trains_from_the_cot_checkpoint_and_writes_its_results(quick_run):
    out, results = quick_run
    assert (out / "checkpoints" / "04_rlvr.npz").exists()
    curve = results["curve"]
    assert curve[0]["kl"] == pytest.approx(0, abs=1e-6)               # step 1: the policy is the reference
    assert curve[0]["clip_ratio/region_mean"] == 0                       # used once: the ratio is exactly 1
    assert curve[-1]["kl"] > 0                                           # ... and then it has moved
    for m in curve:
        assert 0 <= m["frac_reward_zero_std"] <= 1 and m["entropy"] > 0
    for when in ("before", "after"):
        for n, v in results[when].items():
            ks = [v["pass@k"][k] for k in sorted(v["pass@k"], key=int)]
            assert ks == sorted(ks)                                      # pass@k never falls as k grows
    # a model, its samples: the reported pass@1 equals the verifier on what the sampler wrote (first sample each)
    for s in results["before"]["2"]["samples"]:
        assert s["answer"] == sum(map(int, s["question"][:-2].split("+")))


def test_the_committed_run_moves_pass_at_1_little_and_cannot_learn_what_it_never_gets_right():
    """The lesson's claims, on the shipped results: over 2-5 summands held-out pass@1 changes by a few points at most
    (40 fresh problems per number of summands × 16 samples; the mean change is positive), while 6 and 7 summands
    stay at 0 (all-wrong groups: nothing to reinforce)."""
    from conftest import committed
    r = committed("04_rlvr")[0]
    trained = ("2", "3", "4", "5")
    assert 0 < np.mean([r["change"][n]["pass@1"] for n in trained]) < 0.1
    for n in trained:
        change = r["after"][n]["pass@k"]["1"] - r["before"][n]["pass@k"]["1"]
        assert r["change"][n]["pass@1"] == pytest.approx(change)      # the paired mean is the plain difference
    for n in ("6", "7"):
        assert r["before"][n]["pass@k"]["16"] == 0 and r["after"][n]["pass@k"]["1"] == 0
