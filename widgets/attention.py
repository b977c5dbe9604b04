"""Attention you can see: the trained lesson model's attention, every layer and every head, on your prompt.

`attend(path, prompt)` runs the real `gpt_mini.model.forward` of the shipped checkpoint
(checkpoints/00_pretrain.npz, fetched by the worker into `path`) on the reader's prompt, read as the start of a
document, with a `trace` callback that keeps each layer's `attn.softmax`: the (n_head, T, T) weights the forward
itself used, nothing recomputed. For each head it also measures where the weight goes on this prompt (the
previous character, the character itself, the start of the current word, the document's first character), so the
reader can find the heads that look back one character or to a word's start.

JSON in, JSON out, no DOM.
"""

import numpy as np

from gpt_mini import checkpoint, model, world

from ._live import encode_prompt

__all__ = ["info", "attend"]

DEFAULT_KNOBS = {"prompt": "ada lives in paris. the old dog sees the cat.", "layer": 0, "head": 0}
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
