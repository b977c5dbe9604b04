"""The training step every stage shares: loss and grads -> clip -> schedule -> AdamW.

State is explicit, `train_step(state, batch) -> state, metrics`, so a widget can run a few steps, hand control
back to the page, and carry on where it stopped. Stages differ only in their batches and, from DPO on, in the
`loss_fn` they pass.
"""

import ctypes
import sys
from dataclasses import dataclass, field

import numpy as np

from .model import cross_entropy_forward, forward, loss_and_grads
from .optim import AdamWConfig, adamw_init, adamw_step, clip_grad_norm, lr_at


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    weight_decay: float = 0.1
    seed: int = 0


@dataclass
class TrainState:
    params: dict
    opt: dict = field(default=None)
    step: int = 0

    def __post_init__(self):
        if self.opt is None:
            self.opt = adamw_init(self.params)


def next_token_loss(params, batch, config):
    """Pretraining, SFT and CoT all use this: cross-entropy on the positions the batch's mask selects."""
    idx, targets, mask = batch
    loss, grads = loss_and_grads(params, idx, targets, config, mask)
    return loss, grads, {}


def train_step(state, batch, config, hp, loss_fn=next_token_loss):
    """One optimizer step on one batch; returns the state and what happened (loss, grad norm, lr)."""
    loss, grads, extra = loss_fn(state.params, batch, config)
    grad_norm = clip_grad_norm(grads, hp.grad_clip) if hp.grad_clip else None
    lr = lr_at(state.step, hp.lr, hp.steps, hp.warmup, hp.min_lr_ratio)
    # the step size is the schedule's `lr`; AdamWConfig carries only the betas, eps and weight decay here
    adamw_step(state.params, grads, state.opt, lr, AdamWConfig(weight_decay=hp.weight_decay))
    state.step += 1
    return state, {"step": state.step, "loss": float(loss), "grad_norm": grad_norm, "lr": lr, **extra}


def use_heap_for_temporaries():
    """Native speed-up: let glibc reuse heap memory for NumPy's big temporaries instead of fresh mmaps.

    By default each array over ~128 KiB is a new mmap that page-faults on first touch; a training step makes
    hundreds of them. Raising the thresholds roughly triples step throughput here (bench/train_step.py).
    A no-op where glibc isn't the allocator (macOS, Windows, Pyodide).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    return all(libc.mallopt(opt, value) == 1 for opt, value in
               ((M_MMAP_THRESHOLD, 256 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20)))


def mean_loss(params, config, batches):
    """Average next-token loss over batches, weighting each by its number of scored positions."""
    total, count = 0.0, 0
    for idx, targets, mask in batches:
        logits, _ = forward(params, idx, config)
        n = targets.size if mask is None else int(np.sum(mask))
        if n:
            loss, _ = cross_entropy_forward(logits, targets, mask)
            total += float(loss) * n
            count += n
    return total / max(count, 1)
