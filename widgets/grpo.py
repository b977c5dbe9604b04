"""GRPO with a verifier: sample a group, see its advantages and each loss type's token weights, then train live.

The widget runs gpt_mini/04_rlvr.py's own GRPO (`generate_and_score`, `grpo_loss_fn`, `reduction_weights`,
`group_advantages`) with the shared loop (`train.train` through `_live.LiveRun`): the policy and a frozen reference
both start from the small CoT checkpoint 04_rlvr.WIDGET names (`init`), which writes running partial sums
("3+5+2=?" -> "8 10."); the verifier scores the last number.

JSON in, JSON out, no DOM. Training state lives here, in `_SESSIONS`, keyed by the id `start` returns:
    info()                      knob ladders and ranges, defaults, problem sets, model size, thresholds
    group(path, problem, n, K, temperature, beta, seed, session)
                                one group of K rollouts of one problem (typed, or drawn with n summands) from the
                                current policy (the session's, else the checkpoint): each reply, its reward,
                                length, advantage, KL to the reference, and the weight every loss type gives its
                                tokens (all four at once: the UI's toggle only chooses which to show)
    start(path, K, temperature, beta, loss_type, lr, steps, problems, seed)
                                a training session on a problem set
    step(session, n)            n more GRPO steps: reward, KL, zero-spread share beside p^K + (1-p)^K, ... and the
                                diagnosis: a configuration that cannot learn, named and explained from the numbers
    close(session)              forget a session (Reset)
Every configuration that breaks learning (K = 1, a temperature too low, an impossible or a trivial problem set, a
rate too high) comes back explained in words (`diagnosis`, `diverged`), never as silent garbage.
"""

import math
import random
import re
from dataclasses import replace

import numpy as np

from gpt_mini import chat, checkpoint, stage, world
from gpt_mini.model import param_shapes, token_logps
from gpt_mini.train import TrainState

from ._live import LiveRun, Sessions, choice, number

__all__ = ["info", "group", "start", "step", "close"]

rl = stage("04_rlvr")
CFG = rl.WIDGET                             # read at import: the lead tunes its values, never copy them
CHECKPOINT = "checkpoints/" + CFG.init      # relative to the site root (browser) or the repository (natively)
COT = rl.COT

K_OPTIONS = (1, 2, 4, 8, 16)
TEMPERATURE_LADDER = tuple(sorted({0.05, 0.1, 0.3, 0.5, 0.7, 1.3, CFG.temperature}))
BETA_LADDER = tuple(sorted({0.0, 0.01, 0.1, 0.3, CFG.beta}))
LR_LADDER = tuple(sorted({1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, CFG.train.lr}))
STEPS_RANGE = (10, 300)
STEPS_STEP = 10
SUMMANDS_RANGE = (2, 7)            # a group's problem: 2 to 7 summands (the CoT model was trained on 2-5) ...
MAX_SUMMAND = 99                   # ... each 0-99, as 02_cot draws them
MAX_CHUNK = 20
MAX_SESSIONS = 3
WINDOW = 10                        # steps averaged for the drawn curves
DIAG_WINDOW = 20                   # steps averaged for the diagnosis (a trivial set's zero spread is noisy)
MIN_STEPS = 5                      # before this, a symptom can still be noise

# Prompts per training step: ROLLOUTS // K (at most MAX_PROMPTS), so a step samples at most 32 rollouts. Natively
# (1 BLAS thread, busy machine) a step of 4 prompts × K 8 took 13-15 ms on 2-summand problems, 30 ms on 2-4
# summands; 8 prompts took 64 ms; in Chromium a step is ~10-15× slower (bench/grpo_widget.py).
ROLLOUTS, MAX_PROMPTS = 32, 4

# The knobs a page gets when its directive sets none (build.py reads this literal; tests check that K, temperature,
# beta, loss_type and lr are 04_rlvr.WIDGET's).
DEFAULT_KNOBS = {"K": 8, "temperature": 1.0, "beta": 0.04, "loss_type": "dapo", "lr": 0.0001, "steps": 100,
                 "problems": "few", "n": 2, "problem": "79+19=?"}

# The problem sets, measured natively with the widget checkpoint at temperature 1 (04_rlvr.generate_and_score,
# K 8, 40 problems each, seed 0; 1 BLAS thread). Pass rate / share of groups with zero spread:
#   2 summands 0.46 / 0.03, 3: 0.14 / 0.40, 4: 0.05 / 0.70, 5: 0.03 / 0.82, 6: 0.00 / 1.00, 7: 0.00 / 1.00
#   (7: every group all wrong: "114 140 12  19143."); 2 single digits 0.27, x+0 0.26, 0+x 0.32, tens+tens 0.51.
# Nothing is trivially right at temperature 1: over all 10,000 problems a+b (8 samples each) the pass rate is 0.43
# and the 40 best, re-measured with 128 samples, are right 58-81% of the time (72+31 0.81, 52+41 0.80, 73+42 0.80,
# 43+73 0.78). At temperature 0.1 the same model answers 2-summand problems right 97-100% of the time: sampling at 1
# is what makes it wrong, and GRPO's job here is to sharpen it.
# GRPO runs (4 prompts × K 8, lr 1e-4, β 0.04, dapo; mean reward over steps 1-10 -> 51-60; KL at the end):
#   fresh problems of 2-4 summands (04_rlvr.WIDGET.summands)  0.22 -> 0.16 over 100 steps, KL 0.10; 8 prompts
#                     (the stage's batch then), 150 steps: 0.23 -> 0.20: a short run on fresh problems barely moves;
#   fresh 2-summand problems   0.42 -> 0.38 over 100 steps (8 prompts, 200 steps, lr 3e-5 / 1e-4 / 3e-4: no rise);
#   4 fixed problems ("few")   0.50 -> 0.88 (lr 1e-4), 0.47 -> 0.93 (lr 3e-4); 2 prompts a step: 0.51 -> 0.84;
#   one problem, 16 rollouts   23+45 0.48 -> 0.88 in 60 steps: GRPO works; it learns problems, not yet addition;
#   the 4 easiest ("easiest")  0.74 -> 0.89 at 40 -> 0.92 at 100, zero-spread groups 0.07 -> 0.4-0.6 (lr 1e-4);
#                     lr 3e-4: 0.55 -> 0.90 at 40, zero-spread 0.5-0.75 (almost all of them all right): trivial;
#   7 summands ("n7")          reward 0 at every step, every group all wrong: impossible;
#   temperature 0.1 / 0.3      the 4 easiest: reward 1.0, zero-spread 1.0 / 0.97-1.0; the 4 fixed: 0.97-1.0,
#                     zero-spread 0.88-0.97; the rollouts of a group are character for character the same;
#   K = 1                      every advantage exactly 0; only the β·KL term, itself 0 while the policy is the
#                     reference, so the gradient is 0 and the policy never moves;
#   lr 1e-3 (×10)              2 summands, 8 prompts: reward 0.15 -> 0.00, KL 1.8 -> 4.0 nats per token: collapse.
PROBLEM_SETS = {
    "few": {"label": "4 fixed problems of 2 summands",
            "note": "The same four problems again and again: the policy can learn them in a short run.",
            "fixed": ((13, 67), (22, 58), (96, 70), (26, 20))},
    "mixed": {"label": f"fresh problems of {CFG.summands[0]} to {CFG.summands[1]} summands",
              "note": "A new problem every time, as the lesson's run trains: a short run here barely moves the "
                      "reward (the lesson's run takes thousands of rollouts).",
              "summands": tuple(CFG.summands)},
    "n2": {"label": "fresh problems of 2 summands", "note": "A new two-number sum every time.",
           "summands": (2, 2)},
    "n7": {"label": "fresh problems of 7 summands (too hard)",
           "note": "Longer than any the model was trained on: it gets none right.", "summands": (7, 7)},
    "easiest": {"label": "the 4 easiest problems (nearly trivial)",
                "note": "The four sums this model gets right most often (about 80% at temperature 1; none is "
                        "right every time), so training soon makes them trivial.",
                "fixed": ((72, 31), (52, 41), (73, 42), (43, 73))},
}

# The group's default problem, 79+19=?: at seed 0, 5 of 8 right, one wrong reply a token longer ("108."). In this
# task a reply's length is nearly fixed by the problem (2 summands: 4-5 tokens; 3: 7-8), so the loss types differ
# little on one group: grpo's per-token weight is 1/(K × length), bnpo's and dapo's 1/(all tokens), dr_grpo's
# 1/(K × max_completion_length) (04_rlvr.reduction_weights).
# Diagnosis thresholds, from the runs above (means over the last DIAG_WINDOW steps):
ZS_BROKEN = 0.9                 # zero-spread groups at least this share: almost no step teaches anything
ZS_WARN = 0.4                   # this share teaches nothing: worth naming (the trained "few" passes it near 100 steps)
ZS_SPREAD = 0.6                 # ... and, with no single cause, worth a general warning
ENTROPY_LOW = 0.1               # nats per token: sampling nearly greedy (temperature 0.1: 0.002; the untrained model at
                                # 1: 0.3-0.9). Training sharpens the policy too (the trained "few" at 1: 0.04-0.1), so
                                # the cause is named "temperature" only when the knob is below the default and the
                                # zero-spread groups are identical replies
REWARD_NONE = 0.02              # "all wrong": mean reward at most this ...
REWARD_ALL = 0.85               # ... "all right": mean reward at least this
KL_BROKEN = 1.0                 # nats per token from the reference: the policy has left it (lr 1e-3: 1.8-4)
# Divergence: on-policy the loss is -Σ w·A + β·Σ w·k3 with Σ w ≤ 1 and |A| ≤ (K-1)/√K < 4 for K ≤ 16, so a batch
# loss above DIVERGE_ABOVE needs β·KL of several nats per token, or is not a number: the run has blown up.
DIVERGE_ABOVE = 10.0

_SESSIONS = Sessions(MAX_SESSIONS)
_cache = {}
_PROBLEM = re.compile(r"^\s*(\d+(?:\s*\+\s*\d+)*)\s*=\s*\??\s*$")


# ----------------------------------------------------------------------------- the model, loaded once

def _base(path):
    if not isinstance(path, str) or not path.endswith(".npz"):
        raise ValueError(f"the CoT model is a .npz checkpoint file, got {path!r}")
    if path not in _cache:
        config, _, ref, _ = checkpoint.load(path)
        _cache[path] = {"config": config, "ref": ref}
    return _cache[path]


# ----------------------------------------------------------------------------- knobs

def info():
    """Everything the UI needs: ladders, ranges, defaults, problem sets, sizes; the UI types none of them."""
    return {"defaults": DEFAULT_KNOBS, "k_options": list(K_OPTIONS), "temperature_ladder": list(TEMPERATURE_LADDER),
            "beta_ladder": list(BETA_LADDER), "lr_ladder": list(LR_LADDER), "loss_types": list(rl.LOSS_TYPES),
            "steps_range": list(STEPS_RANGE), "steps_step": STEPS_STEP, "summands_range": list(SUMMANDS_RANGE),
            "max_summand": MAX_SUMMAND, "max_chunk": MAX_CHUNK, "checkpoint": CHECKPOINT, "smooth": WINDOW,
            "problem_sets": [{"value": k, "label": v["label"], "note": v["note"]} for k, v in PROBLEM_SETS.items()],
            "lesson": {"K": CFG.num_generations, "temperature": CFG.temperature, "beta": CFG.beta,
                       "loss_type": CFG.loss_type, "lr": CFG.train.lr, "batch_size": CFG.train.batch_size,
                       "summands": list(CFG.summands)},
            "max_completion_length": CFG.max_completion_length, "rollouts": ROLLOUTS, "max_prompts": MAX_PROMPTS,
            "prompts_per_step": {str(k): prompts_per_step(k) for k in K_OPTIONS},
            "diverge_above": DIVERGE_ABOVE, "min_steps": MIN_STEPS}


def prompts_per_step(K):
    return max(1, min(MAX_PROMPTS, ROLLOUTS // K))


def parse_problem(text):
    """"12+5+30=?" -> [12, 5, 30]; anything else raises a ValueError that says what a problem looks like."""
    if not isinstance(text, str):
        raise ValueError(f"the problem must be text like “12+5+30=?”, got {text!r}")
    m = _PROBLEM.match(text)
    if not m:
        raise ValueError(f"“{text.strip()}” is not a sum the model knows: write whole numbers joined by +, then =?, "
                         f"like “12+5+30=?”")
    summands = [int(x) for x in re.split(r"\s*\+\s*", m.group(1).strip())]
    lo, hi = SUMMANDS_RANGE
    if not lo <= len(summands) <= hi:
        raise ValueError(f"the problem has {len(summands)} number{'s' * (len(summands) != 1)}: give {lo} to {hi} "
                         f"summands (the model was trained on 2 to 5)")
    big = [x for x in summands if x > MAX_SUMMAND]
    if big:
        raise ValueError(f"{big[0]} is too large: every summand is 0 to {MAX_SUMMAND}, as in the model's training")
    return summands


def _group_knobs(K, temperature, beta):
    return (choice("K", K, K_OPTIONS),
            number("temperature", temperature, TEMPERATURE_LADDER[0], TEMPERATURE_LADDER[-1]),
            number("beta", beta, BETA_LADDER[0], BETA_LADDER[-1]))


def _config(K, temperature, beta, loss_type=CFG.loss_type, lr=CFG.train.lr, steps=CFG.train.steps, seed=0):
    return replace(CFG, num_generations=K, temperature=temperature, beta=beta, loss_type=loss_type, seed=seed,
                   train=replace(CFG.train, lr=lr, steps=steps, seed=seed, batch_size=prompts_per_step(K)))


# ----------------------------------------------------------------------------- one group, looked at closely

def group(path=CHECKPOINT, problem="", n=DEFAULT_KNOBS["n"], K=DEFAULT_KNOBS["K"],
          temperature=DEFAULT_KNOBS["temperature"], beta=DEFAULT_KNOBS["beta"], seed=0, session=None):
    """K rollouts of one problem from the current policy (the training session's, if given, else the checkpoint's),
    scored by the verifier, with group advantages and, for every loss type, the weight of each reply's tokens."""
    K, temperature, beta = _group_knobs(K, temperature, beta)
    seed = number("seed", seed, 0, 2**31 - 1, integer=True)
    if problem is None or (isinstance(problem, str) and not problem.strip()):
        n = number("n", n, *SUMMANDS_RANGE, integer=True)
        summands, typed = COT.problems(n, 1, random.Random(f"grpo-widget-group-{n}-{seed}"))[0], False
    else:
        summands, typed = parse_problem(problem), True
    b = _base(path)
    config, ref = b["config"], b["ref"]
    policy, step_ = ref, 0
    if session is not None:
        run = _SESSIONS.get(session)
        policy, step_ = run.state.params, run.state.step
    cfg = _config(K, temperature, beta)
    batch = rl.generate_and_score(policy, ref, config, cfg, [summands], np.random.default_rng(seed))
    mask = batch.completion_mask[:, 1:]                                  # (K, T-1) as the loss reads it
    tokens = mask.sum(axis=1)
    if policy is ref:
        kl = np.zeros(K)
    else:
        logp, _ = token_logps(policy, batch.input_ids[:, :-1], batch.input_ids[:, 1:], config, temperature)
        kl = (rl.k3_kl(logp, batch.ref_logps) * mask).sum(axis=1) / np.maximum(tokens, 1)
    ended = batch.ended.tolist()
    weights = {}
    for lt in rl.LOSS_TYPES:
        w = rl.reduction_weights(mask.astype(np.float64), lt, cfg.max_completion_length)     # (K, T-1)
        total = w.sum(axis=1)
        weights[lt] = {"per_token": [float(t / max(n_, 1)) for t, n_ in zip(total, tokens)],
                       "total": total.tolist(), "sum": float(total.sum()),
                       "push": (total * batch.advantages).tolist()}
    peak = max(max(v["per_token"]) for v in weights.values()) or 1.0
    for v in weights.values():                                       # bar lengths, comparable across loss types
        v["bar"] = [x / peak for x in v["per_token"]]
    r = batch.rewards
    rows = [{"reply": batch.texts[i], "reward": float(r[i]), "tokens": int(tokens[i]), "ended": ended[i],
             "advantage": float(batch.advantages[i]), "kl": float(kl[i]), "beta_kl": float(beta * kl[i])}
            for i in range(K)]
    p = float(r.mean())
    identical = len(set(batch.texts)) == 1
    return {"question": COT.question(summands), "summands": summands, "typed": typed, "answer": sum(summands),
            "trace": COT.cot_answer(summands), "K": K, "temperature": temperature, "beta": beta, "seed": seed,
            "step": step_, "from": "policy" if session is not None else "checkpoint", "rows": rows,
            "weights": weights, "pass_rate": p, "zero_spread": bool(r.std() == 0), "identical": identical,
            "if_equal": p ** K + (1 - p) ** K, "max_completion_length": cfg.max_completion_length,
            "explain": _explain_group(K, r, identical, temperature)}


def _explain_group(K, r, identical, temperature):
    """One sentence on what this group teaches."""
    right = int(r.sum())
    if K == 1:
        return ("A group of one: its mean is its own reward, so its advantage is 0 whatever the verifier said. "
                "This group teaches nothing.")
    if r.std() == 0:
        why = (f"all {K} replies are the same text (temperature {temperature:g} samples almost greedily)"
               if identical else f"all {K} replies are {'right' if right else 'wrong'}")
        return (f"Zero spread: {why}, so every reward equals the group's mean and every advantage is 0. "
                f"This group teaches nothing.")
    return (f"{right} of {K} replies are right. Advantage = (reward − group mean) ÷ group std: the right ones are "
            f"pushed up, the wrong ones down.")


# ----------------------------------------------------------------------------- a training session

def _problem_stream(name, seed):
    spec = PROBLEM_SETS[name]
    rng = random.Random(f"grpo-widget-{name}-{seed}")
    while True:
        if "fixed" in spec:
            yield list(rng.choice(spec["fixed"]))
        else:
            yield COT.problems(rng.randint(*spec["summands"]), 1, rng)[0]


def _measured(loss_fn, K):
    """04_rlvr's loss, plus what the diagnosis reads from each batch: identical groups, all-right / all-wrong
    groups, the largest |advantage|."""
    def wrapped(params, batch, config):
        loss, grads, metrics = loss_fn(params, batch, config)
        g = batch.rewards.reshape(-1, K)
        texts = [batch.texts[i:i + K] for i in range(0, len(batch.texts), K)]
        metrics.update({"identical": float(np.mean([len(set(t)) == 1 for t in texts])),
                        "all_right": float(np.mean(g.min(axis=1) == 1)),
                        "all_wrong": float(np.mean(g.max(axis=1) == 0)),
                        "max_abs_advantage": float(np.abs(batch.advantages).max())})
        return loss, grads, metrics
    return wrapped


def start(path=CHECKPOINT, K=DEFAULT_KNOBS["K"], temperature=DEFAULT_KNOBS["temperature"],
          beta=DEFAULT_KNOBS["beta"], loss_type=DEFAULT_KNOBS["loss_type"], lr=DEFAULT_KNOBS["lr"],
          steps=DEFAULT_KNOBS["steps"], problems=DEFAULT_KNOBS["problems"], seed=0):
    """A session: the policy and the frozen reference both the CoT model at `path`, GRPO (04_rlvr.grpo_loss_fn) on
    fresh rollouts of `problems` each step, prompts_per_step(K) prompts × K rollouts."""
    K, temperature, beta = _group_knobs(K, temperature, beta)
    loss_type = choice("loss_type", loss_type, rl.LOSS_TYPES)
    lr = number("lr", lr, LR_LADDER[0], LR_LADDER[-1])
    steps = number("steps", steps, *STEPS_RANGE, integer=True)
    problems = choice("problems", problems, tuple(PROBLEM_SETS))
    seed = number("seed", seed, 0, 2**31 - 1, integer=True)
    b = _base(path)
    config, ref = b["config"], b["ref"]
    cfg = _config(K, temperature, beta, loss_type, lr, steps, seed)
    policy = {k: v.copy() for k, v in ref.items()}
    stream, rng = _problem_stream(problems, seed), np.random.default_rng(seed)

    def next_batch():
        return rl.generate_and_score(policy, ref, config, cfg, [next(stream) for _ in range(cfg.train.batch_size)],
                                     rng)
    run = LiveRun(TrainState(policy), cfg.train, config, next_batch, _measured(rl.grpo_loss_fn(cfg), K),
                  diverge_above=DIVERGE_ABOVE)
    run.grpo = {"cfg": cfg, "problems": problems, "metrics": []}
    session = _SESSIONS.add(run)
    return {"session": session, "step": 0, "steps": steps, "status": "ready", "K": K, "temperature": temperature,
            "beta": beta, "loss_type": loss_type, "lr": lr, "problems": problems, "seed": seed,
            "prompts_per_step": cfg.train.batch_size, "rollouts_per_step": cfg.train.batch_size * K,
            "model": config.to_dict(), "params": int(sum(int(np.prod(s)) for s in param_shapes(config).values()))}


METRICS = ("reward", "kl", "frac_reward_zero_std", "frac_reward_zero_std_if_equal", "entropy",
           "completions/mean_length", "identical", "all_right", "all_wrong")
SMOOTHED = ("reward", "kl", "frac_reward_zero_std", "frac_reward_zero_std_if_equal")


def step(session, n=5):
    """Up to n more GRPO steps (never past the session's `steps`): every step's metrics, their running means over
    the last WINDOW steps (what the charts draw), status, and the diagnosis."""
    run = _SESSIONS.get(session)
    n = number("n", n, 1, MAX_CHUNK, integer=True)
    history = run.advance(n)
    every = run.grpo["metrics"]
    smooth = {k: [] for k in SMOOTHED}
    for m in history.metrics:
        if all(k in m for k in METRICS):
            every.append(m)
            for k in SMOOTHED:
                smooth[k].append(float(np.mean([x[k] for x in every[-WINDOW:]])))
    if history.diverged and run.explanation is None:
        run.explanation = _explain_divergence(history.diverged, run.hp.lr)
    return {"session": session, "step": run.state.step, "steps": run.hp.steps,
            "first_step": run.state.step - len(history.metrics) + 1, "losses": history.losses,
            "metrics": {k: [m.get(k) for m in history.metrics] for k in METRICS}, "smooth": smooth,
            "status": run.status, "diverged": run.explanation,
            "diagnosis": diagnose(run.grpo["cfg"], run.grpo["problems"], every)}


def close(session):
    """Forget a session (Reset)."""
    return _SESSIONS.close(session)


def _explain_divergence(m, lr):
    loss = m["loss"]
    what = (f"At step {m['step']} the batch loss became {loss:.3g}" if math.isfinite(loss)
            else f"At step {m['step']} the loss became {loss} (not a number)")
    return {"step": m["step"], "loss": loss, "lr": lr,
            "what": what + ": GRPO's loss stays within a few units while the policy is near the reference, so the "
                           "policy has moved very far from it. Training stopped.",
            "why": f"Adam moves every weight by about the learning rate each step; at lr = {lr:g} the steps overshoot.",
            "try": f"Lower the learning rate: {CFG.train.lr:g} (the default) trains steadily."}


# ----------------------------------------------------------------------------- what went wrong, measured

def diagnose(cfg, problems, metrics):
    """From the measured steps: does this configuration learn? A list of symptoms, each naming its cause
    (kind: k1 | temperature | impossible | trivial | lr) with what was measured, why it stalls learning and what to
    try; status ok | warn | broken."""
    step_ = len(metrics)
    if step_ < MIN_STEPS:
        return {"status": "ok", "symptoms": [], "step": step_}
    recent = metrics[-DIAG_WINDOW:]
    mean = {k: float(np.mean([m[k] for m in recent])) for k in METRICS + ("max_abs_advantage",)}
    first = float(np.mean([m["reward"] for m in metrics[:DIAG_WINDOW]]))
    K, T = cfg.num_generations, cfg.temperature
    zs, pct = mean["frac_reward_zero_std"], lambda x: f"{100 * x:.0f}%"
    label = PROBLEM_SETS[problems]["label"]
    out = []
    if K == 1:
        out.append({"kind": "k1", "what": (
            f"K = 1: each group is a single rollout. Over the last {len(recent)} steps the largest advantage was "
            f"{mean['max_abs_advantage']:.3g} and {pct(zs)} of the groups had zero spread, while the verifier "
            f"marked {pct(mean['reward'])} of the replies right."),
            "why": ("The advantage is a reward minus its group's mean; in a group of one the mean is the reward "
                    "itself, so every advantage is 0 and the policy-gradient term vanishes. What is left is β × KL, "
                    "which pulls only towards the reference the policy already is: no gradient at all."),
            "try": f"Give each prompt several rollouts: K = {CFG.num_generations} (the default)."})
    elif mean["kl"] >= KL_BROKEN and mean["reward"] < first:
        out.append({"kind": "lr", "what": (
            f"The policy has moved {mean['kl']:.2f} nats per token from the reference and the mean reward fell "
            f"from {first:.2f} (first {min(DIAG_WINDOW, step_)} steps) to {mean['reward']:.2f}."),
            "why": (f"At lr = {cfg.train.lr:g} each update moves the weights {cfg.train.lr / CFG.train.lr:g}× as "
                    f"far as the default: the steps overshoot what one batch of {cfg.train.batch_size * K} rollouts "
                    f"can tell, and the replies break."),
            "try": f"Lower the learning rate to {CFG.train.lr:g}."})
    elif (T < CFG.temperature and zs >= ZS_WARN and mean["identical"] >= zs - 0.05
          and mean["entropy"] <= ENTROPY_LOW):
        out.append({"kind": "temperature", "what": (
            f"At temperature {T:g} the {K} rollouts of a group were identical, character for character, in "
            f"{pct(mean['identical'])} of the groups (entropy {mean['entropy']:.3f} nats per token), so "
            f"{pct(zs)} of the groups had zero spread, whether right ({pct(mean['all_right'])} of the groups) or "
            f"wrong ({pct(mean['all_wrong'])})."),
            "why": ("Dividing the logits by a small temperature makes sampling nearly greedy: every rollout is the "
                    "same reply with the same reward, the group's std is 0, every advantage is 0, and there is no "
                    "gradient. GRPO learns only from differences within a group."),
            "try": f"Raise the temperature to {CFG.temperature:g} (the default): the rollouts then differ."})
    elif zs >= ZS_WARN and mean["all_wrong"] >= mean["all_right"] and mean["reward"] <= REWARD_NONE:
        out.append({"kind": "impossible", "what": (
            f"On {label} the verifier marked {pct(mean['reward'])} of the replies right over the last "
            f"{len(recent)} steps (first steps: {pct(first)}): {pct(mean['all_wrong'])} of the groups were all "
            f"wrong, so {pct(zs)} had zero spread."),
            "why": ("When every rollout of a group is wrong, every reward is 0, equal to the group's mean: every "
                    "advantage is 0 and nothing is learned. RL with a verifier can only reinforce what the policy "
                    "sometimes gets right: it needs a success to start from."),
            "try": "Choose problems the model sometimes solves (fewer summands), or sample more rollouts (K)."})
    elif zs >= ZS_WARN and mean["all_right"] > mean["all_wrong"] and mean["reward"] >= REWARD_ALL:
        out.append({"kind": "trivial", "what": (
            f"On {label} the verifier marked {pct(mean['reward'])} of the replies right over the last "
            f"{len(recent)} steps (first steps: {pct(first)}): {pct(mean['all_right'])} of the groups were all "
            f"right, so {pct(zs)} had zero spread (p^K + (1−p)^K at this pass rate: "
            f"{pct(mean['frac_reward_zero_std_if_equal'])})."),
            "why": ("When every rollout of a group is right, every advantage is 0: a problem the policy always "
                    "solves teaches nothing more, and each step learns only from the few groups that still "
                    "disagree."),
            "try": "Move on to harder problems (more summands): RL needs problems the policy solves sometimes."})
    elif zs >= ZS_SPREAD:
        out.append({"kind": "spread", "what": (
            f"{pct(zs)} of the groups had zero spread over the last {len(recent)} steps ({pct(mean['all_right'])} "
            f"all right, {pct(mean['all_wrong'])} all wrong; reward {mean['reward']:.2f})."),
            "why": "A group whose rewards are all equal gets zero advantage: most rollouts teach nothing.",
            "try": "Choose problems of a difficulty the model solves about half the time, or raise K."})
    broken = zs >= ZS_BROKEN or any(s["kind"] in ("k1", "lr") for s in out)
    return {"status": "broken" if out and broken else ("warn" if out else "ok"), "symptoms": out, "step": step_,
            "window": {k: mean[k] for k in ("reward", "kl", "frac_reward_zero_std", "identical", "all_right",
                                            "all_wrong", "entropy")}, "first_reward": first}
