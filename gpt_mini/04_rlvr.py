"""Stage 04, reinforcement learning with verifiable rewards (RLVR), with GRPO: TRL's names and conventions.

    python -m gpt_mini.04_rlvr            # checkpoints/04_rlvr*.npz and results/04_rlvr.json
    python -m gpt_mini.04_rlvr --quick    # a tiny run for tests (needs checkpoints/02_cot_cot.npz in --out)

When a program can check an answer, skip preferences: sample K completions per prompt, score each with the
verifier, and use the group's mean reward as the baseline (no value network). The policy starts from the CoT
model (its problems are the sums a program can check), and a frozen copy of it is the reference. Read in order:

    verify, reward                              1 if the reply ended and its final number is the answer, else 0
    group_advantages(rewards, group_size, scale)
    k3_kl(logps, ref_logps)                     Schulman's k3 estimator of KL(π ‖ π_ref), per token
    grpo_loss(logps, old_logps, ref_logps, advantages, completion_mask, beta, ...) -> (loss, dlogps, metrics)
    sample_and_score, generate_and_score,       the data: K rollouts per prompt from the current policy, scored
    rollouts
    grpo_loss_fn                                the loss the shared training loop (train.train) calls
    evaluate, run                               pass@1 / pass@k on held-out problems, before and after

The loss is a function of per-token log-probs, like every stage's: its gradient with respect to them (dlogps)
goes into the model through model.token_logps_backward.
"""

import json
import math
import random
import re

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import chat, checkpoint, stage, stage_parser, world
from .model import token_entropy, token_logps, token_logps_backward
from .sample import sample_batch
from .train import TrainConfig, TrainState, train, use_heap_for_temporaries

ROOT = Path(__file__).resolve().parent.parent
STAGE = "04_rlvr"
COT = stage("02_cot")   # the problems and the question format the policy was fine-tuned on

NUMBER = re.compile(r"\d+")
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


@dataclass(frozen=True)
class RLVRConfig:
    init: str = "02_cot_cot.npz"             # the policy starts here, and this frozen copy is the reference
    summands: tuple = (2, 6)                 # training problems: 2 to 6 summands (CoT was trained on 2-5)
    num_generations: int = 8                 # K rollouts per prompt (TRL's name)
    temperature: float = 1.0                 # sampling, and the log-probs the loss scores (logits / temperature)
    max_completion_length: int = 32
    beta: float = 0.04                       # the k3 anchor's weight (TRL's default is 0.0: no reference at all)
    loss_type: str = "dapo"                  # TRL's default
    scale_rewards: str = "group"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    num_iterations: int = 1                  # optimizer steps per batch of rollouts (TRL's name; 1: ratio = 1)
    # batch_size counts prompts: each step samples batch_size × num_generations rollouts. Measured on this model
    # (300-600 steps): lr 1e-4 moved KL to 0.3 within 30 steps without a better pass@1; 1e-5 barely moved it.
    train: TrainConfig = TrainConfig(steps=300, batch_size=16, lr=3e-5, warmup=10, min_lr_ratio=1.0,
                                     weight_decay=0.0)
    n_eval: int = 40                         # held-out problems per number of summands
    eval_summands: tuple = (2, 7)
    eval_samples: int = 16                   # samples per held-out problem, for pass@1 and pass@k
    cold: tuple = (0.3, 20, 8)               # the start policy also sampled at this temperature: (T, problems, samples)
    seed: int = 0


LESSON = RLVRConfig()
WIDGET = replace(LESSON, init="02_cot_cot_widget.npz", summands=(2, 4), train=replace(LESSON.train, steps=300, lr=1e-4))
QUICK = replace(LESSON, train=replace(LESSON.train, steps=12, batch_size=4), summands=(2, 3), n_eval=16,
                eval_summands=(2, 3), eval_samples=4)


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


def reward(reply, answer):
    """A rollout's reward: an unfinished reply (cut off at max_completion_length) scores 0 whatever it says."""
    return verify(reply["text"], answer) if reply["ended"] else 0.0


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


# ----------------------------------------------------------------------------- the data: rollouts, scored

def problems(cfg, held_out):
    """An endless stream of training problems (n summands, n uniform in cfg.summands), none of them held out."""
    rng = random.Random(f"rlvr-train-{cfg.seed}")
    lo, hi = cfg.summands
    seen = {tuple(p) for ps in held_out.values() for p in ps}
    while True:
        p = COT.problems(rng.randint(lo, hi), 1, rng)[0]
        if tuple(p) not in seen:
            yield p


def held_out_problems(cfg):
    rng = random.Random(f"rlvr-eval-{cfg.seed}")
    lo, hi = cfg.eval_summands
    return {n: COT.problems(n, cfg.n_eval, rng) for n in range(lo, hi + 1)}


def cot_overlap(held):
    """How many held-out problems lesson 04's CoT model was fine-tuned on (exactly, or with the summands in another
    order): RL's held-out problems are fresh for RL, not all of them for the model."""
    trained = COT.training_problems(COT.LESSON)
    exact, reordered = {tuple(p) for p in trained}, {tuple(sorted(p)) for p in trained}
    return {str(n): {"problems": len(ps), "exact": sum(tuple(p) in exact for p in ps),
                     "any_order": sum(tuple(sorted(p)) in reordered for p in ps)} for n, ps in held.items()}


def prompt_ids(summands):
    return chat.render([("user", COT.question(summands))], generation_prompt=True)[0]


@dataclass
class Batch:
    """One step's rollouts, scored: what the loss reads (TRL calls this dict `inputs`)."""
    input_ids: np.ndarray        # (R, T) prompt + completion, R = prompts × K, groups of K consecutive rows
    completion_mask: np.ndarray  # (R, T) True on completion tokens
    rewards: np.ndarray          # (R,)
    advantages: np.ndarray       # (R,)
    ref_logps: np.ndarray        # (R, T-1) the reference's log-probs of each next token, at the temperature
    old_logps: np.ndarray        # (R, T-1) the sampling policy's, or None when used once (then the ratio is 1)
    lengths: np.ndarray          # (R,) completion lengths in tokens
    ended: np.ndarray            # (R,) True if the reply ended with <|end|> (False: cut off, reward 0)
    summands: list               # (R,) the number of summands of each row's problem
    texts: list                  # (R,) the replies, decoded


def sample_and_score(policy, config, probs, k, max_new_tokens, temperature, seed):
    """k replies to each problem (rows k by k, a problem's together), sampled at once, and the verifier's reward of
    each: (Rollouts, decoded replies, rewards (len(probs) * k,))."""
    end = world.tokenizer().special_id(chat.END)
    roll = sample_batch(policy, config, [prompt_ids(p) for p in probs for _ in range(k)], max_new_tokens,
                        temperature, stop_ids=(end,), seed=seed)
    replies = [chat.reply(row[m]) for row, m in zip(roll.completion_ids, roll.completion_mask)]
    rewards = np.array([reward(r, sum(p)) for r, p in zip(replies, (p for p in probs for _ in range(k)))])
    return roll, replies, rewards


def generate_and_score(policy, ref, config, cfg, probs, seed):
    """K rollouts of each problem from the current policy, their rewards and group advantages (TRL's
    _generate_and_score_completions)."""
    K = cfg.num_generations
    roll, replies, rewards = sample_and_score(policy, config, probs, K, cfg.max_completion_length, cfg.temperature,
                                              seed)
    input_ids, completion_mask = roll.sequences()                          # (R, T)
    ref_logps, _ = token_logps(ref, input_ids[:, :-1], input_ids[:, 1:], config, cfg.temperature)   # (R, T-1)
    old_logps = None
    if cfg.num_iterations > 1:                                             # reused: score against the sampler
        old_logps, _ = token_logps(policy, input_ids[:, :-1], input_ids[:, 1:], config, cfg.temperature)
    return Batch(input_ids, completion_mask, rewards, group_advantages(rewards, K, cfg.scale_rewards), ref_logps,
                 old_logps, roll.lengths, roll.stopped, [len(p) for p in probs for _ in range(K)],
                 [r["text"] for r in replies])


def rollouts(policy, ref, config, cfg, held_out):
    """next_batch for the shared loop: fresh rollouts from the policy as it is now (the loop updates `policy` in
    place), each batch used for num_iterations steps."""
    stream, rng = problems(cfg, held_out), np.random.default_rng(cfg.seed)
    current, used = None, 0

    def next_batch():
        nonlocal current, used
        if current is None or used == cfg.num_iterations:
            probs = [next(stream) for _ in range(cfg.train.batch_size)]
            current, used = generate_and_score(policy, ref, config, cfg, probs, rng), 0
        used += 1
        return current
    return next_batch


# ----------------------------------------------------------------------------- the loss the loop calls

def grpo_loss_fn(cfg):
    """loss_fn(params, batch, config) for train.train: the policy's log-probs of the rollouts, GRPO's loss, and
    its gradient through the model. Logs TRL's metrics, plus the KL and lengths even when beta is 0."""
    K = cfg.num_generations

    def loss_fn(params, batch, config):
        logp, cache = token_logps(params, batch.input_ids[:, :-1], batch.input_ids[:, 1:], config,
                                  cfg.temperature)                               # (R, T-1)
        mask = batch.completion_mask[:, 1:]                                      # (R, T-1) shifted with targets
        # on-policy, TRL uses per_token_logps.detach() as the old log-probs: the ratio is exactly 1
        old = logp if batch.old_logps is None else batch.old_logps
        loss, dlogp, metrics = grpo_loss(logp, old, batch.ref_logps, batch.advantages, mask, cfg.beta,
                                         cfg.epsilon_low, cfg.epsilon_high, cfg.loss_type, cfg.max_completion_length)
        grads = token_logps_backward(dlogp, cache, params, config)
        n = mask.sum()
        metrics["kl"] = float((k3_kl(logp, batch.ref_logps) * mask).sum() / n)   # logged even when beta is 0
        metrics["entropy"] = float((token_entropy(cache) * mask).sum() / n)
        return loss, grads, {**metrics, **batch_metrics(batch, K)}
    return loss_fn


def batch_metrics(batch, K):
    """TRL's reward metrics, and completion lengths of right and wrong rollouts (the length bias shows there)."""
    r, lengths = batch.rewards, batch.lengths
    p = float(r.mean())
    return {"reward": p, "reward_std": float(r.std(ddof=1)), "frac_reward_zero_std": zero_std_fraction(r, K),
            # what the share would be if every prompt had the batch's pass rate p (prompts differ: see results)
            "frac_reward_zero_std_if_equal": p ** K + (1 - p) ** K,
            "completions/mean_length": float(lengths.mean()),
            "completions/mean_length_correct": float(lengths[r > 0].mean()) if (r > 0).any() else None,
            "completions/mean_length_wrong": float(lengths[r == 0].mean()) if (r == 0).any() else None}


# ----------------------------------------------------------------------------- held-out evaluation

def evaluate(params, config, cfg, held, temperature=1.0, seed=1):
    """Per number of summands: pass@1 and pass@k (k up to eval_samples, Chen et al.'s unbiased estimator) from
    eval_samples samples of each held-out problem; the share of problems whose samples all agree (a zero-spread
    group of that size) beside p^k + (1-p)^k; greedy accuracy; and the mean length of right and wrong samples."""
    n_s = cfg.eval_samples
    out = {}
    for n, probs in held.items():
        roll, replies, right = sample_and_score(params, config, probs, n_s, cfg.max_completion_length, temperature,
                                                seed)
        c = right.reshape(len(probs), n_s)                                   # (problems, samples)
        p1 = float(c.mean())
        greedy = COT.evaluate(params, config, {n: probs})[str(n)]
        lengths = roll.lengths
        out[str(n)] = {
            "pass@k": {str(k): pass_at_k(c, k) for k in (1, 2, 4, 8, 16) if k <= n_s},
            "greedy": greedy["accuracy"],
            "zero_spread": {str(k): {"measured": float(np.mean([zero_std_fraction(row[:k], k) for row in c])),
                                     "if_equal": p1 ** k + (1 - p1) ** k} for k in (4, 8) if k <= n_s},
            "length_correct": float(lengths[right > 0].mean()) if right.any() else None,
            "length_wrong": float(lengths[right == 0].mean()) if (right == 0).any() else None,
            "ended": float(roll.stopped.mean()),
            "right_per_problem": c.sum(axis=1).astype(int).tolist(),         # of eval_samples, for paired changes
            "samples": [{"question": COT.question(p), "answer": sum(p), "reply": replies[i * n_s]["text"]}
                        for i, p in enumerate(probs[:3])]}
    return out


def paired_change(before, after, samples):
    """Per number of summands, the change in pass@1 with its standard error: the same problems and sampling seeds
    before and after, so the difference is taken problem by problem (a paired estimate, much tighter than
    comparing two means)."""
    out = {}
    for n in before:
        d = (np.array(after[n]["right_per_problem"]) - np.array(before[n]["right_per_problem"])) / samples
        out[n] = {"pass@1": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None}
    return out


def pass_at_k(correct, k):
    """Mean over problems of 1 - C(n - c, k) / C(n, k): the chance that at least one of k samples, drawn without
    replacement from the n taken, is right (Chen et al. 2021); at k = 1 it is the mean accuracy."""
    n = correct.shape[1]
    return float(np.mean([1.0 - math.comb(n - int(c), k) / math.comb(n, k) for c in correct.sum(axis=1)]))


# ----------------------------------------------------------------------------- the run

def optimize(cfg, out_dir, held, progress=None, every=5):
    """One GRPO run from cfg.init: (params, reference, config, per-step metrics every `every` steps)."""
    config, _, ref, _ = checkpoint.load(Path(out_dir) / "checkpoints" / cfg.init)
    params = {k: v.copy() for k, v in ref.items()}                       # the policy starts as the reference
    history = train(TrainState(params), rollouts(params, ref, config, cfg, held), config, cfg.train,
                    grpo_loss_fn(cfg), progress=progress)
    curve = [{k: v for k, v in m.items() if k not in ("grad_norm", "lr")} for m in history.metrics[::every]]
    return params, ref, config, curve, history.seconds


VARIANTS = {                                  # each a change from LESSON, trained and scored the same way
    "no_anchor": {"beta": 0.0},               # TRL's default: no reference model at all
    "grpo": {"loss_type": "grpo"},            # mean per sequence, then over sequences
    "dr_grpo": {"loss_type": "dr_grpo"},      # sum ÷ (sequences × max_completion_length)
    "reused": {"num_iterations": 4},          # each batch used for 4 steps: now the ratio moves and clipping binds
}


def run(cfg, out_dir, widget=None, variants=VARIANTS, progress=True):
    out_dir = Path(out_dir)
    tok = world.tokenizer()
    held = held_out_problems(cfg)
    config, _, ref, _ = checkpoint.load(out_dir / "checkpoints" / cfg.init)
    results = {"stage": STAGE, "config": {**asdict(cfg), "model": config.to_dict()},
               "data": {"held_out": {str(n): len(p) for n, p in held.items()},
                        "held_out_in_cot_training": cot_overlap(held),
                        "examples": [{"question": COT.question(p), "answer": sum(p)}
                                     for p in held[cfg.summands[0]][:3]]},
               "before": evaluate(ref, config, cfg, held),
               "before_cold": evaluate(ref, config, replace(cfg, eval_samples=cfg.cold[2]),
                                       {n: p[:cfg.cold[1]] for n, p in held.items()}, temperature=cfg.cold[0])}
    params, ref, config, curve, seconds = optimize(cfg, out_dir, held, progress=STAGE if progress else None)
    checkpoint.save(out_dir / "checkpoints" / f"{STAGE}.npz", config, tok, params,
                    meta={"step": cfg.train.steps, "from": cfg.init, "beta": cfg.beta, "loss_type": cfg.loss_type})
    results["curve"], results["seconds"] = curve, seconds
    results["after"] = evaluate(params, config, cfg, held)
    results["change"] = paired_change(results["before"], results["after"], cfg.eval_samples)
    results["variants"] = {}
    for name, change in variants.items():
        vcfg = replace(cfg, **change)
        p, _, _, vcurve, _ = optimize(vcfg, out_dir, held, progress=name if progress else None)
        after = evaluate(p, config, vcfg, held)
        results["variants"][name] = {"settings": change, "curve": vcurve, "after": after,
                                     "change": paired_change(results["before"], after, cfg.eval_samples)}
    if widget:
        wheld = {n: p[:20] for n, p in held.items()}
        wparams, wref, wconfig, wcurve, wsec = optimize(widget, out_dir, held, progress="widget" if progress else None)
        checkpoint.save(out_dir / "checkpoints" / f"{STAGE}_widget.npz", wconfig, tok, wparams,
                        meta={"step": widget.train.steps, "from": widget.init, "beta": widget.beta})
        results["widget"] = {"config": {**asdict(widget), "model": wconfig.to_dict()}, "curve": wcurve,
                             "seconds": wsec, "before": evaluate(wref, wconfig, widget, wheld),
                             "after": evaluate(wparams, wconfig, widget, wheld)}
        results["widget"]["change"] = paired_change(results["widget"]["before"], results["widget"]["after"],
                                                    widget.eval_samples)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    (out_dir / "results" / f"{STAGE}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def main(argv=None):
    args = stage_parser("RLVR with GRPO from the CoT checkpoint, rewarded by a verifier.").parse_args(argv)
    out = args.out or (Path("quick-run") if args.quick else ROOT)
    use_heap_for_temporaries()
    results = run(QUICK, out, variants={}) if args.quick else run(LESSON, out, widget=WIDGET)
    for when in ("before", "after"):
        print(when, " ".join(f"n={n}: pass@1 {v['pass@k']['1']:.2f}" for n, v in results[when].items()))
    print(f"wrote {out / 'results' / (STAGE + '.json')}")


if __name__ == "__main__":
    main()
