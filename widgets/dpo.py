"""Watch the implicit reward margin climb, and feel what β controls: DPO, live, on the small SFT model.

The widget runs gpt_mini/03_dpo.py's own DPO (`dpo_loss_fn(beta)`, `batches`, `reference_logps`, `pairs`) with
the shared loop (`train.train` through `_live.LiveRun`): the policy and a frozen reference both start from the
shipped small SFT checkpoint (checkpoints/01_sft_widget.npz, 03_dpo.WIDGET's `init`). The preference pairs are
built once, in the browser, by 03_dpo.pairs itself with a small `N_PAIRS` (it samples the reference's own answers
for the rejected side), and the reference's log-probs of every pair once, with them.

JSON in, JSON out, no DOM. Training state lives here, in `_SESSIONS`, keyed by the id `start` returns:
    info()                               knob ladders and ranges, defaults, model size, pair counts, thresholds
    start(path, beta, lr, steps, seed)   a session (pairs and reference built once per checkpoint path) + the
                                         reference's replies to the held-out prompts ("before")
    step(session, n)                     n more steps: every step's TRL metrics, status (training | done | diverged)
    evaluate(session)                    greedy replies to the held-out prompts, the drift (sampled KL) and the
                                         diagnosis: what went wrong, measured, in words
    close(session)                       forget a session (Reset)
A configuration that breaks the model (β near zero, a rate too high, too many steps), like one that diverges,
comes back explained in words (`diagnosis`, `diverged`), never as garbage or an exception.
"""

import math
from dataclasses import replace

import numpy as np

from gpt_mini import checkpoint, stage, world
from gpt_mini.model import param_shapes
from gpt_mini.train import TrainState

from ._live import LiveRun, Sessions, number

__all__ = ["info", "start", "step", "evaluate", "close"]

_stage = stage("03_dpo")
CFG = _stage.WIDGET
CHECKPOINT = "checkpoints/" + CFG.init      # relative to the site root (browser) or the repository (natively)

BETA_LADDER = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
LR_LADDER = (2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 8e-5, 1e-4, 2e-4, 3e-4, 1e-3)
STEPS_RANGE = (25, 600)
STEPS_STEP = 25
MAX_CHUNK = 25
MAX_SESSIONS = 3

# The knobs a page gets when its directive sets none (build.py reads this literal; tests check that beta, lr and
# steps are 03_dpo.WIDGET's).
DEFAULT_KNOBS = {"beta": 0.1, "lr": 2e-05, "steps": 150}

# The training pairs: 03_dpo.pairs(WIDGET with n_pairs=N_PAIRS), built in the browser at the first start. Natively
# (1 BLAS thread, busy machine) 120 pairs took 0.14 s and 1200 took 1.1 s; with 120 the held-out refusals came
# and then went again (0.38 -> 0.56 at step 25 -> 0.44 at 150: the few pairs are over-learned), with 1200 they held
# (0.62 at 150). N_PAIRS is the compromise that keeps the first start short in wasm (bench/dpo_widget.py).
N_PAIRS = 240
# The held-out prompts: the first distinct ones of 03_dpo's held-out pairs (people no stage ever mentions, and
# facts and sums drawn apart from training): HELD_UNKNOWN unknown people, HELD_OTHER known facts and sums.
HELD_UNKNOWN, HELD_OTHER = 8, 4
HELD_DRAW = 60                 # how many held-out pairs to draw them from
KL_SAMPLES = 2                 # sampled replies per held-out prompt for the drift (03_dpo.drift)
EVAL_EVERY = 25                # steps between evaluations while training (and once at the end)
WINDOW = 10                    # steps averaged for the diagnosis' training measures and for the drawn curves

# Divergence: DPO's loss starts at ln 2 (the policy is the reference: every margin is 0) and falls as margins grow;
# a batch loss of DIVERGE_ABOVE means the policy prefers the rejected answers by ~(DIVERGE_ABOVE / β) nats more than
# the reference did: an overshoot, not descent. None of the runs measured below came near it (below).
DIVERGE_ABOVE = math.log(2) + 3.0

# The breaking configurations, measured natively (widgets/dpo.py itself: start + step + evaluate, seed 0, 1 BLAS
# thread; python /tmp script over the configurations below, figures at the steps named). "others" is the share of
# the held slice's known-fact and sum prompts answered exactly; KL is 03_dpo.drift on the held slice (nats).
#   default (β 0.1, lr 2e-5, 150 steps)  margin 0.07 / 0.28 / 0.48 / 0.55 at 25 / 50 / 100 / 150; unknown people
#                     refused 38% (SFT) -> 50% at 25 -> 62% from 75; KL 0.2 / 0.6 / 1.3 / 1.8; facts kept; no flag
#   β 1               margin 0.44 / 1.38 / 2.1 at 25 / 50 / 150, KL <= 0.3: the policy barely moves (refusals 38%)
#   β 0.01            margin 0.03 / 0.05 / 0.07 at 50 / 100 / 150 (log-ratio 3-7 nats), loss 0.67; KL 4.6 at 150
#   β 0.001           margin 0.003 / 0.005 / 0.007 at 50 / 100 / 150 (log-ratio 3 / 5 / 7 nats), loss 0.690-0.692
#                     throughout; KL 0.8 / 3.1 / 4.8 / 6.5 at 50 / 100 / 150 / 300; "i do do not know.", facts 2/4 ->
#                     1/4 from 150; chosen log-probs fall below the reference's at 250
#   lr 8e-5 (×4)      KL 2.8 / 3.7 / 4.6 at 50 / 125 / 150, facts 0/4 at 125 ("es in hai+7=104.")
#   lr 3e-4 (×15)     KL 5.8 at 25, 12 at 75, 16 at 100; replies garbled ("io ni+0y .", "i+8=18."); chosen
#                     log-probs below the reference's from 75
#   600 steps         margin 0.76 / 1.0 / 1.15 at 350 / 450 / 600; KL 3.7 / 4.5 / 6.7; chosen reward < 0 at 600
#   The largest batch loss of any of these runs was 0.88 nats.
# Thresholds, from those measurements:
BETA_MARGIN = 0.05             # reward margin (β × log-ratio margin, nats) still below this ...
BETA_LOGRATIO = 1.5            # ... while the log-ratio margin itself is past this: β too small to constrain
KL_BROKEN = 4.0                # drift past this many nats: the replies have moved far from the reference's
OTHERS_DROP = 0.3              # the known-fact / sum answers' accuracy fell this much below the reference's
MIN_STEPS = 50                 # before this, a symptom can still be noise
HOT = 2.0                      # a rate this many times the default's is "too fast"; a broken run below it "too long"

_SESSIONS = Sessions(MAX_SESSIONS)
_cache = {}


# ----------------------------------------------------------------------------- data, built once per checkpoint

def _base(path):
    """(config, reference params, training pairs, their reference log-probs, the held slice, its "before")."""
    if path not in _cache:
        config, _, ref, _ = checkpoint.load(path)
        if config.block_size < 64:
            raise ValueError(f"the widget's SFT model has a 64-token context, {path} has {config.block_size}")
        items = _stage.pairs(replace(CFG, n_pairs=N_PAIRS), ref, config)
        ref_c, ref_r = _stage.reference_logps(ref, config, items)
        held = _held(ref, config)
        _cache[path] = {"config": config, "ref": ref, "items": items, "ref_c": ref_c, "ref_r": ref_r,
                        "held": held, "before": _replies(ref, config, held)}
    return _cache[path]


def _held(ref, config):
    """The first distinct held-out prompts of 03_dpo's held-out pairs (eval_pairs' own draw, fewer of them)."""
    drawn = _stage.pairs(replace(CFG, n_pairs=HELD_DRAW), ref, config, unknown=world.HELD_OUT_UNKNOWN,
                         held_out=True)
    seen, unknown, other = set(), [], []
    for item in drawn:
        prompt = item[0][-1][1]
        if prompt in seen:
            continue
        seen.add(prompt)
        (unknown if item[3] == "unknown" else other).append(item)
    return unknown[:HELD_UNKNOWN] + other[:HELD_OTHER]


def _replies(params, config, held):
    """03_dpo.behaviour's greedy replies (01_sft.respond), every one of them, and the shares it reports."""
    replies = _stage.SFT.respond(params, config, [item[0] for item in held])
    rows = [{"prompt": item[0][-1][1], "kind": item[3], "preferred": item[1], "reply": r["text"],
             "ended": bool(r["ended"]), "correct": r["text"] == item[1]} for r, item in zip(replies, held)]
    unknown = [r["correct"] for r in rows if r["kind"] == "unknown"]
    other = [r["correct"] for r in rows if r["kind"] != "unknown"]
    return {"rows": rows, "refuses_unknown": float(np.mean(unknown)), "answers_known": float(np.mean(other)),
            "n_unknown": len(unknown), "n_known": len(other)}


# ----------------------------------------------------------------------------- knobs

def info():
    """Everything the UI needs before training: ladders, ranges, defaults, sizes; the UI types none of them."""
    return {"defaults": DEFAULT_KNOBS, "beta_ladder": list(BETA_LADDER), "lr_ladder": list(LR_LADDER),
            "steps_range": list(STEPS_RANGE), "steps_step": STEPS_STEP, "max_chunk": MAX_CHUNK,
            "checkpoint": CHECKPOINT, "lesson_beta": CFG.beta, "lesson_lr": CFG.train.lr,
            "lesson_steps": CFG.train.steps, "batch_size": CFG.train.batch_size, "n_pairs": N_PAIRS,
            "held_unknown": HELD_UNKNOWN, "held_other": HELD_OTHER, "eval_every": EVAL_EVERY,
            "diverge_above": DIVERGE_ABOVE, "ln2": math.log(2), "kl_broken": KL_BROKEN,
            "refusal": world.REFUSAL, "smooth": WINDOW}


def _knobs(beta, lr, steps, seed):
    return (number("beta", beta, BETA_LADDER[0], BETA_LADDER[-1]), number("lr", lr, LR_LADDER[0], LR_LADDER[-1]),
            number("steps", steps, *STEPS_RANGE, integer=True), number("seed", seed, 0, 2**31 - 1, integer=True))


# ----------------------------------------------------------------------------- a training session

def start(path=CHECKPOINT, beta=DEFAULT_KNOBS["beta"], lr=DEFAULT_KNOBS["lr"], steps=DEFAULT_KNOBS["steps"],
          seed=0):
    """A session: the policy and the frozen reference both the SFT model at `path` (the browser worker's copy of
    CHECKPOINT), 03_dpo's batches of the pairs, `dpo_loss_fn(beta)`. Returns the id and the reference's replies."""
    beta, lr, steps, seed = _knobs(beta, lr, steps, seed)
    if not isinstance(path, str) or not path.endswith(".npz"):
        raise ValueError(f"the SFT model is a .npz checkpoint file, got {path!r}")
    b = _base(path)
    config = b["config"]
    hp = replace(CFG.train, lr=lr, steps=steps, seed=seed)
    next_batch = _stage.batches(b["items"], b["ref_c"], b["ref_r"], hp.batch_size, np.random.default_rng(seed))
    run = LiveRun(TrainState({k: v.copy() for k, v in b["ref"].items()}), hp, config, next_batch,
                  _stage.dpo_loss_fn(beta), diverge_above=DIVERGE_ABOVE)
    run.dpo = {"beta": beta, "base": b, "recent": [], "evals": []}
    session = _SESSIONS.add(run)
    kinds = {k: sum(i[3] == k for i in b["items"]) for k in ("unknown", "known", "near", "sum")}
    return {"session": session, "step": 0, "steps": steps, "beta": beta, "lr": lr, "seed": seed, "status": "ready",
            "model": config.to_dict(), "params": int(sum(int(np.prod(s)) for s in param_shapes(config).values())),
            "pairs": len(b["items"]), "kinds": kinds, "before": b["before"],
            "examples": [{"prompt": i[0][-1][1], "chosen": i[1], "rejected": i[2], "kind": i[3]}
                         for i in b["items"][:4]]}


METRICS = ("rewards/margins", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "logps/chosen",
           "logps/rejected")


def step(session, n=5):
    """Up to n more DPO steps (never past the session's `steps`); every step's loss and TRL metrics."""
    run = _SESSIONS.get(session)
    n = number("n", n, 1, MAX_CHUNK, integer=True)
    history = run.advance(n)
    ms = [m for m in history.metrics if all(k in m for k in METRICS)]
    run.dpo["recent"] = (run.dpo["recent"] + ms)[-WINDOW:]
    if history.diverged and run.explanation is None:
        run.explanation = _explain_divergence(history.diverged, run.hp.lr, run.dpo["beta"])
    return {"session": session, "step": run.state.step, "steps": run.hp.steps,
            "first_step": run.state.step - len(history.metrics) + 1, "losses": history.losses,
            "metrics": {k: [m.get(k) for m in history.metrics] for k in METRICS},
            "status": run.status, "diverged": run.explanation}


def close(session):
    """Forget a session (Reset)."""
    return _SESSIONS.close(session)


def _explain_divergence(m, lr, beta):
    loss = m["loss"]
    what = (f"At step {m['step']} the batch loss became {loss:.3g} nats" if math.isfinite(loss)
            else f"At step {m['step']} the loss became {loss} (not a number)")
    return {"step": m["step"], "loss": loss, "lr": lr,
            "what": what + f", far above ln 2 = {math.log(2):.3f}, where every DPO run starts: the policy now "
                    f"prefers the rejected answers by about {loss / beta:.0f} nats more than the reference does. "
                    f"Training stopped.",
            "why": f"Adam moves every weight by about the learning rate each step; at lr = {lr:g} the steps overshoot "
                   f"and throw away what SFT learned.",
            "try": f"Lower the learning rate: {CFG.train.lr:g} (this widget's default) trains steadily."}


# ----------------------------------------------------------------------------- what changed, measured

def evaluate(session):
    """Greedy replies to the held-out prompts, the drift from the reference, and the diagnosis."""
    run = _SESSIONS.get(session)
    if run.status == "diverged":
        raise ValueError("training diverged: there is no model to score (lower the learning rate and Train again)")
    b = run.dpo["base"]
    params, config = run.state.params, run.config
    after = _replies(params, config, b["held"])
    kl = _stage.drift(params, b["ref"], config, b["held"], samples=KL_SAMPLES) if run.state.step else 0.0
    recent = run.dpo["recent"]
    train = {k: float(np.mean([m[k] for m in recent])) for k in METRICS + ("loss",)} if recent else None
    ev = {"step": run.state.step, "kl": kl, "refuses_unknown": after["refuses_unknown"],
          "answers_known": after["answers_known"], "train": train}
    run.dpo["evals"].append(ev)
    return {"session": session, "step": run.state.step, "before": b["before"], "after": after, "kl": kl,
            "train": train, "evals": run.dpo["evals"],
            "diagnosis": diagnose(run.dpo["beta"], run.hp.lr, run.state.step, train, b["before"], after, kl,
                                  run.dpo["evals"])}


def diagnose(beta, lr, step, train, before, after, kl, evals=()):
    """What this configuration did, in words: a list of measured symptoms with why and what to try, or none."""
    out = []
    if step < MIN_STEPS or not train:
        return {"status": "ok", "symptoms": out, "step": step}
    margin = train["rewards/margins"]
    logratio = margin / beta                           # (π_c - π_r) - (ref_c - ref_r), nats: the policy's own move
    if margin < BETA_MARGIN and logratio > BETA_LOGRATIO:
        out.append({"kind": "beta", "what": (
            f"With β = {beta:g} the reward margin is only {margin:.3f} after {step} steps, and the loss is still "
            f"{train['loss']:.3f}, next to ln 2 = {math.log(2):.3f}; yet the policy's log-probability gap between "
            f"chosen and rejected answers has moved {logratio:.1f} nats from the reference's, and the drift is "
            f"{kl:.1f} nats."),
            "why": ("The implicit reward is β × the log-ratio to the reference. With β this small the loss sees "
                    "almost none of the policy's movement, so every pair keeps pulling with full weight and nothing "
                    "tells the policy it has gone far enough: DPO no longer holds it near the reference (Adam makes "
                    "the step size the same whatever β's scale)."),
            "try": f"Raise β back to {CFG.beta:g}: the margin then grows in reward units and the loss saturates."})
    drop = before["answers_known"] - after["answers_known"]
    if (kl > KL_BROKEN or drop >= OTHERS_DROP) and out:            # β too small: its drift, not a second cause
        out[0]["what"] += (f" The replies have gone with it: {after['answers_known']:.0%} of the held-out facts and "
                           f"sums are answered right (the SFT model: {before['answers_known']:.0%}).")
    elif kl > KL_BROKEN or drop >= OTHERS_DROP:
        fast = lr >= HOT * CFG.train.lr
        broken = [r for r in after["rows"] if r["kind"] != "unknown" and not r["correct"]]
        shown = "; ".join(f"“{r['prompt']}” → “{r['reply'] or '(nothing)'}”" for r in broken[:2])
        out.append({"kind": "lr" if fast else "long", "what": (
            f"The replies broke: {after['answers_known']:.0%} of the held-out facts and sums are answered right "
            f"(the SFT model: {before['answers_known']:.0%}), the drift from the reference is {kl:.1f} nats"
            + (f" ({shown})" if shown else "") + "."),
            "why": (f"At lr = {lr:g} each step moves the weights {lr / CFG.train.lr:g}× as far as the default: DPO's "
                    f"loss keeps falling as the rejected answers become ever less likely, and the large steps spill "
                    f"that push onto every answer sharing their tokens." if fast else
                    f"The loss never stops rewarding a wider margin: after {step} steps the policy has pushed the "
                    f"rejected answers so far down that answers sharing their tokens went with them."),
            "try": (f"Lower the learning rate to {CFG.train.lr:g}." if fast else
                    f"Train fewer steps ({CFG.train.steps}, the default), or raise β.")})
    if train["rewards/chosen"] < 0 < margin and len(evals) >= 2:
        out.append({"kind": "displacement", "what": (
            f"The chosen answers are now less likely than under the reference (reward {train['rewards/chosen']:.3f}, "
            f"log-prob {train['logps/chosen']:.2f}) while the margin is {margin:.3f} and still growing: both fall, "
            f"the rejected ones faster ({train['logps/rejected']:.2f})."),
            "why": ("DPO only scores the gap between chosen and rejected. Pushing the rejected answers down also "
                    "lowers the chosen ones that share their tokens (likelihood displacement); the margin rises "
                    "regardless."),
            "try": "Stop earlier, or raise β: a larger β saturates the loss sooner."})
    broken = any(s["kind"] in ("beta", "lr", "long") for s in out)
    return {"status": "broken" if broken else ("warn" if out else "ok"), "symptoms": out, "step": step}
