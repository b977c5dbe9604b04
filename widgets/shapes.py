"""Every shape in one forward pass, and every parameter, for any GPT config.

Shapes don't depend on values (like `jax.eval_shape`), so nothing here is a hand-kept table: `compute` runs the
real `gpt_mini.model.forward` with a `trace` callback and reports what it saw. To make that free even at
GPT-2 sizes in WebAssembly it runs on a batch of ZERO sequences, idx of shape (0, T), with every parameter a
zero-stride view of one scalar (`np.broadcast_to`): no memory, no FLOPs, the same code path. The leading 0 of
each activation is then reported as the batch size B. Symbolic shapes (B, T, C, nh, hs, 3C, 4C, V) come the
same way: a second tiny trace with a probe config whose dimensions are all distinct numbers, read back as names.

JSON in, JSON out, no DOM: `compute(**knobs)` for the widget, `presets()` for its preset menu.
"""

import functools
import re
import time

import numpy as np

from gpt_mini import model, stage
from gpt_mini.model import GPTConfig, param_shapes

__all__ = ["compute", "presets", "KNOBS"]

# The knobs a page gets when its directive sets none (build.py reads this literal): the lesson's model, one
# training batch (tests/test_widget_shapes.py checks it against 00_pretrain.LESSON).
DEFAULT_KNOBS = {"B": 32, "T": 64, "block_size": 64, "n_embd": 96, "n_head": 4, "n_layer": 4, "vocab_size": 47}

KNOBS = ("B", "T", "block_size", "n_embd", "n_head", "n_layer", "vocab_size")


def _lesson_knobs():
    """The model the series trains (00_pretrain.LESSON, the config in results/00_pretrain.json), on one batch."""
    cfg = stage("00_pretrain").LESSON
    m = cfg.model
    return {"B": cfg.train.batch_size, "T": m.block_size, "block_size": m.block_size, "n_embd": m.n_embd,
            "n_head": m.n_head, "n_layer": m.n_layer, "vocab_size": m.vocab_size}


PRESETS = [
    {"name": "Lesson model ({:,} parameters)".format(sum(
        int(np.prod(shape)) for shape in param_shapes(stage("00_pretrain").LESSON.model).values())),
     "knobs": _lesson_knobs()},
    {"name": "GPT-2 small (124M)", "knobs": {"B": 8, "T": 1024, "block_size": 1024, "n_embd": 768, "n_head": 12,
                                             "n_layer": 12, "vocab_size": 50257}},
    {"name": "GPT-2 medium (350M)", "knobs": {"B": 8, "T": 1024, "block_size": 1024, "n_embd": 1024, "n_head": 16,
                                              "n_layer": 24, "vocab_size": 50257}},
    {"name": "GPT-2 XL (1.5B)", "knobs": {"B": 8, "T": 1024, "block_size": 1024, "n_embd": 1600, "n_head": 25,
                                          "n_layer": 48, "vocab_size": 50257}},
    {"name": "Broken: 64 channels, 5 heads", "knobs": {"B": 4, "T": 32, "block_size": 64, "n_embd": 64, "n_head": 5,
                                                       "n_layer": 2, "vocab_size": 64}},
    {"name": "Broken: T longer than block_size", "knobs": {"B": 4, "T": 96, "block_size": 64, "n_embd": 64,
                                                           "n_head": 4, "n_layer": 2, "vocab_size": 64}},
]

# One line of meaning per traced name (block names without the "h.{i}." prefix). Prose, not shapes.
MEANING = {
    "embed": "token embedding wte[idx] + position embedding wpe[:T]: one C-vector per position",
    "ln_1": "pre-norm: each position's vector normalised to mean 0, variance 1, then scaled and shifted",
    "attn.c_attn": "one matmul makes query, key and value for every position, side by side (3C)",
    "attn.q": "queries split into nh heads of hs channels: what each position is looking for",
    "attn.k": "keys, per head: what each position offers to be found by",
    "attn.v": "values, per head: what each position hands over when attended to",
    "attn.scores": "q·k / sqrt(hs): every position against every position, per head (T×T grows quadratically)",
    "attn.mask": "causal mask, True above the diagonal: no position may look at the future (no batch axis)",
    "attn.softmax": "each row becomes attention weights summing to 1; masked entries get weight 0",
    "attn.att_v": "weighted sum of values: each head's output per position",
    "attn.merge": "heads put back side by side: nh × hs = C channels",
    "attn.c_proj": "output projection mixes the heads back into the residual stream's channels",
    "res_1": "residual: x + attention(ln_1(x)); the stream keeps its shape",
    "ln_2": "pre-norm again, before the MLP",
    "mlp.c_fc": "MLP widens each position independently to 4C channels",
    "mlp.gelu": "GELU non-linearity, elementwise (GPT-2's tanh approximation)",
    "mlp.c_proj": "MLP narrows back to C channels",
    "res_2": "residual: x + mlp(ln_2(x)); this is the block's output and the next block's input",
    "ln_f": "final layer norm over the last block's output",
    "logits": "ln_f(x) @ wteᵀ: a score for every vocabulary entry at every position (weights tied to wte)",
}

# Display order inside a block = the real data flow (the trace reports attention's internals before ln_1,
# because block_forward traces after the block has run).
BLOCK_FLOW = ["ln_1", "attn.c_attn", "attn.q", "attn.k", "attn.v", "attn.scores", "attn.mask", "attn.softmax",
              "attn.att_v", "attn.merge", "attn.c_proj", "res_1", "ln_2", "mlp.c_fc", "mlp.gelu", "mlp.c_proj",
              "res_2"]

# A config whose symbolic dimensions are all different numbers, so each traced size names itself.
_PROBE = {"T": 5, "block_size": 11, "n_embd": 6, "n_head": 2, "vocab_size": 7}  # hs = 3, 3C = 18, 4C = 24
_PROBE_SYMBOLS = {5: "T", 6: "C", 2: "nh", 3: "hs", 18: "3C", 24: "4C", 7: "V"}

HINTS = {
    "divisible": "Multi-head attention cuts the C channels into n_head equal slices; try an n_head that divides n_embd.",
    "block_size": "The position embedding wpe has block_size rows, one per position, so a longer sequence has "
                  "positions with no embedding; raise block_size or shorten T.",
    "positive": "Every dimension has to hold at least one thing: a zero-width layer or an empty sequence has "
                "nothing to compute.",
}

_masks = {}


def _cached_causal_mask(T):
    """`model.causal_mask`, memoised: the forward rebuilds the same (T, T) mask in every layer, and that real
    array is the one cost a zero-batch trace still pays (48 × 2048² booleans at GPT-2 XL sizes)."""
    if T not in _masks:
        if len(_masks) > 4:
            _masks.clear()
        m = _original_causal_mask(T)
        m.flags.writeable = False                     # shared across layers and calls: nobody may edit it
        _masks[T] = m
    return _masks[T]


_original_causal_mask = model.causal_mask


def _trace_shapes(config, T, dtype=np.float64):
    """[(name, shape, dtype name)] of every traced intermediate of the real forward on a zero-sequence batch.

    The big trace uses float64 weights: should the model ever promote an activation to float64, a float32
    weight would be cast, i.e. copied at full size; float64 never is. The dtypes shown come from the tiny probe,
    which runs with float32 weights like the real model."""
    zero = np.zeros((), dtype)
    params = {name: np.broadcast_to(zero, shape) for name, shape in param_shapes(config).items()}
    seen = []
    model.causal_mask = _cached_causal_mask
    try:
        model.forward(params, np.zeros((0, T), np.int64), config, trace=lambda name, a: seen.append((name, a.shape, a.dtype.name)))
    finally:
        model.causal_mask = _original_causal_mask
    return seen


def _block_key(name):
    """"h.3.attn.q" -> (3, "attn.q"); "embed" -> (None, "embed")."""
    m = re.match(r"h\.(\d+)\.(.+)\Z", name)
    return (int(m.group(1)), m.group(2)) if m else (None, name)


def _symbolic(shape):
    return ["B" if (i == 0 and d == 0) else _PROBE_SYMBOLS.get(d, str(d)) for i, d in enumerate(shape)]


def _param_component(name):
    if name in ("wte", "wpe"):
        return "embeddings"
    if ".attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if name.startswith("ln_") or ".ln_" in name:
        return "layernorm"
    return "other"


COMPONENTS = [
    ("embeddings", "Embeddings", "wte (V×C, also the output head: tied) + wpe (block_size×C)"),
    ("attention", "Attention", "c_attn (C×3C + 3C) + c_proj (C×C + C), per block"),
    ("mlp", "MLP", "c_fc (C×4C + 4C) + c_proj (4C×C + C), per block"),
    ("layernorm", "Layer norms", "gain + bias (2C) for ln_1, ln_2 per block, and ln_f"),
    ("other", "Other", "parameters this widget does not know how to group"),
]


@functools.cache
def _probe():
    """Per traced name (block prefix dropped): its symbolic shape and its dtype, from one tiny float32 trace.
    The probe config never changes, so this is traced once, not on every `compute`."""
    probe_cfg = GPTConfig(vocab_size=_PROBE["vocab_size"], block_size=_PROBE["block_size"], n_layer=1,
                          n_head=_PROBE["n_head"], n_embd=_PROBE["n_embd"])
    probed = _trace_shapes(probe_cfg, _PROBE["T"], np.float32)
    return ({_block_key(n)[1]: _symbolic(s) for n, s, _ in probed}, {_block_key(n)[1]: d for n, _, d in probed})


def _problem(text):
    knobs = [k for k in KNOBS if re.search(rf"(?<![A-Za-z_]){re.escape(k)}(?![A-Za-z_])", text)]
    if "divisible" in text:
        hint = HINTS["divisible"]
    elif "block_size" in text and "T" in knobs:
        hint = HINTS["block_size"]
    elif "positive" in text:
        hint = HINTS["positive"]
    else:
        hint = ""
    return {"ok": False, "problem": {"message": text, "hint": hint, "knobs": knobs}}


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def compute(B=32, T=64, block_size=64, n_embd=96, n_head=4, n_layer=4, vocab_size=47):
    """Every intermediate shape and the parameter count, or `{"ok": false, "problem": ...}` for a config that
    cannot run (the message is gpt_mini's own ValueError, plus a hint saying why)."""
    t0 = time.perf_counter()
    knobs = dict(B=B, T=T, block_size=block_size, n_embd=n_embd, n_head=n_head, n_layer=n_layer,
                 vocab_size=vocab_size)
    try:
        config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                           n_embd=n_embd)
        _check_count("B", B)   # the model has no B; a batch of 0 would trace fine, so the widget insists on >= 1
        _check_count("T", T)
        traced = _trace_shapes(config, T)             # raises check_idx's ValueError for T > block_size
    except ValueError as e:
        return {**_problem(str(e)), "knobs": knobs}

    probe, dtypes = _probe()

    def row(name, shape):
        key = _block_key(name)[1]
        dtype = dtypes.get(key, "float32")
        real = [B if (i == 0 and d == 0) else int(d) for i, d in enumerate(shape)]
        numel = int(np.prod(real, dtype=np.int64)) if real else 1
        return {"name": name, "key": key, "shape": real, "symbolic": list(probe.get(key, [str(d) for d in real])),
                "meaning": MEANING.get(key, ""), "numel": numel, "dtype": dtype,
                "mb": numel * np.dtype(dtype).itemsize / 1e6}

    embed, blocks, final = [], {}, []
    for name, shape, _ in traced:
        layer, key = _block_key(name)
        if layer is None:
            (embed if not blocks else final).append(row(name, shape))
        else:
            blocks.setdefault(layer, []).append((key, shape))
    # Every block must trace the same names and shapes; that is what lets the table show block 0 once, ×L.
    first = blocks[0]
    for layer, items in blocks.items():
        if items != first:
            raise AssertionError(f"block {layer} traced different shapes from block 0")
    order = {k: i for i, k in enumerate(BLOCK_FLOW)}
    block_rows = sorted((row(f"h.0.{k}", s) for k, s in first),
                        key=lambda r: order.get(r["key"], len(order)))  # unknown names keep trace order, at the end

    shapes = param_shapes(config)
    counts = {key: 0 for key, _, _ in COMPONENTS}
    for name, shape in shapes.items():
        counts[_param_component(name)] += int(np.prod(shape, dtype=np.int64))
    total = sum(counts.values())
    components = [{"key": key, "label": label, "what": what, "count": counts[key],
                   "share": counts[key] / total, "mb_f32": counts[key] * 4 / 1e6}
                  for key, label, what in COMPONENTS if counts[key] or key != "other"]
    tensors = [{"name": n, "shape": list(s), "count": int(np.prod(s, dtype=np.int64)),
                "per_block": n.startswith("h.")} for n, s in shapes.items() if not re.match(r"h\.[1-9]", n)]

    C, nh = config.n_embd, config.n_head
    return {
        "ok": True,
        "knobs": knobs,
        "symbols": {"B": B, "T": T, "C": C, "nh": nh, "hs": C // nh, "3C": 3 * C, "4C": 4 * C,
                    "V": config.vocab_size, "L": config.n_layer},
        "groups": [
            {"key": "embedding", "title": "Embedding", "repeat": 1, "rows": embed},
            {"key": "block", "title": "Block 0", "repeat": config.n_layer, "rows": block_rows},
            {"key": "final", "title": "Final", "repeat": 1, "rows": final},
        ],
        "params": {"components": components, "total": total, "mb_f32": total * 4 / 1e6, "tensors": tensors},
        "traced": len(traced),
        "ms": (time.perf_counter() - t0) * 1e3,
    }


def presets():
    """The preset menu: named knob settings (two of them break on purpose)."""
    return PRESETS
