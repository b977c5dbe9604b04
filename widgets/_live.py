"""What every live widget shares: its training sessions, knob checks, the divergence and stall checks, and the
next-token distribution it draws.

Not a widget itself: the worker only calls modules whose names start with a letter. A widget that trains keeps
one `LiveRun` per session in a `Sessions` registry and advances it a chunk per call with `LiveRun.advance(n)`,
which is `gpt_mini.train.train` run up to n steps further: the same loop the stage scripts use, never a copy.
"""

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from gpt_mini import world
from gpt_mini.sample import next_token_probs
from gpt_mini.train import History, train

# ----------------------------------------------------------------------------- knobs


def number(name, value, lo, hi, integer=False):
    """A knob's number, checked: a readable error names the knob, the range and what came instead."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if integer and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
    return int(value) if integer else float(value)


def choice(name, value, options):
    """A knob that takes one of a few values."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- sessions

class Sessions:
    """Live sessions by id; the oldest are dropped past `limit`, so a page that keeps resetting can't grow memory."""

    def __init__(self, limit=4):
        self.limit, self._runs, self._ids = limit, {}, itertools.count(1)

    def add(self, run):
        sid = next(self._ids)
        self._runs[sid] = run
        while len(self._runs) > self.limit:
            del self._runs[min(self._runs)]
        return sid

    def get(self, sid):
        if sid not in self._runs:
            raise KeyError(f"no training session {sid!r} (it was reset or replaced; press Train again)")
        return self._runs[sid]

    def close(self, sid):
        self._runs.pop(sid, None)
        return {"closed": sid}

    def __contains__(self, sid):
        return sid in self._runs

    def __len__(self):
        return len(self._runs)


@dataclass
class LiveRun:
    """A training run a widget advances a chunk at a time; status is ready | training | done | diverged.

    diverge_above: a batch loss above this (or not finite) ends the run as diverged. Widgets set it from the
    untrained model's loss (ln V plus a margin): a loss worse than knowing nothing comes from an overshoot, not
    from descent, so the check catches the confidently-wrong models Adam produces at too large a rate, which
    rarely reach inf or NaN."""
    state: object                   # gpt_mini.train.TrainState
    hp: object                      # gpt_mini.train.TrainConfig: its `steps` is where the run ends
    config: object                  # the model's GPTConfig
    next_batch: object              # () -> batch
    loss_fn: object                 # (params, batch, config) -> (loss, grads, metrics)
    diverge_above: float = math.inf
    window: int = 20                # losses kept for the stall check
    status: str = "ready"
    diverged: dict = None           # the metrics of the step that diverged
    explanation: dict = None        # the widget's words for it (what happened, why, what to try)
    recent: list = field(default_factory=list)

    def advance(self, n):
        """Up to n more steps (never past hp.steps); returns their History (empty once done or diverged)."""
        if self.status not in ("ready", "training"):
            return History()
        history = train(self.state, self.next_batch, self.config, self.hp, self.loss_fn,
                        until=self.state.step + n, diverge_above=self.diverge_above, on_diverge="stop")
        self.recent = (self.recent + history.losses)[-self.window:]
        if history.diverged:
            self.status, self.diverged = "diverged", history.diverged
        else:
            self.status = "done" if self.state.step >= self.hp.steps else "training"
        return history

    def stalled(self, baseline, after):
        """The recent mean loss if, `after` steps in, it is still above `baseline`; else None."""
        if self.status == "diverged" or self.state.step < after or not self.recent:
            return None
        recent = float(np.mean(self.recent))
        return recent if recent > baseline else None


# ----------------------------------------------------------------------------- text in, distribution out

def label(ch):
    """A character as a bar label a reader can see: space and newline have no ink of their own."""
    return {" ": "␣", "\n": "↵"}.get(ch, ch)


def describe(ch):
    return {" ": "space", "\n": "newline (end of document)"}.get(ch, repr(ch))


def encode_prompt(prompt, start="\n"):
    """Ids of `start` + prompt, or (None, problem) when the world's alphabet can't spell the prompt."""
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
    return world.tokenizer().encode(start + prompt), None


def distribution(params, config, prompt, top_k=10):
    """The model's top-k next characters after a prompt (read at the start of a document), or the prompt's problem."""
    ids, problem = encode_prompt(prompt)
    if problem:
        return {"ok": False, "prompt": prompt, "problem": problem}
    tok = world.tokenizer()
    p = next_token_probs(params, config, ids)            # the model sees at most block_size of them
    order = np.argsort(-p, kind="stable")[:top_k]
    top = []
    for i in order:
        ch = tok.decode([int(i)])
        top.append({"char": ch, "label": label(ch), "name": describe(ch), "p": float(p[i])})
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = float(-np.sum(np.where(p > 0, p * np.log(p), 0.0)))
    return {"ok": True, "prompt": prompt, "top": top, "top_mass": float(p[order].sum()), "entropy": entropy,
            "context_chars": min(len(ids), config.block_size), "truncated": len(ids) > config.block_size}
