"""AdamW, gradient-norm clipping and the warmup + cosine learning-rate schedule.

Written to match torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ step for step (tests/test_optim.py),
so that a reader can trust the training curves are what PyTorch would give.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdamWConfig:
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1


def decays(name, value):
    """Weight decay applies to matrices only: biases and LayerNorm gains stay free, as in nanoGPT."""
    return value.ndim >= 2


def adamw_init(params):
    """Optimizer state: first and second moment per parameter, and the step count."""
    return {"m": {k: np.zeros_like(p) for k, p in params.items()},
            "v": {k: np.zeros_like(p) for k, p in params.items()},
            "t": 0}


def adamw_step(params, grads, state, lr, hp=AdamWConfig()):
    """One AdamW update, in place on params and state (returned for explicitness)."""
    t = state["t"] + 1
    bc1, bc2 = 1 - hp.beta1 ** t, 1 - hp.beta2 ** t
    for k, p in params.items():
        g, m, v = grads[k], state["m"][k], state["v"][k]
        if hp.weight_decay and decays(k, p):
            p *= 1 - lr * hp.weight_decay                       # decoupled: shrinks p, not the gradient
        m *= hp.beta1
        m += (1 - hp.beta1) * g
        v *= hp.beta2
        v += (1 - hp.beta2) * (g * g)
        denom = np.sqrt(v) / math.sqrt(bc2) + hp.eps
        p -= (lr / bc1) * (m / denom)
    state["t"] = t
    return params, state


def global_norm(grads):
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


def clip_grad_norm(grads, max_norm):
    """Scale all grads so their joint L2 norm is at most max_norm; returns the norm before clipping."""
    norm = global_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return norm


def lr_at(step, max_lr, total_steps, warmup_steps=0, min_lr_ratio=0.1):
    """Linear warmup to max_lr, then cosine decay to min_lr_ratio * max_lr at total_steps."""
    if warmup_steps and step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return max_lr * min_lr_ratio
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return max_lr * (min_lr_ratio + (1 - min_lr_ratio) * cosine)
