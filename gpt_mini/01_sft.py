"""Stage 01, supervised fine-tuning: the same next-token loss, counted only on the assistant's tokens.

    python -m gpt_mini.01_sft            # the lesson's model and the widget's: checkpoints/ and results/01_sft.json
    python -m gpt_mini.01_sft --quick    # a tiny run for tests, written wherever --out points

Pretraining learned P(text). SFT turns it into P(response | prompt) without changing the loss: conversations in the
chat template (gpt_mini/chat.py) go through `train.next_token_loss`, and the only new thing is the mask, which
counts the assistant's text and its end-of-turn token and nothing else. The ablations change only that mask.
"""

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import chat, checkpoint, stage_parser, world
from .data import pad_batch
from .model import token_logps
from .sample import sample_batch
from .train import TrainConfig, TrainState, mean_loss, next_token_loss, train, use_heap_for_temporaries

ROOT = Path(__file__).resolve().parent.parent
STAGE = "01_sft"


@dataclass(frozen=True)
class SFTConfig:
    init: str = "00_pretrain.npz"            # the checkpoint SFT starts from (in checkpoints/)
    train: TrainConfig = TrainConfig(steps=500, batch_size=32, lr=1e-3, warmup=20, min_lr_ratio=0.1,
                                     weight_decay=0.0)
    mask: str = "assistant"                  # which tokens count: "assistant" | "all" | "no_end"
    shift: int = 0                           # moves the mask's start: < 0 leaks prompt tokens, > 0 cuts the answer
    n_train: int = 4000                      # training conversations
    two_turn: float = 0.25                   # share of them with a second exchange
    refusals: float = 0.03                   # share that ask about a DEMO_UNKNOWN person and get world.REFUSAL
    max_new: int = 32                        # longest reply generated when scoring
    seed: int = 0


LESSON = SFTConfig()
# The browser widget's chain: the same stage on the small pretrained model 00_pretrain ships for widgets.
WIDGET = SFTConfig(init="00_pretrain_widget.npz", train=replace(LESSON.train, steps=300, batch_size=16, lr=2e-3))
QUICK = SFTConfig(train=replace(LESSON.train, steps=100, batch_size=16), n_train=400)
# Same data, same steps, one change each: what the mask is for.
ABLATIONS = {
    "all_tokens": {"mask": "all"},           # (a) the loss on every token, prompt included
    "no_end": {"mask": "no_end"},            # (b) the end-of-turn token not supervised
    "cut_answer": {"shift": 3},              # (c) the boundary moved 3 tokens into the answer
}


# ----------------------------------------------------------------------------- data: conversations from the world

def answer(relation, person):
    """The assistant's reply to a fact question: the sentence pretraining knows, so the knowledge is already in."""
    return world.fact(person, relation)


def fact_turn(rng, people, relation=None, phrasings=world.TRAIN_PHRASINGS, allowed=None):
    while True:
        person = rng.choice(people)
        rel = relation or rng.choice(tuple(world.FACT_TEMPLATES))
        if allowed is None or allowed(person.name, rel):
            question = rng.choice(phrasings[rel]).format(name=person.name)
            return [("user", question), ("assistant", answer(rel, person))]


def sum_turn(rng, pairs):
    a, b = rng.choice(pairs)
    return [("user", rng.choice(world.SUM_PHRASINGS).format(a=a, b=b)), ("assistant", world.sum_sentence(a, b))]


def conversations(cfg, block_size):
    """Training conversations: fact questions (never the held-out facts), sums (never the held-out pairs) and a few
    refusals about people the world lacks, some with two exchanges; every one fits the model's context."""
    rng = random.Random(f"sft-{cfg.seed}")
    people = world.people()
    held_facts, held_sums = world.held_out_facts(), world.held_out_sums()
    pairs = [(a, b) for a in range(world.SUM_MAX_A + 1) for b in range(world.SUM_MAX_B + 1) if (a, b) not in held_sums]
    known = lambda name, rel: (name, rel) not in held_facts

    def exchange():
        if rng.random() < cfg.refusals:     # someone the world lacks: a few demonstrations of not knowing
            return [("user", rng.choice(world.TRAIN_PHRASINGS[rng.choice(tuple(world.FACT_TEMPLATES))]).format(
                name=rng.choice(world.DEMO_UNKNOWN))), ("assistant", world.REFUSAL)]
        return fact_turn(rng, people, allowed=known) if rng.random() < 0.5 else sum_turn(rng, pairs)
    out = []
    while len(out) < cfg.n_train:
        turns = exchange() + (exchange() if rng.random() < cfg.two_turn else [])
        if len(chat.render(turns)[0]) <= block_size + 1:   # + 1: the last token is only ever a target
            out.append(turns)
    return out


def eval_sets(seed=0):
    """Held-out prompts, each (turns so far, expected reply): what SFT is scored on.

    held_out_facts   facts SFT never asked about, in the training phrasings
    new_phrasings    known facts asked in phrasings SFT never saw
    held_out_sums    sums neither pretraining nor SFT ever showed
    second_turn      a held-out fact asked after a first exchange (multi-turn)"""
    people = {p.name: p for p in world.people(seed)}
    held = sorted(world.held_out_facts(seed))
    known = [(n, r) for n in world.NAMES for r in world.FACT_TEMPLATES if (n, r) not in world.held_out_facts(seed)]

    def ask(phrasing, name, rel):
        return [("user", phrasing.format(name=name))], answer(rel, people[name])
    sets = {
        "held_out_facts": [ask(world.TRAIN_PHRASINGS[r][0], n, r) for n, r in held],
        "new_phrasings": [ask(world.HELD_OUT_PHRASINGS[r], n, r) for n, r in known],
        "held_out_sums": [([("user", f"what is {p[:-1]}?")], p + a + ".") for p, a in world.sum_probes(seed, n=60)],
    }
    rng = random.Random(f"sft-eval-{seed}")
    sets["second_turn"] = []
    for (n, r) in held:
        a, b = rng.randint(0, 9), rng.randint(0, 9)          # a short first exchange: both fit the context
        first = [("user", f"{a}+{b}=?"), ("assistant", world.sum_sentence(a, b))]
        turns, expected = ask(world.TRAIN_PHRASINGS[r][0], n, r)
        sets["second_turn"].append((first + turns, expected))
    return sets


# ----------------------------------------------------------------------------- the mask: the one thing SFT adds

def loss_weights(ids, weights, mask="assistant", shift=0):
    """Which tokens the loss counts, from the template's weights (assistant text + its <|end|>).

    mask="all": every token, the user's turns and role tokens included; "no_end": the assistant's text but not
    the <|end|> closing it. shift moves the start of each assistant span: -k also counts the k prompt tokens before
    it (the <|assistant|> role token, the user's <|end|>, ...), +k leaves out the reply's first k tokens."""
    w = np.array(weights, dtype=bool)
    if mask == "all":
        return np.ones_like(w)
    if mask == "no_end":
        w &= np.array(ids) != world.tokenizer().special_id(chat.END)
    elif mask != "assistant":
        raise ValueError(f"mask must be 'assistant', 'all' or 'no_end', got {mask!r}")
    if shift:
        starts = [t for t in range(len(w)) if weights[t] and (t == 0 or not weights[t - 1])]
        for t in starts:
            if shift < 0:
                w[max(0, t + shift):t] = True
            else:
                w[t:t + shift] = False
    return w


def batches(convs, cfg, rng):
    """SFT batches: one conversation per row, padded, masked by `loss_weights`."""
    pad = world.tokenizer().special_id("<|pad|>")
    examples = []
    for turns in convs:
        ids, weights = chat.render(turns)
        examples.append((ids, loss_weights(ids, weights, cfg.mask, cfg.shift)))
    length = max(len(ids) for ids, _ in examples) - 1

    def next_batch():
        rows = rng.integers(0, len(examples), cfg.train.batch_size)
        return pad_batch([examples[i] for i in rows], pad, length)
    return next_batch, length


# ----------------------------------------------------------------------------- what the model does with a prompt

def respond(params, config, conversations, max_new=32, temperature=None, seed=0):
    """The model's replies, as a chat program runs it: prompt + <|assistant|>, stop at <|end|>.

    Greedy (the single most likely token each step) unless a sampling temperature is given."""
    tok = world.tokenizer()
    prompts = [chat.render(turns, generation_prompt=True)[0] for turns in conversations]
    sampling = {"top_k": 1} if temperature is None else {"temperature": temperature, "seed": seed}
    rollouts = sample_batch(params, config, prompts, max_new, stop_ids=(tok.special_id(chat.END),), **sampling)
    return [chat.reply(row[mask]) for row, mask in zip(rollouts.completion_ids, rollouts.completion_mask)]


def after_end(params, config, turns, expected):
    """p(<|user|> | the conversation, its expected reply and <|end|>): whether the model would go on to write
    the user's next turn itself if the chat program didn't stop it."""
    tok = world.tokenizer()
    ids, _ = chat.render(turns + [("assistant", expected)])
    logp, _ = token_logps(params, np.array([ids]), np.array([[tok.special_id(chat.USER)] * len(ids)]), config)
    return float(np.exp(logp[0, -1]))


def score(params, config, sets, max_new=32, samples=4):
    """Per eval set: exact-answer accuracy, end-of-turn rate, user-turn rate, p(user after end); and samples."""
    out = {}
    for name, items in sets.items():
        replies = respond(params, config, [turns for turns, _ in items], max_new)
        out[name] = {
            "n": len(items),
            "accuracy": float(np.mean([r["text"] == exp for r, (_, exp) in zip(replies, items)])),
            "ends_turn": float(np.mean([r["ended"] for r in replies])),
            "asks_question": float(np.mean([r["user_turn"] or "?" in r["text"] for r in replies])),
            "p_user_after_end": float(np.mean([after_end(params, config, t, e) for t, e in items])),
            "samples": [{"prompt": turns[-1][1], "expected": exp, **r}
                        for r, (turns, exp) in list(zip(replies, items))[:samples]],
        }
    keys = ("accuracy", "ends_turn", "asks_question", "p_user_after_end")
    total = sum(v["n"] for v in out.values())
    out["all"] = {k: sum(v[k] * v["n"] for v in out.values()) / total for k in keys} | {"n": total}
    return out


def response_losses(params, config, convs):
    """Two validation losses on the same conversations: over the assistant's tokens only (what SFT is for), and
    over every token. They average different sets of tokens, so only like is compared with like."""
    pad = world.tokenizer().special_id("<|pad|>")
    out = {}
    for mask in ("assistant", "all"):
        rows = [(ids, loss_weights(ids, w, mask)) for ids, w in map(chat.render, convs)]
        batch = [pad_batch(rows[i:i + 64], pad) for i in range(0, len(rows), 64)]
        out[mask] = mean_loss(params, config, batch)
    return out


# ----------------------------------------------------------------------------- the run

def finetune(params, config, convs, cfg, progress=None):
    """Supervised fine-tuning: train `params` (in place) on conversations, with cfg's mask; returns the History.

    Every later stage that learns from demonstrations (CoT) calls this: only its conversations differ."""
    next_batch, _ = batches(convs, cfg, np.random.default_rng(cfg.train.seed))
    return train(TrainState(params), next_batch, config, cfg.train, next_token_loss, progress=progress)


def finetune_from(cfg, out_dir, name, progress=True):
    """One SFT model from cfg.init on the world's conversations; returns (params, config, history)."""
    config, _, params, _ = checkpoint.load(Path(out_dir) / "checkpoints" / cfg.init)
    history = finetune(params, config, conversations(cfg, config.block_size), cfg, name if progress else None)
    return params, config, history


def run(cfg, out_dir, ablations=ABLATIONS, widget=None, progress=True):
    out_dir = Path(out_dir)
    tok = world.tokenizer()
    sets = eval_sets()
    val = [turns + [("assistant", exp)] for items in sets.values() for turns, exp in items]
    config, _, base, _ = checkpoint.load(out_dir / "checkpoints" / cfg.init)
    results = {"stage": STAGE, "config": {**asdict(cfg), "model": config.to_dict()},
               "data": {"train_conversations": cfg.n_train, "eval": {k: len(v) for k, v in sets.items()},
                        "held_out_facts": sorted(map(list, world.held_out_facts())),
                        "example": chat.render(conversations(cfg, config.block_size)[0])},
               "before": {**score(base, config, sets, cfg.max_new), "loss": response_losses(base, config, val)}}
    runs = {"sft": cfg} | {k: replace(cfg, **v) for k, v in ablations.items()}
    results["runs"] = {}
    for name, run_cfg in runs.items():
        params, config, history = finetune_from(run_cfg, out_dir, name, progress)
        results["runs"][name] = {"mask": run_cfg.mask, "shift": run_cfg.shift, "curve": history.curve,
                                 "train_loss": float(np.mean(history.losses[-20:])),
                                 **score(params, config, sets, cfg.max_new),
                                 "loss": response_losses(params, config, val)}
        if name == "sft":
            checkpoint.save(out_dir / "checkpoints" / f"{STAGE}.npz", config, tok, params,
                            meta={"step": run_cfg.train.steps, "from": cfg.init})
    if widget:
        params, wconfig, history = finetune_from(widget, out_dir, "widget", progress)
        checkpoint.save(out_dir / "checkpoints" / f"{STAGE}_widget.npz", wconfig, tok, params,
                        meta={"step": widget.train.steps, "from": widget.init})
        results["widget"] = {"config": {**asdict(widget), "model": wconfig.to_dict()},
                             "after": score(params, wconfig, sets, widget.max_new, samples=0)["all"]}
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    (out_dir / "results" / f"{STAGE}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def main(argv=None):
    parser = stage_parser("Supervised fine-tuning of the pretrained gpt_mini (the --quick run needs "
                          "checkpoints/00_pretrain.npz in --out).")
    args = parser.parse_args(argv)
    out = args.out or (Path("quick-run") if args.quick else ROOT)
    use_heap_for_temporaries()
    if args.quick:
        results = run(QUICK, out, ablations={k: ABLATIONS[k] for k in ("all_tokens",)})
    else:
        results = run(LESSON, out, widget=WIDGET)
    for name, r in results["runs"].items():
        print(f"{name:>11}: accuracy {r['all']['accuracy']:.2f}, ends turn {r['all']['ends_turn']:.2f}, "
              f"response loss {r['loss']['assistant']:.3f}")
    print(f"wrote {out / 'results' / (STAGE + '.json')}")


if __name__ == "__main__":
    main()
