"""Attention you can see: the trained lesson model's attention, every layer and every head, on your prompt.

`attend(path, prompt)` runs the real `gpt_mini.model.forward` of the shipped checkpoint
(checkpoints/00_pretrain.npz, fetched by the worker into `path`) on the reader's prompt, read as the start of a
document, with a `trace` callback that keeps each layer's `attn.softmax`: the (n_head, T, T) weights the forward
itself used, nothing recomputed. For each head it also measures where the weight goes on this prompt (the
previous character, the character itself, the start of the current word, the document's first character), so the
reader can find the heads that look back one character or to a word's start.

The configuration that breaks training: `leak_start(mask="off")` trains the browser's small model (00_pretrain's
WIDGET) with the causal mask removed, by running the same `next_token_loss` while `model.causal_mask` returns an
all-False mask; `leak_step` reports, per chunk, the training loss (which can now read the answer) next to the
honest loss of the same weights on validation text with the mask back on. `mask="on"` is the same run, honest.

JSON in, JSON out, no DOM.
"""

import math
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from gpt_mini import checkpoint, model, stage, world
from gpt_mini.data import get_batch
from gpt_mini.model import GPT
from gpt_mini.sample import complete
from gpt_mini.train import TrainState, mean_loss, next_token_loss

from ._live import LiveRun, Sessions, choice, encode_prompt, number

__all__ = ["info", "attend", "leak_info", "leak_start", "leak_step", "leak_close"]

DEFAULT_KNOBS = {"prompt": "ada lives in paris. the old dog sees the cat.", "layer": 0, "head": 0, "mask": "off"}
PROMPTS = ["ada lives in paris. the old dog sees the cat.", "the big child follows the small ball.",
           "45+7=52. 34+5=", "bob has a dog. bob works as a"]
CHECKPOINT = "checkpoints/00_pretrain.npz"   # relative to the site root; the JS fetches it to PATH
PATH = "/checkpoints/00_pretrain.npz"
DECIMALS = 4                                  # weights are sent rounded: a heat map needs no more

_loaded = {}


def info():
    """The widget's constants: default knobs, prompt presets, and where the checkpoint lives."""
    return {"defaults": DEFAULT_KNOBS, "prompts": PROMPTS, "checkpoint": CHECKPOINT, "path": PATH}


def _load(path):
    if path not in _loaded:
        if not isinstance(path, str) or not path.endswith(".npz"):
            raise ValueError(f"the model is a .npz checkpoint file, got {path!r}")
        config, _, params, meta = checkpoint.load(path)
        _loaded.clear()
        _loaded[path] = (config, params, meta)
    return _loaded[path]


def _label(ch):
    return {"\n": "↵", " ": "␣"}.get(ch, ch)


def _patterns(att, ids, tok):
    """Per head, the mean weight a query puts on: the previous character, itself, the first character of its
    word (after the last space or newline at or before it), and position 0 (the document's newline). Means over
    the queries where the target is a different position from the others' (t >= 1), so the four don't collapse."""
    nh, T, _ = att.shape
    text = [tok.decode([i]) for i in ids]
    starts, start = [], 0
    for t, ch in enumerate(text):
        if ch in (" ", "\n"):
            start = t + 1
        starts.append(min(start, t))
    q = np.arange(1, T)
    out = []
    for h in range(nh):
        a = att[h]
        out.append({"previous": float(a[q, q - 1].mean()) if T > 1 else 0.0,
                    "self": float(a[q, q].mean()) if T > 1 else 1.0,
                    "word_start": float(a[q, np.array(starts)[q]].mean()) if T > 1 else 0.0,
                    "first": float(a[q, 0].mean()) if T > 1 else 1.0})
    return out


def attend(path=PATH, prompt=DEFAULT_KNOBS["prompt"]):
    """Every layer's and head's attention weights on the prompt, from the real forward's trace."""
    config, params, meta = _load(path)
    ids, problem = encode_prompt(prompt)
    if problem:
        return {"ok": False, "problem": problem}
    truncated = max(0, len(ids) - config.block_size)
    ids = ids[truncated:]                                   # the model reads at most block_size characters
    tok = world.tokenizer()
    seen = {}

    def keep(name, value):
        if name.endswith("attn.softmax"):
            seen[name] = value[0]                               # (nh, T, T) for the one sequence

    logits, _ = model.forward(params, np.asarray(ids, np.int64)[None], config, trace=keep)
    layers = [seen[f"h.{i}.attn.softmax"] for i in range(config.n_layer)]
    p = model.softmax(logits[0, -1].astype(np.float64))
    top = np.argsort(-p)[:5]
    return {
        "ok": True,
        "step": meta.get("step"),
        "model": config.to_dict(),
        "tokens": [_label(tok.decode([i])) for i in ids],
        "truncated": truncated,
        "weights": [np.round(a.astype(np.float64), DECIMALS).tolist() for a in layers],   # [L][nh][T][T]
        "patterns": [_patterns(a, ids, tok) for a in layers],                             # [L][nh]
        "next": [{"token": _label(tok.decode([int(i)])), "p": float(p[i])} for i in top],
    }


# ----------------------------------------------------------------------------- breaking it: no causal mask

_stage = stage("00_pretrain")
LEAK = replace(_stage.WIDGET, train=replace(_stage.WIDGET.train, steps=1500))   # long enough to learn to cheat
LEAK_STEPS = (100, 3000)
LEAK_PROMPT = "ada lives in "
MAX_CHUNK = 50
_LEAK_SESSIONS = Sessions(2)
_leak_data = {}


@contextmanager
def causal_mask(on):
    """`model.causal_mask` as it is (on), or a mask that forbids nothing (off), for the duration of the block."""
    saved = model.causal_mask
    if not on:
        model.causal_mask = lambda T: np.zeros((T, T), dtype=bool)
    try:
        yield
    finally:
        model.causal_mask = saved


def _leak_corpus():
    if not _leak_data:
        train_ids, val_ids = _stage.encode_corpus(LEAK)
        _leak_data.update(train=train_ids, val=_stage.eval_batches(val_ids, LEAK, 2),
                          floor=_stage.entropy_rate(LEAK.corpus.seed)["nats_per_char"],
                          uniform=math.log(LEAK.model.vocab_size))
    return _leak_data


def leak_info():
    """The no-mask run's constants: model, default steps, range, and the lines its chart is read against."""
    d = _leak_corpus()
    return {"model": LEAK.model.to_dict(), "steps": LEAK.train.steps, "steps_range": list(LEAK_STEPS),
            "max_chunk": MAX_CHUNK, "floor": d["floor"], "uniform": d["uniform"], "prompt": LEAK_PROMPT}


def leak_start(mask="off", steps=LEAK.train.steps, seed=0):
    """A fresh WIDGET-sized model, to be trained with the causal mask on or off."""
    mask = choice("mask", mask, ("on", "off"))
    steps = number("steps", steps, *LEAK_STEPS, integer=True)
    seed = number("seed", seed, 0, 2**31 - 1, integer=True)
    d = _leak_corpus()
    rng = np.random.default_rng(seed)
    on = mask == "on"

    def loss_fn(params, batch, config):
        with causal_mask(on):
            return next_token_loss(params, batch, config)
    run = LiveRun(TrainState(GPT(LEAK.model, seed=seed).params), replace(LEAK.train, steps=steps, seed=seed),
                  LEAK.model, lambda: get_batch(d["train"], LEAK.model.block_size, LEAK.train.batch_size, rng),
                  loss_fn)
    run.mask = mask
    return {"session": _LEAK_SESSIONS.add(run), "mask": mask, "step": 0, "steps": steps, "status": "ready"}


def leak_step(session, n=10, complete_text=False):
    """n more steps; the chunk's training losses (as trained), and the same weights' validation loss read
    honestly (mask on) and as trained; with complete_text, the greedy continuation of LEAK_PROMPT as trained."""
    run = _LEAK_SESSIONS.get(session)
    n = number("n", n, 1, MAX_CHUNK, integer=True)
    history = run.advance(n)
    d = _leak_corpus()
    params = run.state.params
    honest = mean_loss(params, LEAK.model, d["val"])
    with causal_mask(run.mask == "on"):
        as_trained = mean_loss(params, LEAK.model, d["val"])
        text = complete(params, LEAK.model, world.tokenizer(), LEAK_PROMPT, 24, stop="\n") if complete_text else None
    return {"session": session, "mask": run.mask, "step": run.state.step, "steps": run.hp.steps,
            "losses": history.losses, "status": run.status, "honest_loss": honest, "as_trained_loss": as_trained,
            "continuation": text}


def leak_close(session):
    """Forget a run (Reset)."""
    return _LEAK_SESSIONS.close(session)
