"""Stage 04's GRPO pieces: the verifier, group advantages, k3, and every loss type against hand values and by
finite differences on the log-probs."""
import math

import numpy as np
import pytest

import gpt_mini

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
