"""GPT-2 in NumPy, forward and backward by hand.

Read top to bottom, this file is its own table of contents:

    1. GPTConfig, param_shapes, init_params      what the model is made of
    2. op pairs: *_forward / *_backward          embedding, linear, layernorm, gelu, attention, log-prob, nll
    3. mlp_*, block_forward / block_backward     one pre-norm transformer block
    4. forward / backward, token_logps,          the whole network, and the log-probs every stage's loss
       token_entropy, loss_and_grads             is a function of
    5. GPT                                       a small object holding config + params
    6. to_hf_state_dict / from_hf_state_dict     names and shapes of Hugging Face's GPT2LMHeadModel

Every forward returns `(out, cache)`: the cache is exactly what its backward needs, nothing hidden.
Params are a flat dict whose names mirror the GPT-2 checkpoint (`h.0.attn.c_attn.w`, ...) and whose
linear weights are stored (in, out), as GPT-2's Conv1D does, so `x @ w + b` reads like the maths.
Shapes: B batch, T time, C channels (n_embd), nh heads, hs head size (C // nh), V vocabulary.
"""

import math
from dataclasses import dataclass, asdict

import numpy as np


# ----------------------------------------------------------------------------- 1. config and params

@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 64
    block_size: int = 64      # longest sequence the position embedding covers
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                f"each head gets n_embd // n_head channels")

    def to_dict(self):
        return asdict(self)


def param_shapes(config):
    """Every parameter's name and shape; init, checkpoints and the HF mapping all start here."""
    C, V, T = config.n_embd, config.vocab_size, config.block_size
    shapes = {"wte": (V, C), "wpe": (T, C)}
    for i in range(config.n_layer):
        p = f"h.{i}."
        shapes.update({
            p + "ln_1.g": (C,), p + "ln_1.b": (C,),
            p + "attn.c_attn.w": (C, 3 * C), p + "attn.c_attn.b": (3 * C,),
            p + "attn.c_proj.w": (C, C), p + "attn.c_proj.b": (C,),
            p + "ln_2.g": (C,), p + "ln_2.b": (C,),
            p + "mlp.c_fc.w": (C, 4 * C), p + "mlp.c_fc.b": (4 * C,),
            p + "mlp.c_proj.w": (4 * C, C), p + "mlp.c_proj.b": (C,),
        })
    shapes.update({"ln_f.g": (C,), "ln_f.b": (C,)})
    return shapes


def init_params(config, seed=0, dtype=np.float32):
    """GPT-2 init: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2 * n_layer), zero biases, unit LN gains."""
    rng = np.random.default_rng(seed)
    # each of the 2 * n_layer residual branches adds variance to the stream: scale them so the total doesn't grow with depth
    resid_std = 0.02 / math.sqrt(2 * config.n_layer)
    params = {}
    for name, shape in param_shapes(config).items():
        if name.endswith(".g"):
            params[name] = np.ones(shape, dtype)
        elif name.endswith(".b"):
            params[name] = np.zeros(shape, dtype)
        else:
            std = resid_std if name.endswith("c_proj.w") else 0.02
            params[name] = (rng.standard_normal(shape) * std).astype(dtype)
    return params


# ----------------------------------------------------------------------------- 2. ops, each a forward/backward pair

def embedding_forward(wte, wpe, idx):
    B, T = idx.shape
    x = wte[idx] + wpe[:T]                                # (B, T, C): token identity + position, added
    return x, (idx, wte.shape, wpe.shape)


def embedding_backward(dx, cache):
    idx, wte_shape, wpe_shape = cache
    T = idx.shape[1]
    dwte = np.zeros(wte_shape, dx.dtype)                  # (V, C)
    np.add.at(dwte, idx, dx)                              # a token used twice collects both gradients
    dwpe = np.zeros(wpe_shape, dx.dtype)                  # (block_size, C)
    dwpe[:T] = dx.sum(axis=0)                             # (T, C)
    return dwte, dwpe


def linear_forward(x, w, b):
    x2 = x.reshape(-1, x.shape[-1])                       # (B*T, in): one big matmul beats B small ones
    out = x2 @ w                                          # (B*T, out)
    out += b
    return out.reshape(*x.shape[:-1], w.shape[1]), (x2, w)  # (..., out)


def linear_backward(dout, cache):
    x2, w = cache
    d2 = dout.reshape(-1, dout.shape[-1])                 # (B*T, out)
    dx = (d2 @ w.T).reshape(*dout.shape[:-1], w.shape[0])  # (..., in)
    dw = x2.T @ d2                                        # (in, out)
    db = d2.sum(axis=0)                                   # (out,)
    return dx, dw, db


def layernorm_forward(x, g, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)                   # (B, T, 1)
    xc = x - mu                                           # (B, T, C)
    var = (xc * xc).mean(axis=-1, keepdims=True)          # (B, T, 1) biased, as torch.nn.LayerNorm
    rstd = 1.0 / np.sqrt(var + eps)                       # (B, T, 1)
    xhat = xc * rstd                                      # (B, T, C)
    return xhat * g + b, (xhat, rstd, g)


def layernorm_backward(dout, cache):
    xhat, rstd, g = cache
    dg = (dout * xhat).reshape(-1, xhat.shape[-1]).sum(axis=0)  # (C,)
    db = dout.reshape(-1, dout.shape[-1]).sum(axis=0)          # (C,)
    dxhat = dout * g                                            # (B, T, C)
    # the mean and the variance both depend on every x: subtract their two paths
    dx = rstd * (dxhat
                 - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))  # (B, T, C)
    return dx, dg, db


GELU_C = math.sqrt(2.0 / math.pi)  # a Python float: NumPy scalars would upcast float32 to float64


def gelu_forward(x):
    u = GELU_C * (x + 0.044715 * (x * x * x))             # GPT-2's tanh approximation, not erf
    t = np.tanh(u)
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_backward(dout, cache):
    x, t = cache
    du_dx = GELU_C * (1.0 + 3 * 0.044715 * x * x)
    return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)


def causal_mask(T):
    """True where a position may NOT look: the future."""
    return np.triu(np.ones((T, T), dtype=bool), k=1)     # (T, T)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))       # shift for stability; softmax is shift-invariant
    e /= e.sum(axis=axis, keepdims=True)
    return e


def attention_forward(x, w_attn, b_attn, w_proj, b_proj, n_head, trace=None, prefix="attn."):
    B, T, C = x.shape
    hs = C // n_head
    qkv, c_attn_cache = linear_forward(x, w_attn, b_attn)   # (B, T, 3C)
    q, k, v = np.split(qkv, 3, axis=-1)                      # 3 x (B, T, C)
    # split heads: each head attends in its own hs-dim subspace
    q = q.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)   # (B, nh, T, hs)
    k = k.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)   # (B, nh, T, hs)
    v = v.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)   # (B, nh, T, hs)
    scale = 1.0 / math.sqrt(hs)                              # q.k sums hs terms: stop its variance growing with hs
    scores = q @ k.transpose(0, 1, 3, 2)                     # (B, nh, T, T)
    scores *= scale
    mask = causal_mask(T)                                    # (T, T)
    np.copyto(scores, -np.inf, where=mask)                   # (B, nh, T, T) the future gets zero weight (in place)
    att = softmax(scores, axis=-1)                           # (B, nh, T, T)
    y_heads = att @ v                                        # (B, nh, T, hs)
    y = y_heads.transpose(0, 2, 1, 3).reshape(B, T, C)       # (B, T, C) merge heads back side by side
    out, c_proj_cache = linear_forward(y, w_proj, b_proj)    # (B, T, C)
    if trace:
        for name, value in (("c_attn", qkv), ("q", q), ("k", k), ("v", v), ("scores", scores),
                            ("mask", mask), ("softmax", att), ("att_v", y_heads), ("merge", y),
                            ("c_proj", out)):
            trace(prefix + name, value)
    return out, (c_attn_cache, q, k, v, att, scale, c_proj_cache)


def attention_backward(dout, cache):
    c_attn_cache, q, k, v, att, scale, c_proj_cache = cache
    B, nh, T, hs = q.shape
    dy, dw_proj, db_proj = linear_backward(dout, c_proj_cache)           # (B, T, C)
    dy_heads = dy.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)            # (B, nh, T, hs)
    datt = dy_heads @ v.transpose(0, 1, 3, 2)                            # (B, nh, T, T)
    dv = att.transpose(0, 1, 3, 2) @ dy_heads                            # (B, nh, T, hs)
    # softmax backward; masked entries have att = 0, so they get no gradient
    dscores = datt - (datt * att).sum(axis=-1, keepdims=True)            # (B, nh, T, T)
    dscores *= att
    dscores *= scale
    dq = dscores @ k                                                     # (B, nh, T, hs)
    dk = dscores.transpose(0, 1, 3, 2) @ q                               # (B, nh, T, hs)
    merge = lambda t: t.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)     # (B, T, C)
    dqkv = np.concatenate([merge(dq), merge(dk), merge(dv)], axis=-1)   # (B, T, 3C)
    dx, dw_attn, db_attn = linear_backward(dqkv, c_attn_cache)           # (B, T, C)
    return dx, dw_attn, db_attn, dw_proj, db_proj


def logprob_forward(logits, targets):
    """log p(target) at every position: the one quantity every stage's loss is built from."""
    shifted = logits - logits.max(axis=-1, keepdims=True)                 # (B, T, V) exp can't overflow
    logsm = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (B, T, V) log-softmax
    logp = np.take_along_axis(logsm, targets[..., None], axis=-1)[..., 0]  # (B, T)
    return logp, (logsm, targets)


def logprob_backward(dlogp, cache):
    logsm, targets = cache
    # d log p(y) / d logits = onehot(y) - softmax; written as -(softmax - onehot) so that a loss scaling
    # dlogp by -1/n rounds exactly as the usual cross-entropy gradient (softmax - onehot) / n does
    dlogits = np.exp(logsm)                                               # (B, T, V) softmax
    np.put_along_axis(dlogits, targets[..., None],
                      np.take_along_axis(dlogits, targets[..., None], axis=-1) - 1, axis=-1)
    dlogits *= -np.asarray(dlogp)[..., None]                              # (B, T, V) chain rule, per position
    return dlogits.astype(logsm.dtype, copy=False)


def nll_forward(logp, mask=None):
    """Mean of -log p over the positions where mask is true.

    One mean over every selected token of the batch (as Hugging Face computes it), not a mean of per-sequence
    means: a long answer counts for more tokens than a short one."""
    if mask is None:
        mask = np.ones(logp.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)                                   # (B, T)
    n = int(mask.sum())
    if n == 0:
        raise ValueError("loss mask selects no position: nothing to learn from")
    loss = -(logp * mask).sum() / n
    return loss, (mask, n)


def nll_backward(cache):
    mask, n = cache
    return -(mask / n)                                                    # (B, T) float64: exact 1/n


# ----------------------------------------------------------------------------- 3. one transformer block

def mlp_forward(x, params, p, trace=None):
    """The block's second residual branch, MLP(LN_2(x)): two linears with a GELU between, 4C wide inside."""
    m_in, ln_2 = layernorm_forward(x, params[p + "ln_2.g"], params[p + "ln_2.b"])              # (B, T, C)
    h, c_fc = linear_forward(m_in, params[p + "mlp.c_fc.w"], params[p + "mlp.c_fc.b"])         # (B, T, 4C)
    g, gelu = gelu_forward(h)                                                                   # (B, T, 4C)
    m, c_proj = linear_forward(g, params[p + "mlp.c_proj.w"], params[p + "mlp.c_proj.b"])      # (B, T, C)
    if trace:
        for name, value in (("ln_2", m_in), ("mlp.c_fc", h), ("mlp.gelu", g), ("mlp.c_proj", m)):
            trace(p + name, value)
    return m, (ln_2, c_fc, gelu, c_proj)


def mlp_backward(dm, cache, p, grads):
    ln_2, c_fc, gelu, c_proj = cache
    dg, grads[p + "mlp.c_proj.w"], grads[p + "mlp.c_proj.b"] = linear_backward(dm, c_proj)
    dh = gelu_backward(dg, gelu)
    dm_in, grads[p + "mlp.c_fc.w"], grads[p + "mlp.c_fc.b"] = linear_backward(dh, c_fc)
    dx, grads[p + "ln_2.g"], grads[p + "ln_2.b"] = layernorm_backward(dm_in, ln_2)
    return dx


def block_forward(params, x, i, n_head, trace=None):
    p = f"h.{i}."
    a_in, ln_1 = layernorm_forward(x, params[p + "ln_1.g"], params[p + "ln_1.b"])              # (B, T, C)
    a, attn = attention_forward(a_in, params[p + "attn.c_attn.w"], params[p + "attn.c_attn.b"],
                                params[p + "attn.c_proj.w"], params[p + "attn.c_proj.b"],
                                n_head, trace, prefix=p + "attn.")                              # (B, T, C)
    x = x + a                                                                                   # (B, T, C) residual
    if trace:
        trace(p + "ln_1", a_in)
        trace(p + "res_1", x)
    m, mlp = mlp_forward(x, params, p, trace)                                                   # (B, T, C)
    out = x + m                                                                                 # (B, T, C) residual
    if trace:
        trace(p + "res_2", out)
    return out, (ln_1, attn, mlp)


def block_backward(dout, cache, i, grads):
    ln_1, attn, mlp = cache
    p = f"h.{i}."
    # out = x + mlp(ln_2(x)): the residual passes dout straight through, the MLP branch adds to it
    dx = dout + mlp_backward(dout, mlp, p, grads)                                               # (B, T, C)
    # x = x_in + attn(ln_1(x_in))
    da_in, grads[p + "attn.c_attn.w"], grads[p + "attn.c_attn.b"], \
        grads[p + "attn.c_proj.w"], grads[p + "attn.c_proj.b"] = attention_backward(dx, attn)
    dx_ln1, grads[p + "ln_1.g"], grads[p + "ln_1.b"] = layernorm_backward(da_in, ln_1)
    return dx + dx_ln1                                                                          # (B, T, C)


# ----------------------------------------------------------------------------- 4. the whole network

def check_idx(idx, config):
    """Token ids as a (B, T) integer array, in the vocabulary and no longer than block_size."""
    idx = np.asarray(idx)
    if idx.ndim == 1:
        idx = idx[None, :]
    if idx.ndim != 2:
        raise ValueError(f"idx must have shape (B, T), got {idx.shape}")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must hold integer token ids, got dtype {idx.dtype}")
    if idx.shape[1] > config.block_size:
        raise ValueError(f"sequence length T={idx.shape[1]} exceeds block_size={config.block_size}")
    if idx.size and (idx.min() < 0 or idx.max() >= config.vocab_size):
        bad = idx[(idx < 0) | (idx >= config.vocab_size)][0]
        raise ValueError(f"token id {bad} is outside the vocabulary [0, {config.vocab_size})")
    return idx.astype(np.int64, copy=False)


def forward(params, idx, config, trace=None):
    """Logits (B, T, V) for token ids (B, T); `trace(name, array)` is called on every named intermediate."""
    idx = check_idx(idx, config)
    x, emb = embedding_forward(params["wte"], params["wpe"], idx)        # (B, T, C)
    if trace:
        trace("embed", x)
    blocks = []
    for i in range(config.n_layer):
        x, block = block_forward(params, x, i, config.n_head, trace)     # (B, T, C)
        blocks.append(block)
    xf, ln_f = layernorm_forward(x, params["ln_f.g"], params["ln_f.b"])  # (B, T, C)
    logits = xf @ params["wte"].T                                        # (B, T, V) weight tying: wte reads out
    if trace:
        trace("ln_f", xf)
        trace("logits", logits)
    return logits, (emb, blocks, ln_f, xf)


def backward(dlogits, cache, params, config):
    """Gradients of every parameter, given dloss/dlogits and forward's cache."""
    emb, blocks, ln_f, xf = cache
    grads = {}
    dxf = dlogits @ params["wte"]                                        # (B, T, C)
    dwte_head = xf.reshape(-1, xf.shape[-1]).T @ dlogits.reshape(-1, dlogits.shape[-1])  # (C, V)
    dx, grads["ln_f.g"], grads["ln_f.b"] = layernorm_backward(dxf, ln_f)
    for i in reversed(range(config.n_layer)):
        dx = block_backward(dx, blocks[i], i, grads)                     # (B, T, C)
    dwte, grads["wpe"] = embedding_backward(dx, emb)
    grads["wte"] = dwte + dwte_head.T                                    # tied: the sum of both uses
    return {name: grads[name] for name in params}                        # same order as params


def token_logps(params, idx, targets, config, temperature=1.0):
    """log p(targets[b, t] | idx[b, :t+1]) for every position, (B, T), and the cache to differentiate it.

    Every stage's loss is a function of these numbers; its gradient with respect to them goes back through
    `token_logps_backward`, so the network's backward is the same for pretraining, SFT, DPO and GRPO.
    temperature: the log-probs of the distribution softmax(logits / temperature), the one GRPO samples from
    (TRL divides the logits by it in the loss too, so the loss scores the sampler's own distribution)."""
    logits, cache = forward(params, idx, config)                         # (B, T, V)
    targets = check_idx(targets, config)
    if targets.shape != logits.shape[:2]:
        raise ValueError(f"targets shape {targets.shape} must match idx shape {logits.shape[:2]}")
    if temperature != 1.0:
        logits = logits / temperature                                    # (B, T, V)
    logp, lp = logprob_forward(logits, targets)                          # (B, T)
    return logp, (cache, lp, temperature)


def token_logps_backward(dlogp, cache, params, config):
    """Gradients of every parameter, given dloss/dlogp (B, T) and token_logps' cache."""
    fwd, lp, temperature = cache
    dlogits = logprob_backward(dlogp, lp)                                # (B, T, V)
    if temperature != 1.0:
        dlogits = dlogits / temperature                                  # (B, T, V) through logits / temperature
    return backward(dlogits, fwd, params, config)


def token_entropy(cache):
    """The policy's entropy at every position, (B, T), from token_logps' cache: -Σ p log p over the vocabulary
    (free, the log-softmax is already there). A metric, not differentiated."""
    logsm = cache[1][0]                                                  # (B, T, V)
    return -(np.exp(logsm) * logsm).sum(axis=-1)                         # (B, T)


def loss_and_grads(params, idx, targets, config, mask=None):
    """Mean next-token cross-entropy over masked positions and its gradient for every parameter."""
    if mask is not None and np.shape(mask) != np.shape(targets):
        raise ValueError(f"mask shape {np.shape(mask)} must match targets shape {np.shape(targets)}")
    logp, cache = token_logps(params, idx, targets, config)              # (B, T)
    loss, nll = nll_forward(logp, mask)
    grads = token_logps_backward(nll_backward(nll), cache, params, config)
    return float(loss), grads


# ----------------------------------------------------------------------------- 5. the model object

class GPT:
    """Config + params; the maths lives in the functions above."""

    def __init__(self, config, seed=0, dtype=np.float32, params=None):
        self.config = config
        self.params = init_params(config, seed, dtype) if params is None else params

    def forward(self, idx, trace=None):
        return forward(self.params, idx, self.config, trace)

    def loss_and_grads(self, idx, targets, mask=None):
        return loss_and_grads(self.params, idx, targets, self.config, mask)

    def num_params(self):
        return sum(p.size for p in self.params.values())


# ----------------------------------------------------------------------------- 6. Hugging Face names

def _hf_name(name):
    """`h.0.attn.c_attn.w` -> `transformer.h.0.attn.c_attn.weight`."""
    if name in ("wte", "wpe"):
        return f"transformer.{name}.weight"
    stem, leaf = name.rsplit(".", 1)
    return f"transformer.{stem}.{ {'w': 'weight', 'g': 'weight', 'b': 'bias'}[leaf] }"


def to_hf_state_dict(params):
    """Any params-shaped dict (weights or grads) under GPT2LMHeadModel's names and shapes."""
    sd = {_hf_name(name): value for name, value in params.items()}
    sd["lm_head.weight"] = params["wte"]   # tied: the same array under both names
    return sd


def from_hf_state_dict(state_dict):
    """The inverse of to_hf_state_dict; accepts torch tensors or arrays, ignores HF's attention buffers."""
    n_layer = 1 + max(int(k.split(".")[2]) for k in state_dict if k.startswith("transformer.h."))
    V, C = np.asarray(state_dict["transformer.wte.weight"]).shape
    T = np.asarray(state_dict["transformer.wpe.weight"]).shape[0]
    # n_head is not in the weights; param names don't depend on it
    names = param_shapes(GPTConfig(vocab_size=V, block_size=T, n_layer=n_layer, n_head=1, n_embd=C))
    to_np = lambda v: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
    if "lm_head.weight" in state_dict and not np.array_equal(to_np(state_dict["lm_head.weight"]),
                                                              to_np(state_dict["transformer.wte.weight"])):
        raise ValueError("lm_head.weight differs from transformer.wte.weight: GPT-2 ties them, gpt_mini can't load an untied head")
    out = {}
    for name in names:
        out[name] = to_np(state_dict[_hf_name(name)])
    return out
