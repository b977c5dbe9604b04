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

import importlib
import itertools
import json
import math
from dataclasses import replace

import numpy as np

from gpt_mini import checkpoint, world
from gpt_mini.model import GPT, param_shapes
from gpt_mini.sample import next_token_probs
from gpt_mini.train import TrainState, train_step

__all__ = ["info", "start", "step", "probs", "close", "snapshots", "snapshot"]

_stage = importlib.import_module("gpt_mini.00_pretrain")   # a module name can't start with a digit in `import`
CFG = _stage.WIDGET

# The knobs a page gets when its directive sets none (build.py reads this literal).
DEFAULT_KNOBS = {"prompt": "ada lives in ", "lr": 0.003, "steps": 300, "seed": 0, "snapshot": None}

PROMPTS = ["ada lives in ", "the small dog ", "23+4=", "where does ada live?", "bob has a ", "the "]
LR_RANGE = (1e-4, 3.0)      # the slider; from ~0.5 up, training diverges (bench/widget_train.py, tests)
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

_SESSIONS = {}
_ids = itertools.count(1)
_data = {}
_loaded = {}


# ----------------------------------------------------------------------------- data and the prompt

def _corpus():
    """The widget's training text as ids, and the baselines its loss curve is drawn against (computed once)."""
    if not _data:
        train_ids, val_ids = _stage.encode_corpus(CFG)
        V = CFG.model.vocab_size
        # as intp: np.bincount (in unigram_loss) refuses int64 on 32-bit wasm, where intp is int32
        unigram = _stage.unigram_loss(train_ids.astype(np.intp), val_ids.astype(np.intp), V)
        _data.update(train=train_ids, baselines={"uniform": math.log(V), "unigram": unigram})
    return _data


def _label(ch):
    """A character as a bar label a reader can see: space and newline have no ink of their own."""
    return {" ": "␣", "\n": "↵"}.get(ch, ch)


def _describe(ch):
    return {" ": "space", "\n": "newline (end of document)"}.get(ch, repr(ch))


def _encode_prompt(prompt):
    """Ids of "\\n" + prompt (a prompt is read at the start of a document, as in training), or a problem."""
    if not isinstance(prompt, str):
        return None, {"message": f"the prompt must be text, got {type(prompt).__name__}", "hint": ""}
    bad = [c for c in dict.fromkeys(prompt) if c not in world.ALPHABET or c == "\n"]
    if bad:
        shown = ", ".join(f"“{c}”" if c.strip() else repr(c) for c in bad[:5])
        hint = ("The model's whole vocabulary is lowercase a–z, digits 0–9, space and . , ? + =: "
                "it has never seen any other character, so it has no probability to give one.")
        if any(c.isupper() for c in bad):
            hint += " Try it in lowercase."
        return None, {"message": f"the prompt contains {shown}, which the model's alphabet does not have",
                      "hint": hint, "chars": bad}
    return world.tokenizer().encode("\n" + prompt), None


def _distribution(params, config, prompt):
    """The top-k next characters for a prompt, or the prompt's problem."""
    ids, problem = _encode_prompt(prompt)
    if problem:
        return {"ok": False, "prompt": prompt, "problem": problem}
    tok = world.tokenizer()
    p = next_token_probs(params, config, ids)            # the model sees at most block_size of them
    order = np.argsort(-p, kind="stable")[:TOP_K]
    top = []
    for i in order:
        ch = tok.decode([int(i)])
        top.append({"char": ch, "label": _label(ch), "name": _describe(ch), "p": float(p[i])})
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = float(-np.sum(np.where(p > 0, p * np.log(p), 0.0)))
    return {"ok": True, "prompt": prompt, "top": top, "top_mass": float(p[order].sum()), "entropy": entropy,
            "context_chars": min(len(ids), config.block_size), "truncated": len(ids) > config.block_size}


# ----------------------------------------------------------------------------- knobs

def _number(name, value, lo, hi, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if integer and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
    return int(value) if integer else float(value)


def info():
    """Everything the UI needs before training: prompt presets, knob ranges, baselines, the model's size."""
    d = _corpus()
    m = CFG.model
    return {"prompts": PROMPTS, "defaults": DEFAULT_KNOBS, "lr_range": list(LR_RANGE),
            "steps_range": list(STEPS_RANGE), "baselines": d["baselines"], "model": m.to_dict(),
            "batch_size": CFG.train.batch_size, "warmup": CFG.train.warmup, "lesson_lr": CFG.train.lr,
            "params": int(sum(int(np.prod(shape)) for shape in param_shapes(m).values())),
            "alphabet": world.ALPHABET}


# ----------------------------------------------------------------------------- a training session

def start(lr=DEFAULT_KNOBS["lr"], steps=DEFAULT_KNOBS["steps"], seed=DEFAULT_KNOBS["seed"],
          prompt=DEFAULT_KNOBS["prompt"]):
    """A fresh model (seeded init) and its batch stream; returns the session id and the untrained distribution."""
    lr = _number("lr", lr, *LR_RANGE)
    steps = _number("steps", steps, *STEPS_RANGE, integer=True)
    seed = _number("seed", seed, 0, 2**31 - 1, integer=True)
    d = _corpus()
    model = GPT(CFG.model, seed=seed)
    session = next(_ids)
    _SESSIONS[session] = {
        "state": TrainState(model.params),
        "rng": np.random.default_rng(seed),   # the batch order: same seed, same batches, same losses
        "hp": replace(CFG.train, lr=lr, steps=steps, seed=seed),
        "status": "ready", "diverged": None, "recent": [],
    }
    while len(_SESSIONS) > MAX_SESSIONS:
        del _SESSIONS[min(_SESSIONS)]
    return {"session": session, "step": 0, "steps": steps, "lr": lr, "seed": seed, "status": "ready",
            "baselines": d["baselines"], "dist": _distribution(model.params, CFG.model, prompt)}


def _session(session):
    if session not in _SESSIONS:
        raise KeyError(f"no training session {session!r} (it was reset or replaced; press Train again)")
    return _SESSIONS[session]


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
    s = _session(session)
    n = _number("n", n, 1, MAX_CHUNK, integer=True)
    st, hp = s["state"], s["hp"]
    d = _corpus()
    losses, grad_norms = [], []
    if s["status"] in ("ready", "training"):
        limit = d["baselines"]["uniform"] + DIVERGE_MARGIN
        for _ in range(min(n, hp.steps - st.step)):
            batch = _stage.get_batch(d["train"], CFG.model.block_size, CFG.train.batch_size, s["rng"])
            st, metrics = train_step(st, batch, CFG.model, hp)
            loss = metrics["loss"]
            losses.append(loss)
            grad_norms.append(metrics["grad_norm"])
            s["recent"] = (s["recent"] + [loss])[-STALL_WINDOW:]
            if not math.isfinite(loss) or loss > limit:
                s["status"] = "diverged"
                s["diverged"] = _explain_divergence(st.step, loss, metrics["grad_norm"], hp.lr, d["baselines"])
                break
        else:
            s["status"] = "done" if st.step >= hp.steps else "training"
    out = {"session": session, "step": st.step, "steps": hp.steps, "first_step": st.step - len(losses) + 1,
           "losses": losses, "grad_norms": grad_norms, "lr": metrics["lr"] if losses else None,
           "status": s["status"], "diverged": s["diverged"]}
    out["stalled"] = _stalled(s, d["baselines"])
    # a diverged model's distribution is garbage by definition: the UI shows the explanation instead
    out["dist"] = None if s["status"] == "diverged" else _distribution(st.params, CFG.model, prompt)
    out["continuation"] = _continuation(st.params, CFG.model, out["dist"]) if complete else None
    return out


def _stalled(s, baselines):
    """A note when, STALL_AFTER steps in, the loss is still no better than counting characters."""
    if s["status"] == "diverged" or s["state"].step < STALL_AFTER:
        return None
    recent = float(np.mean(s["recent"]))
    if recent <= baselines["unigram"]:
        return None
    lr = s["hp"].lr
    why = (f"At lr = {lr:g} Adam's steps are too small to get further in this many steps: a larger learning rate "
           f"(the default {CFG.train.lr:g}) gets well below the line." if lr < CFG.train.lr else
           f"At lr = {lr:g} Adam's steps are too big to settle into the finer structure: a smaller learning rate "
           f"(the default {CFG.train.lr:g}) gets well below the line.")
    return (f"After {s['state'].step} steps the loss (mean of the last {len(s['recent'])}: {recent:.2f}) is still "
            f"above the unigram baseline ({baselines['unigram']:.2f}): the model has learned little more than how "
            f"common each character is. " + why)


def probs(session, prompt, complete=False):
    """The session's current next-character distribution (and greedy continuation) for a (new) prompt."""
    s = _session(session)
    if s["status"] == "diverged":
        return {"ok": False, "prompt": prompt, "problem": {"message": "training diverged", "hint": s["diverged"]["try"]}}
    dist = _distribution(s["state"].params, CFG.model, prompt)
    if complete:
        dist["continuation"] = _continuation(s["state"].params, CFG.model, dist)
    return dist


def _continuation(params, config, dist, max_new=16):
    """The model's single best guess, character by character, up to the end of the sentence."""
    if not dist or not dist["ok"]:
        return None
    return _stage.complete(params, config, dist["prompt"], max_new=max_new, stop=".")


def close(session):
    """Forget a session (Reset)."""
    _SESSIONS.pop(session, None)
    return {"closed": session}


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
    max_new = _number("max_new", max_new, 1, 64, integer=True)
    dist = _distribution(params, config, prompt)
    return {"path": path, "step": meta.get("step"), "dist": dist,
            "continuation": _continuation(params, config, dist, max_new)}
