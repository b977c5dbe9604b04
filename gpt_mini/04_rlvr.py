"""Stage 04, reinforcement learning with verifiable rewards: GRPO's loss, with TRL's names and conventions.

When a program can check an answer, skip preferences: sample K completions per prompt, score each with the
verifier, and use the group's mean reward as the baseline (no value network). The pieces here follow TRL's
GRPOTrainer (see ../shared/post-training-notes.md):

    verify(text, answer)                       1.0 if the reply's final number is the answer, else 0.0; never raises
    group_advantages(rewards, group_size, scale)
    k3_kl(logps, ref_logps)                    Schulman's k3 estimator of KL(π ‖ π_ref), per token
    grpo_loss(logps, old_logps, ref_logps, advantages, completion_mask, beta, ...) -> (loss, dlogps, metrics)

The loss is a function of per-token log-probs, like every stage's: its gradient with respect to them (dlogps)
goes into the model through model.token_logps_backward.

Status: the verifier, advantages, k3 and the loss are here and tested; the rollout training loop, its results
file and lesson 06 are not written yet, so `python -m gpt_mini.04_rlvr` has nothing to run.
"""

import re

import numpy as np

NUMBER = re.compile(r"\d+")
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


# ----------------------------------------------------------------------------- the verifier

def verify(text, answer):
    """The reward: 1.0 when the reply's last number equals the answer, 0.0 otherwise (malformed replies too)."""
    if not isinstance(text, str):
        return 0.0
    found = NUMBER.findall(text)
    try:
        return 1.0 if found and int(found[-1]) == int(answer) else 0.0
    except (TypeError, ValueError):
        return 0.0


# ----------------------------------------------------------------------------- advantages and the KL anchor

def group_advantages(rewards, group_size, scale="group"):
    """r minus its group's mean, divided by the group's unbiased std + 1e-4 ("group"), the whole batch's
    ("batch") or nothing ("none"). Rewards come in consecutive groups of `group_size` completions of one prompt.
    A group whose rewards are all equal gets zero advantage: it teaches nothing."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1 or group_size < 1 or r.size % group_size:
        raise ValueError(f"{r.size} rewards do not split into groups of {group_size}")
    groups = r.reshape(-1, group_size)                                       # (prompts, K)
    advantages = (groups - groups.mean(axis=1, keepdims=True)).reshape(-1)   # (prompts * K,)
    if scale == "group":
        std = groups.std(axis=1, ddof=1) if group_size > 1 else np.zeros(len(groups))
        return advantages / (np.repeat(std, group_size) + 1e-4)
    if scale == "batch":
        return advantages / ((r.std(ddof=1) if r.size > 1 else 0.0) + 1e-4)
    if scale == "none":
        return advantages
    raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")


def k3_kl(logps, ref_logps):
    """Per token exp(ref - logp) - (ref - logp) - 1: unbiased for KL(π ‖ π_ref) when tokens are sampled from π
    (its mean is E[π_ref/π] - 1 - E[log π_ref/π] = 0 + KL), and never negative (e^x ≥ 1 + x)."""
    d = np.asarray(ref_logps) - np.asarray(logps)
    return np.exp(d) - d - 1.0


# ----------------------------------------------------------------------------- the loss

def grpo_loss(logps, old_logps, ref_logps, advantages, completion_mask, beta, epsilon_low=0.2, epsilon_high=0.2,
              loss_type="grpo", max_completion_length=None, num_items_in_batch=None):
    """GRPO's clipped surrogate, per token -min(ratio·A, clip(ratio, 1-ε_low, 1+ε_high)·A) + β·k3, reduced as
    TRL's loss types do. logps, old_logps, ref_logps, completion_mask: (B, T); advantages: (B,).

    grpo     mean over each sequence's completion tokens, then over sequences (a long sequence's tokens weigh less)
    bnpo     sum over all completion tokens ÷ their number in this batch
    dr_grpo  sum ÷ (B × max_completion_length): every token the same weight, whatever its sequence's length
    dapo     sum ÷ completion tokens in the whole accumulated batch (num_items_in_batch; this batch if None)
    Returns (loss, dloss/dlogps (B, T), metrics)."""
    logps, old_logps = np.asarray(logps, np.float64), np.asarray(old_logps, np.float64)
    mask = np.asarray(completion_mask, dtype=np.float64)                     # (B, T)
    A = np.asarray(advantages, np.float64)[:, None]                          # (B, 1)
    ratio = np.exp(logps - old_logps)                                        # (B, T) 1 when the policy is the sampler
    clipped = np.clip(ratio, 1 - epsilon_low, 1 + epsilon_high)
    unclipped_wins = ratio * A <= clipped * A                                # min picks the unclipped term
    per_token = -np.minimum(ratio * A, clipped * A)                          # (B, T)
    dper_token = np.where(unclipped_wins, -ratio * A, 0.0)                   # d/dlogp: ratio' = ratio; clip: flat
    kl = None
    if beta:
        kl = k3_kl(logps, ref_logps)                                         # (B, T)
        per_token = per_token + beta * kl
        dper_token = dper_token + beta * (1.0 - np.exp(np.asarray(ref_logps) - logps))
    weights = reduction_weights(mask, loss_type, max_completion_length, num_items_in_batch)   # (B, T)
    loss = float((per_token * weights).sum())
    n = max(mask.sum(), 1.0)
    metrics = {"clip_ratio/low_mean": float(((ratio < 1 - epsilon_low) & (A < 0) & (mask > 0)).sum() / n),
               "clip_ratio/high_mean": float(((ratio > 1 + epsilon_high) & (A > 0) & (mask > 0)).sum() / n)}
    metrics["clip_ratio/region_mean"] = metrics["clip_ratio/low_mean"] + metrics["clip_ratio/high_mean"]
    if kl is not None:
        metrics["kl"] = float((kl * mask).sum() / n)
    return loss, dper_token * weights, metrics


def reduction_weights(mask, loss_type, max_completion_length=None, num_items_in_batch=None):
    """The weight of each token in the loss, so that loss = Σ per_token × weight, for each of TRL's loss types."""
    B = mask.shape[0]
    if loss_type == "grpo":
        return mask / np.maximum(mask.sum(axis=1, keepdims=True), 1.0) / B
    if loss_type == "bnpo":
        return mask / max(mask.sum(), 1.0)
    if loss_type == "dr_grpo":
        if not max_completion_length:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        return mask / (B * max_completion_length)
    if loss_type == "dapo":
        return mask / max(num_items_in_batch if num_items_in_batch is not None else mask.sum(), 1.0)
    raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")


def zero_std_fraction(rewards, group_size):
    """TRL's frac_reward_zero_std: the share of groups whose rewards are all equal (no learning signal)."""
    groups = np.asarray(rewards, dtype=np.float64).reshape(-1, group_size)
    return float(np.mean(groups.std(axis=1) == 0))
