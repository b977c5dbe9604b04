"""The training loop every stage shares: loss and grads -> clip -> schedule -> AdamW, step after step.

State is explicit, `train_step(state, batch) -> state, metrics`, and `train(state, next_batch, ...)` runs it up to
a given step, so a widget can run a few steps, hand control back to the page, and carry on where it stopped.
Stages differ only in their batches and the `loss_fn` they pass:

    loss_fn(params, batch, config) -> (loss, grads, metrics)

Every stage's loss_fn is a function of token log-probs (model.token_logps) whose gradient goes back through
model.token_logps_backward: pretraining's, SFT's and CoT's is below (`next_token_loss`), DPO's and GRPO's
live in their stage files.
"""

import ctypes
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .model import loss_and_grads, nll_forward, token_logps
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
    """-mean of log p(next token) over the positions the batch's mask selects (every one when it is None).

    Pretraining, SFT and CoT share this loss: they differ only in their batches and the mask they carry."""
    idx, targets, mask = batch
    loss, grads = loss_and_grads(params, idx, targets, config, mask)   # token_logps -> nll -> backward
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


@dataclass
class History:
    """What `train` hands back: every step's metrics, the logged curve, evaluations, and what stopped it."""
    metrics: list = field(default_factory=list)    # train_step's metrics, one dict per step
    curve: list = field(default_factory=list)      # [step, mean loss over the last `curve_every` steps]
    evals: list = field(default_factory=list)      # [step, evaluate(state)]
    seconds: float = 0.0                           # time spent in train_step (not in evals or snapshots)
    diverged: dict = None                          # the metrics of the step that diverged, if one did

    @property
    def losses(self):
        return [m["loss"] for m in self.metrics]


def train(state, next_batch, config, hp, loss_fn=next_token_loss, *, until=None, curve_every=10,
          diverge_above=math.inf, on_diverge="raise", snapshots=(), on_snapshot=None,
          eval_every=0, evaluate=None, progress=None):
    """Train from `state.step` up to step `until` (default: the schedule's end, hp.steps).

    next_batch()           the next training batch, whatever shape the loss_fn takes
    diverge_above          a loss above this (or not finite) is divergence: `on_diverge="raise"` raises
                           FloatingPointError (stage scripts), `"stop"` records it in History.diverged and returns
    snapshots/on_snapshot  on_snapshot(step, loss) at those steps (step 0 before any training, loss None)
    eval_every/evaluate    evaluate(state) -> dict every eval_every steps, kept in History.evals
    progress               a tqdm bar's description (native only), or None for silence
    """
    until = hp.steps if until is None else min(until, hp.steps)
    history, recent = History(), []
    bar = None
    if progress:
        from tqdm import tqdm   # a native nicety; the browser never asks for it
        bar = tqdm(total=until - state.step, desc=progress, unit="step")
    if state.step in snapshots and on_snapshot:
        on_snapshot(state.step, None)
    tokens = 0
    while state.step < until:
        batch = next_batch()
        t0 = time.perf_counter()
        state, metrics = train_step(state, batch, config, hp, loss_fn)
        history.seconds += time.perf_counter() - t0
        step, loss = metrics["step"], metrics["loss"]
        if not math.isfinite(loss) or loss > diverge_above:
            if on_diverge == "raise":
                raise FloatingPointError(f"loss became {loss} at step {step}: lower the learning rate")
            history.metrics.append(metrics)
            history.diverged = metrics
            break
        history.metrics.append(metrics)
        recent.append(loss)
        if step % curve_every == 0:
            history.curve.append([step, float(np.mean(recent))])
            recent = []
        if evaluate and eval_every and step % eval_every == 0:
            history.evals.append([step, evaluate(state)])
        if bar:
            tokens += np.size(batch.input_ids if hasattr(batch, "input_ids") else batch[0])  # tuple or named
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / history.seconds:,.0f}")
        if step in snapshots and on_snapshot:
            on_snapshot(step, loss)
    if bar:
        bar.close()
    return history


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
        n = targets.size if mask is None else int(np.sum(mask))
        if n:
            logp, _ = token_logps(params, idx, targets, config)
            loss, _ = nll_forward(logp, mask)
            total += float(loss) * n
            count += n
    return total / max(count, 1)
