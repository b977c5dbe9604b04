"""Watch a char-level model concentrate probability on plausible next characters as it trains.

The widget trains `WIDGET` (gpt_mini/00_pretrain.py's small config: same model.py, same train_step, same data)
live, a few steps per call, and reads the model's next-character distribution for the reader's prompt after
every chunk. It can also load the committed snapshots of the full-size run and show theirs.

JSON in, JSON out, no DOM. Training state lives here, in `_SESSIONS`, keyed by the id `start` returns:
    start(lr, steps, seed, prompt) -> session + the untrained model's distribution
    step(session, n, prompt)       -> n more steps: their losses, status (training | done | diverged), distribution
    probs(session, prompt)         -> the current model's distribution for another prompt
    snapshots(path)                -> the full run's snapshot list, from its results file
    snapshot(path, prompt)         -> a full-run checkpoint's distribution and greedy continuation
A prompt the world's alphabet cannot spell, like a learning rate that blows training up, comes back as an
explained result (`ok: false` / `status: "diverged"`), never as an exception.
"""

import json
import math
from dataclasses import replace

import numpy as np

from gpt_mini import checkpoint, stage, world
from gpt_mini.data import get_batch, unigram_loss
from gpt_mini.model import GPT, param_shapes
from gpt_mini.sample import complete
from gpt_mini.train import TrainState, next_token_loss

from ._live import LiveRun, Sessions, distribution, number

__all__ = ["info", "start", "step", "probs", "close", "snapshots", "snapshot"]

_stage = stage("00_pretrain")
CFG = _stage.WIDGET

# The knobs a page gets when its directive sets none (build.py reads this literal).
DEFAULT_KNOBS = {"prompt": "ada lives in ", "lr": 0.003, "steps": 300, "seed": 0, "snapshot": None}

PROMPTS = ["ada lives in ", "the small dog ", "23+4=", "where does ada live?", "bob has a ", "the "]
LR_RANGE = (1e-4, 3.0)      # the slider; from ~0.5 up, training diverges (bench/widget_train.py, tests)
# The slider walks this log-spaced ladder of round values: exact numbers in links and tests, the default on it,
# and the diverging end (≳ 0.5) within reach.
LR_LADDER = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 2, 3)
STEPS_RANGE = (50, 1000)
MAX_CHUNK = 50              # one call never trains longer than this many steps (the UI asks for fewer)
TOP_K = 10
MAX_SESSIONS = 4            # a page holds one live session; old ones are dropped, so nothing grows unbounded

# Divergence, with Adam. Adam divides each gradient by its running RMS, so every weight moves by about the
# learning rate per step whatever the gradient's size, and clipping caps the gradient anyway: a too-large rate
# rarely produces inf/NaN, it throws the weights far past the minimum and the model becomes *confidently wrong*.
# So the test is on the loss, not only on finiteness: the untrained model predicts almost uniformly,
# loss ≈ ln V; a batch loss more than DIVERGE_MARGIN nats above that is worse than knowing nothing, which no
# descent step causes, only an overshoot. Measured on WIDGET (seeds 0-3, first 80 steps): lr ≤ 0.1 never
# crosses it; 0.2-0.5 sometimes (by seed), and even then the loss stalls near the unigram line; lr ≥ 0.7
# always does, within 6 steps (the loss then spikes to 5-100+ nats and never recovers below unigram).
DIVERGE_MARGIN = 1.0
# Between "learns" and "diverges" there is a band (lr ≈ 0.1-0.5 here) where the loss bounces around the unigram
# line for good: Adam's steps are too big to settle into anything finer than character frequencies; at the other
# end (lr ≈ 1e-4) they are too small to get past it in a few hundred steps. Neither is an explosion, so training
# goes on, but the reader is told once the recent mean loss is still above unigram.
STALL_AFTER, STALL_WINDOW = 100, 20

_SESSIONS = Sessions(MAX_SESSIONS)
_data = {}
_loaded = {}


# ----------------------------------------------------------------------------- data and the prompt

def _corpus():
    """The widget's training text as ids, and the baselines its loss curve is drawn against (computed once)."""
    if not _data:
        train_ids, val_ids = _stage.encode_corpus(CFG)
        V = CFG.model.vocab_size
        _data.update(train=train_ids, baselines={"uniform": math.log(V),
                                                 "unigram": unigram_loss(train_ids, val_ids, V)})
    return _data


# ----------------------------------------------------------------------------- knobs

def info():
    """Everything the UI needs before training: prompt presets, knob ranges, baselines, the model's size.

    The UI types none of these: its sliders, texts and chunk cap come from here."""
    d = _corpus()
    m = CFG.model
    return {"prompts": PROMPTS, "defaults": DEFAULT_KNOBS, "lr_range": list(LR_RANGE), "lr_ladder": list(LR_LADDER),
            "steps_range": list(STEPS_RANGE), "steps_step": 50,   # the steps slider moves in 50s
            "seed_range": [0, 9],          # the seed slider offers these; start() takes any seed
            "max_chunk": MAX_CHUNK, "top_k": TOP_K,
            "diverge_above": d["baselines"]["uniform"] + DIVERGE_MARGIN,
            "baselines": d["baselines"], "model": m.to_dict(),
            "batch_size": CFG.train.batch_size, "warmup": CFG.train.warmup, "lesson_lr": CFG.train.lr,
            "params": int(sum(int(np.prod(shape)) for shape in param_shapes(m).values())),
            "alphabet": world.ALPHABET}


# ----------------------------------------------------------------------------- a training session

def start(lr=DEFAULT_KNOBS["lr"], steps=DEFAULT_KNOBS["steps"], seed=DEFAULT_KNOBS["seed"],
          prompt=DEFAULT_KNOBS["prompt"]):
    """A fresh model (seeded init) and its batch stream; returns the session id and the untrained distribution."""
    lr = number("lr", lr, *LR_RANGE)
    steps = number("steps", steps, *STEPS_RANGE, integer=True)
    seed = number("seed", seed, 0, 2**31 - 1, integer=True)
    d = _corpus()
    model = GPT(CFG.model, seed=seed)
    rng = np.random.default_rng(seed)   # the batch order: same seed, same batches, same losses
    run = LiveRun(TrainState(model.params), replace(CFG.train, lr=lr, steps=steps, seed=seed), CFG.model,
                  lambda: get_batch(d["train"], CFG.model.block_size, CFG.train.batch_size, rng),
                  next_token_loss, diverge_above=d["baselines"]["uniform"] + DIVERGE_MARGIN,
                  window=STALL_WINDOW)
    session = _SESSIONS.add(run)
    return {"session": session, "step": 0, "steps": steps, "lr": lr, "seed": seed, "status": "ready",
            "baselines": d["baselines"], "dist": distribution(model.params, CFG.model, prompt, TOP_K)}


def _explain_divergence(step, loss, grad_norm, lr, baselines):
    uniform = baselines["uniform"]
    what = (f"At step {step} the batch loss became {loss:.3g} nats" if math.isfinite(loss)
            else f"At step {step} the loss became {loss} (not a number)")
    return {
        "step": step, "loss": loss, "grad_norm": grad_norm, "lr": lr,
        "what": what + f": worse than the {uniform:.2f} nats of guessing uniformly among "
                f"{CFG.model.vocab_size} tokens, where the untrained model started. Training stopped.",
        "why": f"Adam moves every weight by roughly the learning rate each step, whatever the gradient's size. "
               f"At lr = {lr:g} a single step is far larger than the weights themselves (initialised at about "
               f"±0.02), so it jumps over the valley the gradient pointed into and lands somewhere worse; the "
               f"next step overshoots again. The model ends up confidently wrong: it puts high probability on "
               f"the wrong characters, which costs more than knowing nothing.",
        "try": f"Lower the learning rate: at {CFG.train.lr:g} (this widget's default) the loss falls steadily, "
               f"around 0.03 faster but noisier; by 0.1 it already stalls near the unigram line.",
    }


def step(session, n=5, prompt=DEFAULT_KNOBS["prompt"], complete=False):
    """Up to n more training steps (never past the session's `steps`); stops at the first sign of divergence.

    `complete` adds the greedy continuation of the prompt (16 more forwards: the UI asks only now and then)."""
    run = _SESSIONS.get(session)
    n = number("n", n, 1, MAX_CHUNK, integer=True)
    history = run.advance(n)
    st, hp = run.state, run.hp
    if history.diverged:
        m = history.diverged
        run.explanation = _explain_divergence(m["step"], m["loss"], m["grad_norm"], hp.lr, _corpus()["baselines"])
    out = {"session": session, "step": st.step, "steps": hp.steps, "first_step": st.step - len(history.metrics) + 1,
           "losses": history.losses, "grad_norms": [m["grad_norm"] for m in history.metrics],
           "lr": history.metrics[-1]["lr"] if history.metrics else None,
           "status": run.status, "diverged": run.explanation}
    out["stalled"] = _stalled(run)
    # a diverged model's distribution is garbage by definition: the UI shows the explanation instead
    out["dist"] = None if run.status == "diverged" else distribution(st.params, CFG.model, prompt, TOP_K)
    out["continuation"] = _continuation(st.params, CFG.model, out["dist"]) if complete else None
    return out


def _stalled(run):
    """A note when, STALL_AFTER steps in, the loss is still no better than counting characters."""
    unigram = _corpus()["baselines"]["unigram"]
    recent = run.stalled(unigram, STALL_AFTER)
    if recent is None:
        return None
    lr = run.hp.lr
    why = (f"At lr = {lr:g} Adam's steps are too small to get further in this many steps: a larger learning rate "
           f"(the default {CFG.train.lr:g}) gets well below the line." if lr < CFG.train.lr else
           f"At lr = {lr:g} Adam's steps are too big to settle into the finer structure: a smaller learning rate "
           f"(the default {CFG.train.lr:g}) gets well below the line.")
    return (f"After {run.state.step} steps the loss (mean of the last {len(run.recent)}: {recent:.2f}) is still "
            f"above the unigram baseline ({unigram:.2f}): the model has learned little more than how "
            f"common each character is. " + why)


def probs(session, prompt, complete=False):
    """The session's current next-character distribution (and greedy continuation) for a (new) prompt."""
    run = _SESSIONS.get(session)
    if run.status == "diverged":
        return {"ok": False, "prompt": prompt, "problem": {"message": "training diverged", "hint": run.explanation["try"]}}
    dist = distribution(run.state.params, CFG.model, prompt, TOP_K)
    if complete:
        dist["continuation"] = _continuation(run.state.params, CFG.model, dist)
    return dist


def _continuation(params, config, dist, max_new=16):
    """The model's single best guess, character by character, up to the end of the sentence."""
    if not dist or not dist["ok"]:
        return None
    return complete(params, config, world.tokenizer(), dist["prompt"], max_new=max_new, stop=".")


def close(session):
    """Forget a session (Reset)."""
    return _SESSIONS.close(session)


# ----------------------------------------------------------------------------- the full run's snapshots

def snapshots(path):
    """The full run's snapshots, read from its results file (results/00_pretrain.json): step, file, losses."""
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    out = [{"step": s["step"], "checkpoint": s["checkpoint"], "train_loss": s.get("train_loss"),
            "val_loss": s.get("val_loss")} for s in results["snapshots"]]
    return {"snapshots": sorted(out, key=lambda s: s["step"]), "baselines": results.get("baselines"),
            "model": results.get("config", {}).get("model"), "params": results.get("params")}


def _load_snapshot(path):
    if path not in _loaded:
        if len(_loaded) >= 8:
            _loaded.pop(next(iter(_loaded)))
        config, _, params, meta = checkpoint.load(path)
        _loaded[path] = (config, params, meta)
    return _loaded[path]


def snapshot(path, prompt, max_new=16):
    """A committed checkpoint of the full run: its step, next-character distribution and greedy continuation.

    `path` is a file in Python's filesystem (the browser's worker fetches it there first; see DEVELOPERS.md).
    """
    if not isinstance(path, str) or not path.endswith(".npz"):
        raise ValueError(f"a snapshot is a .npz checkpoint file, got {path!r}")
    config, params, meta = _load_snapshot(path)
    max_new = number("max_new", max_new, 1, 64, integer=True)
    dist = distribution(params, config, prompt, TOP_K)
    return {"path": path, "step": meta.get("step"), "dist": dist,
            "continuation": _continuation(params, config, dist, max_new)}
