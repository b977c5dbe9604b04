"""Drag the mask boundary: which tokens of a chat conversation the SFT loss counts, and what the model learns.

The widget shows a real training conversation in the chat template (gpt_mini/chat.py), token by token, coloured by
`01_sft.loss_weights(ids, weights, mask, shift)`: the only thing SFT adds to pretraining's loss. It then fine-tunes
the shipped small pretrained model (checkpoints/00_pretrain_widget.npz) live with that mask, on 01_sft's own
training conversations and batches, with `train.next_token_loss`, and scores it now and then on a fixed slice of
01_sft's held-out prompts (greedy replies, as a chat program runs the model).

JSON in, JSON out, no DOM. Training state lives here, in `_SESSIONS`, keyed by the id `start` returns:
    info()                                        knob ranges, masks, presets, model size, the eval slice's size
    tokens(conversation, mask, shift)             the token view: every token, whether the loss counts it
    start(path, mask, shift, lr, steps, seed)     a session from the checkpoint at `path` (loaded once)
    step(session, n)                              n more steps: losses, status (training | done | diverged)
    evaluate(session, offset, count)              replies for a slice of the eval set; the last slice adds the
                                                  metrics and the diagnosis (what this mask did, measured)
    reference(path)                               the correct mask's figures from results/01_sft.json ("widget")
A mask that breaks the chat model, like a learning rate that blows training up, comes back explained in words
(`diagnosis`, `diverged`), never as garbage or an exception.
"""

import json
import math
from dataclasses import replace

import numpy as np

from gpt_mini import chat, checkpoint, stage, world
from gpt_mini.model import param_shapes, token_logps
from gpt_mini.train import TrainState, next_token_loss

from ._live import LiveRun, Sessions, choice, number

__all__ = ["info", "tokens", "start", "step", "evaluate", "close", "reference"]

_stage = stage("01_sft")
# The live run is 01_sft's WIDGET configuration (data, lr, steps, warmup) in batches of BATCH_SIZE instead of its 16.
# In Chromium a step of 8 conversations takes less than half the time of a step of 16 (105 against 300 ms, both on a
# busy machine: bench/sft_widget.py), and the model ends its turns and first answers a held-out prompt after about as
# many steps (step 100 or 150 over seeds 0-4, against 100 or 150 with 16; 100 for the default seed), so sooner after
# Train: 19-30 s on the page against 47-73 s with 16.
BATCH_SIZE = 8
CFG = replace(_stage.WIDGET, train=replace(_stage.WIDGET.train, batch_size=BATCH_SIZE))
CHECKPOINT = "checkpoints/" + CFG.init      # relative to the site root (browser) or the repository (natively)

MASKS = ("assistant", "all", "no_end")
MASK_LABELS = {"assistant": "assistant only (correct)", "all": "every token (prompt included)",
               "no_end": "assistant, without its end-of-turn"}
SHIFT_RANGE = (-6, 6)
LR_LADDER = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
STEPS_RANGE = (50, 600)
MAX_CHUNK = 50
MAX_SESSIONS = 4
# The token view's conversations: training conversations picked for variety (a sum, a fact, two exchanges; not one
# of the few refusals, world.REFUSAL, which the lesson does not discuss).
PRESETS = 6

# The knobs a page gets when its directive sets none (build.py reads this literal; tests check lr and steps are
# WIDGET's).
DEFAULT_KNOBS = {"conversation": 0, "mask": "assistant", "shift": 0, "lr": 0.002, "steps": 300, "seed": 0}

# The eval slice: the first few of each of 01_sft's held-out sets, always the same, scored EVAL_CHUNK at a time
# so that one call stays short in wasm.
EVAL_PER_SET = {"held_out_facts": 4, "new_phrasings": 6, "held_out_sums": 8, "second_turn": 4}
EVAL_CHUNK = 6
EVAL_EVERY = 50               # steps between evaluations while training (and once at the end)
MAX_NEW = 24                  # the longest expected reply is 21 tokens + <|end|>

# Divergence: a batch loss above ln V + DIVERGE_MARGIN, worse than guessing uniformly among the 47 tokens, comes from
# an overshoot, not from descent. Except in the first batches: the base model never predicted a special token, and a
# mask that counts several per reply starts high. Measured natively (batches of 8, 30 seeds, first 40 steps): the
# highest batch loss of a run that then trains well (lr 2e-3 to 3e-2) is 5.4 nats (shift -2, in its first 4 steps;
# correct mask 3.8), and after warmup 4.2 (lr 3e-2; 1.7 at lr <= 5e-3). Runs at lr 0.3 and 1 reach 8-22 and 70-130.
# So during warmup (lr still ramping up, so a high loss is no overshoot yet) the line is ln V + WARMUP_MARGIN.
DIVERGE_MARGIN = 1.0          # ln 47 + 1 = 4.85 nats
WARMUP_MARGIN = 3.0           # ln 47 + 3 = 6.85 nats

_SESSIONS = Sessions(MAX_SESSIONS)
_cache = {}


# ----------------------------------------------------------------------------- data

def _convs():
    if "convs" not in _cache:
        _cache["convs"] = _stage.conversations(CFG, 64)   # block size of the widget's base (checked in start)
    return _cache["convs"]


def _presets():
    """A few training conversations for the token view: alternately a sum and a fact, then two-exchange ones."""
    if "presets" not in _cache:
        convs = _convs()
        one = [c for c in convs if len(c) == 2]
        sums = [c for c in one if "+" in c[0][1]][:2]
        facts = [c for c in one if "+" not in c[0][1] and c[1][1] != world.REFUSAL][:2]
        two = [c for c in convs if len(c) == 4][:PRESETS - 4]
        _cache["presets"] = [sums[0], facts[0], two[0], sums[1], facts[1], two[1]][:PRESETS]
    return _cache["presets"]


def _eval_items():
    if "eval" not in _cache:
        sets = _stage.eval_sets()
        _cache["eval"] = [(name, turns, exp) for name, k in EVAL_PER_SET.items() for turns, exp in sets[name][:k]]
    return _cache["eval"]


def _check_mask(mask, shift):
    return choice("mask", mask, MASKS), number("shift", shift, *SHIFT_RANGE, integer=True)


# ----------------------------------------------------------------------------- knobs

def info():
    """Everything the UI needs before training: masks, ranges, presets, the model's size, the eval slice."""
    tok = world.tokenizer()
    presets = []
    for i, turns in enumerate(_presets()):
        presets.append({"value": i, "label": " / ".join(text for _, text in turns)})
    return {"defaults": DEFAULT_KNOBS, "masks": [{"value": m, "label": MASK_LABELS[m]} for m in MASKS],
            "shift_range": list(SHIFT_RANGE), "lr_ladder": list(LR_LADDER), "steps_range": list(STEPS_RANGE),
            "presets": presets, "checkpoint": CHECKPOINT, "lesson_lr": CFG.train.lr, "lesson_steps": CFG.train.steps,
            "batch_size": CFG.train.batch_size, "warmup": CFG.train.warmup, "train_conversations": CFG.n_train,
            "eval_size": len(_eval_items()), "eval_chunk": EVAL_CHUNK, "eval_sets": EVAL_PER_SET,
            "specials": list(tok.specials), "vocab_size": tok.vocab_size, "eval_every": EVAL_EVERY,
            "max_chunk": MAX_CHUNK}


# ----------------------------------------------------------------------------- the token view

CHIP = {chat.USER: "user", chat.ASSISTANT: "assistant", chat.END: "end", "<|pad|>": "pad"}


def _token(tok, i):
    text = tok.decode([i])
    if i < len(tok.specials):
        return {"text": text, "label": CHIP[text], "special": True, "name": f"the {CHIP[text]} token {text}"}
    return {"text": text, "label": {" ": "␣"}.get(text, text), "special": False,
            "name": "space" if text == " " else repr(text)}


def tokens(conversation=0, mask="assistant", shift=0):
    """The token view: each token of a training conversation, its role, whether the template learns it and whether
    the chosen mask counts it (01_sft.loss_weights), with the difference named: leaked (prompt counted) or cut
    (reply not counted). The very first token is never a target (nothing precedes it), whatever the mask."""
    mask, shift = _check_mask(mask, shift)
    presets = _presets()
    conversation = number("conversation", conversation, 0, len(presets) - 1, integer=True)
    turns = presets[conversation]
    ids, weights = chat.render(turns)
    counts = _stage.loss_weights(ids, weights, mask, shift)
    correct = _stage.loss_weights(ids, weights, "assistant", 0)
    tok = world.tokenizer()
    out, role = [], None
    for t, i in enumerate(ids):
        d = _token(tok, i)
        if d["special"] and d["label"] in ("user", "assistant"):
            role = d["label"]
        c, w = bool(counts[t]) and t > 0, bool(correct[t])
        d.update(role=role, counts=c, template=w, kind="leaked" if c and not w else "cut" if w and not c else
                 "counted" if c else "ignored")
        out.append(d)
    n = sum(d["counts"] for d in out)
    return {"conversation": conversation, "mask": mask, "shift": shift, "turns": [list(t) for t in turns],
            "tokens": out, "counted": n, "total": len(out),
            "leaked": sum(d["kind"] == "leaked" for d in out), "cut": sum(d["kind"] == "cut" for d in out),
            "effect": _mask_effect(mask, shift)}


def _mask_effect(mask, shift):
    """What the chosen mask teaches, in words, before any training (the measured diagnosis comes with evaluate)."""
    if mask == "all":
        return {"kind": "leak", "text": "Every token counts, the user's turns and role tokens included: the model is "
                "trained to write the user's questions and to open the user's turn after its own reply."}
    parts = []
    if mask == "no_end":
        parts.append({"kind": "no_end", "text": "The <|end|> closing each reply is not counted: nothing teaches the "
                      "model to stop, so its replies run on until the length limit."})
    if shift < 0:
        parts.append({"kind": "leak", "text": f"The boundary leaks {-shift} prompt token{'s' * (shift < -1)} before "
                      f"each reply into the loss (the <|assistant|> role token, then the user's <|end|>, then the "
                      f"end of the user's question): the model learns to write the prompt's side."})
    if shift > 0:
        parts.append({"kind": "cut", "text": f"The first {shift} token{'s' * (shift > 1)} of each reply "
                      f"{'are' if shift > 1 else 'is'} not counted: the model is never taught how an answer "
                      f"starts."})
    if not parts:
        return {"kind": None, "text": "The correct mask: the assistant's text and the <|end|> closing it, nothing "
                "else. The model learns to answer, and to stop."}
    return {"kind": parts[0]["kind"], "text": " ".join(p["text"] for p in parts)}


# ----------------------------------------------------------------------------- a training session

def _base(path):
    if path not in _cache:
        config, _, params, _ = checkpoint.load(path)
        _cache[path] = (config, params)
    config, params = _cache[path]
    return config, {k: v.copy() for k, v in params.items()}


def start(path=CHECKPOINT, mask="assistant", shift=0, lr=DEFAULT_KNOBS["lr"], steps=DEFAULT_KNOBS["steps"],
          seed=DEFAULT_KNOBS["seed"]):
    """A session: the pretrained base (read from `path`, the browser worker's copy of CHECKPOINT) and 01_sft's
    batches under the chosen mask. Returns the session id and what the run is."""
    mask, shift = _check_mask(mask, shift)
    lr = number("lr", lr, LR_LADDER[0], LR_LADDER[-1])
    steps = number("steps", steps, *STEPS_RANGE, integer=True)
    seed = number("seed", seed, 0, 2**31 - 1, integer=True)
    if not isinstance(path, str) or not path.endswith(".npz"):
        raise ValueError(f"the base model is a .npz checkpoint file, got {path!r}")
    config, params = _base(path)
    if config.block_size != 64:
        raise ValueError(f"the widget's base model has a 64-token context, {path} has {config.block_size}")
    cfg = replace(CFG, mask=mask, shift=shift, train=replace(CFG.train, lr=lr, steps=steps, seed=seed))
    next_batch, _ = _stage.batches(_convs(), cfg, np.random.default_rng(seed))
    run = LiveRun(TrainState(params), cfg.train, config, next_batch, next_token_loss)
    run.sft = {"mask": mask, "shift": shift, "evals": [], "partial": None}
    session = _SESSIONS.add(run)
    return {"session": session, "step": 0, "steps": steps, "lr": lr, "seed": seed, "mask": mask, "shift": shift,
            "status": "ready", "model": config.to_dict(),
            "params": int(sum(int(np.prod(s)) for s in param_shapes(config).values()))}


def _explain_divergence(step, loss, lr, vocab_size):
    what = (f"At step {step} the batch loss became {loss:.3g} nats" if math.isfinite(loss)
            else f"At step {step} the loss became {loss} (not a number)")
    return {"step": step, "loss": loss, "lr": lr,
            "what": what + f": worse than guessing uniformly among {vocab_size} tokens "
                    f"({math.log(vocab_size):.2f} nats), from a pretrained model that started far below that. "
                    f"Training stopped.",
            "why": f"Adam moves every weight by about the learning rate each step. At lr = {lr:g} one step is "
                   f"larger than the pretrained weights themselves: it throws away what pretraining learned and "
                   f"lands the model somewhere confidently wrong.",
            "try": f"Lower the learning rate: {CFG.train.lr:g} (this widget's default) fine-tunes steadily."}


def step(session, n=5):
    """Up to n more training steps (never past the session's `steps`); stops at the first sign of divergence."""
    run = _SESSIONS.get(session)
    n = number("n", n, 1, MAX_CHUNK, integer=True)
    metrics, end = [], run.state.step + n
    while run.state.step < end and run.status in ("ready", "training"):
        # the divergence line drops when warmup ends: a chunk that spans it is split there, so where a run diverges
        # does not depend on how it was chunked
        warm = run.state.step < run.hp.warmup
        run.diverge_above = math.log(run.config.vocab_size) + (WARMUP_MARGIN if warm else DIVERGE_MARGIN)
        metrics += run.advance(min(end, run.hp.warmup) - run.state.step if warm else end - run.state.step).metrics
    if run.diverged and run.explanation is None:
        m = run.diverged
        run.explanation = _explain_divergence(m["step"], m["loss"], run.hp.lr, run.config.vocab_size)
    return {"session": session, "step": run.state.step, "steps": run.hp.steps,
            "first_step": run.state.step - len(metrics) + 1, "losses": [m["loss"] for m in metrics],
            "status": run.status, "diverged": run.explanation}


def close(session):
    """Forget a session (Reset)."""
    return _SESSIONS.close(session)


# ----------------------------------------------------------------------------- scoring: 01_sft's metrics, chunked

def evaluate(session, offset=0, count=EVAL_CHUNK):
    """Greedy replies for eval items offset..offset+count (01_sft.respond: batched, stop at <|end|>).

    Call with offset 0, EVAL_CHUNK, ... until `done`: the last call adds `metrics` (01_sft.score's, over the
    whole slice) and `diagnosis`. A call at a new training step starts the slice over."""
    run = _SESSIONS.get(session)
    if run.status == "diverged":
        raise ValueError("training diverged: there is no model to score (lower the learning rate and Train again)")
    items = _eval_items()
    offset = number("offset", offset, 0, len(items) - 1, integer=True)
    count = number("count", count, 1, len(items), integer=True)
    part = run.sft["partial"]
    if offset == 0 or part is None or part["step"] != run.state.step or len(part["rows"]) != offset:
        part = run.sft["partial"] = {"step": run.state.step, "rows": []}
    chunk = items[offset:offset + count]
    params, config = run.state.params, run.config
    replies = _stage.respond(params, config, [turns for _, turns, _ in chunk], MAX_NEW)
    probes = _probe(params, config, [(turns, exp) for _, turns, exp in chunk])
    rows = []
    for (name, turns, exp), r, p in zip(chunk, replies, probes):
        rows.append({"set": name, "prompt": turns[-1][1], "expected": exp, **r, "correct": r["text"] == exp, **p})
    part["rows"] += rows
    done = len(part["rows"]) == len(items)
    out = {"session": session, "step": run.state.step, "offset": offset, "rows": rows, "done": done,
           "total": len(items)}
    if done:
        metrics = _metrics(part["rows"])
        run.sft["evals"].append({"step": run.state.step, **metrics})
        out["metrics"] = metrics
        out["samples"] = _samples(part["rows"])
        out["diagnosis"] = diagnose(run.sft["mask"], run.sft["shift"], metrics, run.state.step, run.sft["evals"])
        out["evals"] = run.sft["evals"]
    return out


def _probe(params, config, items):
    """Per (turns, expected reply), from one batched forward over the whole conversation with its reply:
    p_user_after_end  p(<|user|> after the reply's <|end|>): 01_sft.after_end, would it write the user's next turn
    p_first           p(the reply's first token | prompt + <|assistant|>): does it know how an answer starts
    p_own_assistant   p(<|assistant|> after the user's <|end|>): the role token the chat program writes
    p_end_question    p(<|end|> after the user's question): the end of the user's turn"""
    tok = world.tokenizer()
    user, asst, end, pad = (tok.special_id(t) for t in (chat.USER, chat.ASSISTANT, chat.END, "<|pad|>"))
    rows = [chat.render(turns + [("assistant", exp)])[0] for turns, exp in items]
    T = max(map(len, rows))
    idx = np.full((len(rows), T), pad, np.int64)
    tgt = np.full((len(rows), T), pad, np.int64)
    for b, ids in enumerate(rows):
        idx[b, :len(ids)] = ids
        tgt[b, :len(ids) - 1] = ids[1:]
        tgt[b, len(ids) - 1] = user
    logp, _ = token_logps(params, idx, tgt, config)
    p = np.exp(logp)
    out = []
    for b, ids in enumerate(rows):
        a = len(ids) - 1 - ids[::-1].index(asst)          # the last <|assistant|>: the reply starts after it
        out.append({"p_user_after_end": float(p[b, len(ids) - 1]), "p_first": float(p[b, a]),
                    "p_own_assistant": float(p[b, a - 1]), "p_end_question": float(p[b, a - 2])})
    return out


def _metrics(rows):
    """01_sft.score's numbers over the slice (its "asks_question": a reply with a "?" or a user turn in it)."""
    mean = lambda xs: float(np.mean(xs))
    return {"n": len(rows), "accuracy": mean([r["correct"] for r in rows]),
            "ends_turn": mean([r["ended"] for r in rows]),
            "asks_question": mean([r["user_turn"] or "?" in r["text"] for r in rows]),
            "p_user_after_end": mean([r["p_user_after_end"] for r in rows]),
            "starts_right": mean([r["text"][:1] == r["expected"][:1] for r in rows]),
            "p_first": mean([r["p_first"] for r in rows]), "p_own_assistant": mean([r["p_own_assistant"] for r in rows]),
            "p_end_question": mean([r["p_end_question"] for r in rows])}


def _samples(rows):
    """One reply per eval set, for the reader to see."""
    seen, out = set(), []
    for r in rows:
        if r["set"] not in seen:
            seen.add(r["set"])
            out.append(r)
    return out


# The symptoms, and where their thresholds come from: the live run (WIDGET, lr 2e-3, batches of BATCH_SIZE = 8) from
# checkpoints/00_pretrain_widget.npz, natively, seeds 0, 1, 2 (shift -6 and +6: seed 0), scored on this eval slice
# (22 prompts) every 50 steps to 300; each range spans the seeds (the untrained base: p_first 0.21, ends_turn 0):
#   correct mask      ends_turn >= 0.86 (>= 0.91 from step 100); p_user_after_end and p_own_assistant < 0.001;
#                     p_first 0.12-0.14 at step 50, 0.35-0.39 at 150, 0.52-0.59 at 250; accuracy 0-0.05 at 100,
#                     0.27-0.41 at 300
#   shift -1, -2, -6  p_own_assistant >= 0.83 from step 50, >= 0.93 from 100 (the leaked <|assistant|> is learned at
#                     once); replies themselves barely change (ends_turn >= 0.86 from 100, accuracy 0-0.32 at 300):
#                     the chat program always writes the prompt, so what the leak taught shows only when asked for it
#   mask "all"        p_own_assistant >= 0.81 from step 50; p_user_after_end 0.03 at 50, 0.06-0.10 at 100, 0.07-0.21
#                     at 150, 0.28-0.39 at 200, 0.60-0.61 at 300: it learns to open the user's turn
#   shift +1, +3, +6  p_first stays where the base has it, 0.12-0.23 at every step, never more than 0.007 above its
#                     value at step 50: nothing ever taught the reply's first tokens, and replies start wrong
#   no_end            ends_turn 0.0 from step 50 on: replies run to the length limit
# Every other mask's p_first rises from step 50 on, by >= 0.15 at 150 ("all" from a dip: 0.06 at 50, 0.21-0.27 at 150,
# as low as a cut's); p_user_after_end stays <= 0.01 but for "all", and ends_turn >= 0.68 but for no_end.
# WIDGET's own batch of 16 (seeds 0-2) gives the same symptoms at the same steps with these thresholds.
LEAK_OWN_ASSISTANT = 0.5      # correct < 0.001, cut <= 0.06, shift < 0 and "all" >= 0.81 from step 50
LEAK_P_USER = 0.1             # "all" 0.07-0.21 at step 150, >= 0.28 from 200; every other mask <= 0.01 (16: <= 0.03)
END_RATE = 0.5                # correct >= 0.86, every other mask >= 0.68, no_end 0.0
CUT_P_FIRST = 0.3             # cut <= 0.23; correct >= 0.35 from step 150
CUT_RISE = 0.05               # p_first's rise since the run's first score: cut <= 0.007, every other mask >= 0.15 at 150
CUT_BASELINE_BY = 100         # ... if that score was by step 100 (the widget's is at 50); without one, no cut claim
MIN_STEPS = {"cut": 150, "no_end": 50, "leak": 50}   # before these, a symptom can still be the base model's


def diagnose(mask, shift, metrics, step, evals=()):
    """What this mask did to the model, in words: the mask's intended effect plus the symptoms measured.

    `evals`: this run's evaluations so far, oldest first (the last one is `metrics`): a cut shows as a p_first that
    has not risen since the first (which must be early: at step 150 "all" is back at the base's p_first, from a dip)."""
    effect = _mask_effect(mask, shift)
    m, symptoms = metrics, []
    if step >= MIN_STEPS["leak"] and m["p_user_after_end"] > LEAK_P_USER:
        symptoms.append({"kind": "leak", "text": (
            f"The model writes the user's side: after its own <|end|> it would open a user turn with probability "
            f"{m['p_user_after_end']:.0%} (with the correct mask: under 1%). Left running, a chat with it goes on "
            f"to put words in the user's mouth.")})
    if step >= MIN_STEPS["leak"] and m["p_own_assistant"] > LEAK_OWN_ASSISTANT:
        symptoms.append({"kind": "leak", "text": (
            f"The model has learned to write the prompt: after the user's <|end|> it writes <|assistant|> itself "
            f"with probability {m['p_own_assistant']:.0%} (with the correct mask: under 1%), a token only the chat "
            f"program should write. Its replies can still look fine, because the chat program always supplies the "
            f"prompt, but part of every batch's loss is spent learning tokens the model never has to produce.")})
    if step >= MIN_STEPS["no_end"] and m["ends_turn"] < END_RATE:
        symptoms.append({"kind": "no_end", "text": (
            f"The model does not end its turn: only {m['ends_turn']:.0%} of its replies close with <|end|> "
            f"(with the correct mask: nearly all); the rest run on to the length limit.")})
    first = evals[0] if evals and evals[0]["step"] <= CUT_BASELINE_BY else None   # the run's step-50 evaluation
    if (step >= MIN_STEPS["cut"] and first and m["p_first"] < CUT_P_FIRST
            and m["p_first"] - first["p_first"] < CUT_RISE):
        symptoms.append({"kind": "cut", "text": (
            f"Replies start wrong: the model gives the answer's first token only {m['p_first']:.0%} probability, "
            f"no more than at step {first['step']} ({first['p_first']:.0%}), and {m['starts_right']:.0%} of replies "
            f"begin with the right character (with the correct mask that probability keeps rising, past 50% by "
            f"step 250). The loss never counted how an answer starts.")})
    tries = {"leak": "move the boundary back to 0, or switch the mask to “assistant only”",
             "no_end": "switch the mask to “assistant only”, so the <|end|> closing each reply is learned",
             "cut": "move the boundary back to 0, so every token of the reply counts"}
    kinds = list(dict.fromkeys(s["kind"] for s in symptoms))
    return {"mask": mask, "shift": shift, "step": step, "effect": effect, "symptoms": symptoms,
            "status": "broken" if symptoms else ("ok" if effect["kind"] is None else "wrong_mask"),
            "try": ("Try: " + "; ".join(tries[k] for k in kinds) + ".") if kinds else ""}


# ----------------------------------------------------------------------------- the correct mask's figures

def reference(path):
    """The widget model trained natively with the correct mask (results/01_sft.json "widget"): its figures on
    01_sft's full held-out sets, to set beside the live run's."""
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    w = results.get("widget")
    if not w:
        raise ValueError(f"{path} has no 'widget' results (run python -m gpt_mini.01_sft)")
    after = w["after"]
    return {"after": {k: after[k] for k in ("accuracy", "ends_turn", "asks_question", "p_user_after_end", "n")
                      if k in after},
            "steps": w["config"]["train"]["steps"], "lr": w["config"]["train"]["lr"],
            "batch_size": w["config"]["train"]["batch_size"], "mask": w["config"]["mask"]}
