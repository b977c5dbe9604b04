"""Stage 00, pretraining: minimize -sum_t log p(x_t | x_<t) on the world's raw text.

    python -m gpt_mini.00_pretrain            # the lesson's model: writes checkpoints/ and results/00_pretrain.json
    python -m gpt_mini.00_pretrain --quick    # a tiny run for tests, written wherever --out points

The loss is plain next-token cross-entropy from model.py, every position counted (no mask): the whole
lesson is that this one objective, on enough text, buys grammar, facts and arithmetic as side effects.
"""

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import checkpoint, stage_parser, world
from .data import get_batch, unigram_loss
from .model import GPT, GPTConfig, forward, softmax
from .sample import complete, generate
from .train import TrainConfig, TrainState, mean_loss, next_token_loss, train, use_heap_for_temporaries

ROOT = Path(__file__).resolve().parent.parent
STAGE = "00_pretrain"


@dataclass(frozen=True)
class PretrainConfig:
    model: GPTConfig = GPTConfig(vocab_size=world.tokenizer().vocab_size, block_size=64,
                                 n_layer=4, n_head=4, n_embd=96)
    train: TrainConfig = TrainConfig(steps=3000, batch_size=32, lr=2e-3, warmup=100, min_lr_ratio=0.05)
    corpus: world.CorpusConfig = world.CorpusConfig()
    snapshots: tuple = (0, 100, 300, 1000, 2000, 3000)   # steps at which the model is saved and scored
    curve_every: int = 10                            # train loss logged every this many steps
    eval_batches: int = 20
    grammar_samples: int = 60
    save_snapshots: bool = True                      # a checkpoint per snapshot (the widget base keeps only its last)


LESSON = PretrainConfig()
# Same model.py, smaller config: trains visibly within seconds in the browser (lesson 02's widget).
WIDGET = PretrainConfig(
    model=GPTConfig(vocab_size=world.tokenizer().vocab_size, block_size=32, n_layer=2, n_head=4, n_embd=48),
    train=TrainConfig(steps=400, batch_size=8, lr=3e-3, warmup=20, min_lr_ratio=0.1),
    corpus=world.CorpusConfig(n_docs=1500), snapshots=(0, 400), eval_batches=4, grammar_samples=10)
# The small model later stages' widgets fine-tune live in the browser: WIDGET's width and depth with the lesson's
# 64-character context (a conversation needs it), pretrained natively on the full corpus: 00_pretrain_widget.npz.
WIDGET_BASE = PretrainConfig(
    model=replace(WIDGET.model, block_size=64),
    train=TrainConfig(steps=3000, batch_size=32, lr=3e-3, warmup=100, min_lr_ratio=0.05),
    snapshots=(3000,), eval_batches=8, grammar_samples=20, save_snapshots=False)
QUICK = PretrainConfig(
    model=GPTConfig(vocab_size=world.tokenizer().vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32),
    train=TrainConfig(steps=150, batch_size=16, lr=3e-3, warmup=10),
    corpus=world.CorpusConfig(n_docs=800), snapshots=(0, 50, 150), eval_batches=4, grammar_samples=10)


# ----------------------------------------------------------------------------- data

def encode_corpus(config):
    """Train and validation token ids (1-D int arrays), from the world's seeded corpus."""
    tok = world.tokenizer()
    train_text, val_text = world.pretrain_corpus(config.corpus)
    return np.array(tok.encode(train_text), np.int64), np.array(tok.encode(val_text), np.int64)


def eval_batches(data, config, n, seed=1234):
    """A fixed set of validation batches, so every snapshot is scored on the same text."""
    rng = np.random.default_rng(seed)
    return [get_batch(data, config.model.block_size, config.train.batch_size, rng) for _ in range(n)]


# ----------------------------------------------------------------------------- what the model knows

def probe(params, config, prompt, max_new=12, stop="."):
    """The model's greedy answer to a probe, read at the start of a document, up to `stop`."""
    return complete(params, config, world.tokenizer(), prompt, max_new, stop)


def sum_digits(completions):
    """Per-place accuracy of greedy answers to every held-out sum, `completions` {(a, b): text}.

    Places are read from the right, as in written addition: units, tens, hundreds (the last only for sums of at
    least 100). A place is right when the answer has that digit where the sum has it. `carry` / `no_carry` split
    the exact-match accuracy by whether a's units digit plus b reaches 10."""
    rows = [(a, b, str(a + b), text.strip(" .")) for (a, b), text in sorted(completions.items())]
    out = {"n": len(rows), "exact": float(np.mean([got == want for _, _, want, got in rows])),
           "length": float(np.mean([len(got) == len(want) for _, _, want, got in rows]))}
    for k, place in enumerate(("units", "tens", "hundreds")):
        hits = [len(got) > k and got[-1 - k] == want[-1 - k] for _, _, want, got in rows if len(want) > k]
        out[place] = float(np.mean(hits)) if hits else None
        out[f"n_{place}"] = len(hits)
    for name, carry in (("carry", True), ("no_carry", False)):
        hits = [got == want for a, b, want, got in rows if (a % 10 + b >= 10) == carry]
        out[name] = float(np.mean(hits)) if hits else None
        out[f"n_{name}"] = len(hits)
    return out


def repeat_probability(params, config, batches):
    """Mean probability the model gives to the next character being the current one again, over the validation
    batches' positions (an untrained model with tied embeddings puts more than 1/V there)."""
    probs = []
    for idx, _, _ in batches:
        logits, _ = forward(params, idx, config)                                      # (B, T, V)
        p = softmax(logits.astype(np.float64), axis=-1)
        probs.append(np.take_along_axis(p, idx[..., None], axis=-1)[..., 0].mean())   # p(x_{t+1} = x_t)
    return float(np.mean(probs))


def score(params, config, cfg, batches, seed=0):
    """Validation loss, per-category accuracy, and samples, for one set of params."""
    tok = world.tokenizer()
    # each probe is decoded once; its completion feeds both the accuracy and the quoted samples
    facts = [(rel, {"prompt": p, "completion": probe(params, config, p), "answer": a})
             for rel, p, a in world.fact_probes()]
    # every held-out sum, for the per-digit accuracy; the 100 sum probes are a sample of them
    held_out = {(a, b): probe(params, config, f"{a}+{b}=") for a, b in sorted(world.held_out_sums())}
    sums = [{"prompt": p, "completion": held_out[tuple(map(int, p[:-1].split("+")))], "answer": a}
            for p, a in world.sum_probes()]
    right = lambda probe: probe["completion"].strip(" .") == probe["answer"]
    acc = {relation: float(np.mean([right(f) for rel, f in facts if rel == relation]))
           for relation in world.FACT_TEMPLATES}
    acc["sums"] = float(np.mean([right(s) for s in sums]))
    # grammar: sample sentences that start like the grammar's and check that the grammar could produce them
    sentences = []
    for i in range(cfg.grammar_samples):
        ids = generate(params, config, tok.encode("\nthe "), 40, seed=seed + i, stop_ids=tok.encode(".\n"))
        sentences.append(tok.decode(ids)[1:])
    acc["grammar"] = float(np.mean([world.is_grammatical(s) for s in sentences]))
    return {
        "val_loss": mean_loss(params, config, batches),
        "accuracy": acc,
        "sum_digits": sum_digits(held_out),
        "p_repeat": repeat_probability(params, config, batches),
        "samples": {
            "facts": [f for _, f in facts[:6]],
            "sums": sums[:6],
            "sentences": sentences[:6],
            "questions": [{"prompt": q, "continuation": probe(params, config, q, max_new=48, stop="\n")}
                          for q in world.question_probes()],
        },
    }


# ----------------------------------------------------------------------------- yardsticks: compressors and the floor

def _entropy(dist):
    """Shannon entropy in nats of {outcome: probability}."""
    p = np.array(list(dist.values()))
    return float(-(p * np.log(p)).sum())


def sentence_distributions(seed=0):
    """{kind: {sentence text: probability}} for the validation split, enumerated from world.py's generator.

    These mirror `world._document` and `world.grammar_sentence` draw for draw (tests/test_00_pretrain.py checks
    sampled documents against them): a fact picks a person and a relation; a prose sentence is NP VERB NP (3/4)
    or NP VERB "in the" PLACE (1/4), each NP taking an adjective with probability 0.6; a validation sum is any of
    the 100 x 10 pairs; a quiz question is, with probability 1/2 each, a fact question or a sum question."""
    people = world.people(seed)
    facts = {}
    for person in people:
        for relation in world.FACT_TEMPLATES:
            facts[world.fact(person, relation)] = 1 / (len(people) * len(world.FACT_TEMPLATES))
    nps = {f"the {n}": 0.4 / len(world.NOUNS) for n in world.NOUNS}
    nps.update({f"the {a} {n}": 0.6 / (len(world.ADJECTIVES) * len(world.NOUNS))
                for a in world.ADJECTIVES for n in world.NOUNS})
    prose = {}
    for np1, p1 in nps.items():
        for verb in world.VERBS:
            pv = p1 / len(world.VERBS)
            for np2, p2 in nps.items():
                prose[f"{np1} {verb} {np2}."] = 0.75 * pv * p2
            for place in world.PLACES:
                prose[f"{np1} {verb} in the {place}."] = 0.25 * pv / len(world.PLACES)
    pairs = [(a, b) for a in range(world.SUM_MAX_A + 1) for b in range(world.SUM_MAX_B + 1)]
    sums = {world.sum_sentence(a, b): 1 / len(pairs) for a, b in pairs}
    quiz = {t.format(name=person.name): 0.5 / (len(world.QUESTION_TEMPLATES) * len(people))
            for t in world.QUESTION_TEMPLATES.values() for person in people}
    quiz.update({f"what is {a}+{b}?": 0.5 / len(pairs) for a, b in pairs})
    return {"facts": facts, "prose": prose, "sums": sums, "quiz": quiz}


DOC_KINDS = {"facts": 2, "prose": 3, "sums": 5, "quiz": 1, "mixed": 2}   # world._document's weights
SENTENCES_PER_DOC = (3, 4, 5, 6)                                          # rng.randint(3, 6)


def entropy_rate(seed=0):
    """The entropy rate of the validation text's source, in nats per character: the floor of the loss.

    Method (exact for the generator's model of chance: every rng draw an independent fair draw). Documents are
    independent, and the text is documents joined by newlines, so its entropy rate per character is
    H(document) / E[characters per document, newline included]. A document's draws are its kind, its sentence
    count n and its sentences; the text determines n and each sentence (sentences end in ". " or "? ", and the
    kinds' sentences are disjoint sets of strings), and it determines the kind too, except that a "mixed"
    document whose n sentences happen all to be of one kind k reads exactly like a document of kind k. So
    H(document) = H(draws) - H(kind | text), and H(kind | text) is a sum over (k, n) of the binary entropy of
    P(mixed | text) = w_mixed 3^-n / (w_k + w_mixed 3^-n). Both terms, and the expected length, are sums over
    the enumerated `sentence_distributions`, so the result is exact, not a bound on the generator.

    It is a floor for any model's expected loss on this text, and not one a model can reach here: the model sees
    64-character windows that start anywhere, without the start of the document (its kind) and with no memory of
    earlier documents, and it is scored on a finite sample."""
    dists = sentence_distributions(seed)
    H = {k: _entropy(d) for k, d in dists.items()}
    L = {k: sum(p * len(t) for t, p in d.items()) for k, d in dists.items()}
    pure = ("facts", "prose", "sums")
    H["mixed"] = math.log(len(pure)) + sum(H[k] for k in pure) / len(pure)   # pick a kind, then its sentence
    L["mixed"] = sum(L[k] for k in pure) / len(pure)
    W = sum(DOC_KINDS.values())
    kind = {k: w / W for k, w in DOC_KINDS.items()}
    mean_n = float(np.mean(SENTENCES_PER_DOC))
    h_draws = _entropy(kind) + math.log(len(SENTENCES_PER_DOC)) + mean_n * sum(kind[k] * H[k] for k in kind)
    h_kind_given_text = 0.0
    for k in pure:
        for n in SENTENCES_PER_DOC:
            p_k, p_mixed = kind[k], kind["mixed"] * len(pure) ** -n   # both times the same sentence probabilities
            post = p_mixed / (p_k + p_mixed)
            h_kind_given_text += (p_k + p_mixed) / len(SENTENCES_PER_DOC) * _entropy({0: post, 1: 1 - post})
    # n sentences, n - 1 spaces between them, one newline after the document
    chars = sum(kind[k] * mean_n * (L[k] + 1) for k in kind)
    return {"nats_per_char": (h_draws - h_kind_given_text) / chars, "doc_nats": h_draws - h_kind_given_text,
            "kind_given_text_nats": h_kind_given_text, "chars_per_doc": chars}


def yardsticks(val_text, seed=0):
    """What general-purpose compressors and the source's own entropy make of the validation text, in bits/char."""
    import bz2, gzip, lzma   # here, not at import: Pyodide ships lzma as a separate package, and widgets import this
    data = val_text.encode()
    sizes = {"gzip": len(gzip.compress(data, compresslevel=9, mtime=0)), "bz2": len(bz2.compress(data, 9)),
             "xz": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))}
    floor = entropy_rate(seed)
    return {"chars": len(val_text), "bytes": {"raw": len(data), **sizes},
            "bits_per_char": {k: 8 * v / len(val_text) for k, v in sizes.items()},
            "entropy_rate": {**floor, "bits_per_char": floor["nats_per_char"] / math.log(2)}}


def prequential(losses, tokens_per_step, train_chars):
    """The online code length of the first pass: each batch's loss is measured before the model trains on it,
    so summing losses over the steps that read about one training text's worth of characters gives what an
    encoder that trains as it goes would pay (approximately: windows are drawn at random, not read in order)."""
    steps = max(1, round(train_chars / tokens_per_step))
    first = losses[:steps]
    return {"steps": steps, "tokens": steps * tokens_per_step, "mean_loss": float(np.mean(first)),
            "bits": float(np.sum(first) * tokens_per_step / math.log(2))}


# ----------------------------------------------------------------------------- the run

def run(cfg, out_dir, progress=True, name=STAGE, write=True):
    """Train from scratch, save snapshots and the final checkpoint `<name>.npz`, write the results file (unless
    write=False); returns results."""
    out_dir = Path(out_dir)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    tok = world.tokenizer()
    train_ids, val_ids = encode_corpus(cfg)
    batches = eval_batches(val_ids, cfg, cfg.eval_batches)
    model = GPT(cfg.model, seed=cfg.train.seed)
    state = TrainState(model.params)
    rng = np.random.default_rng(cfg.train.seed)
    results = {
        "stage": STAGE,
        "config": {"model": cfg.model.to_dict(), "train": asdict(cfg.train), "corpus": asdict(cfg.corpus)},
        "params": model.num_params(),
        "corpus": {"train_chars": int(len(train_ids)), "val_chars": int(len(val_ids)),
                   "vocab_size": tok.vocab_size, "alphabet_size": len(tok.chars),
                   "special_tokens": len(tok.specials)},
        "eval": {"fact_probes_per_relation": len(world.NAMES), "sum_probes": len(world.sum_probes()),
                 "grammar_samples": cfg.grammar_samples, "eval_batches": cfg.eval_batches},
        # the browser widget's smaller config, so the lesson can cite it instead of typing it
        "widget": {"model": WIDGET.model.to_dict(), "train": asdict(WIDGET.train)},
        "baselines": {"uniform": math.log(tok.vocab_size),
                      "unigram": unigram_loss(train_ids, val_ids, tok.vocab_size)},
        "curve": [], "snapshots": [],
    }

    def snapshot(step, train_loss):
        scored = score(state.params, cfg.model, cfg, batches)
        file = f"{name}_step{step}.npz" if cfg.save_snapshots else None
        if file:
            checkpoint.save(out_dir / "checkpoints" / file, cfg.model, tok, state.params, meta={"step": step})
        results["snapshots"].append({"step": step, "train_loss": train_loss, "checkpoint": file, **scored})

    history = train(state, lambda: get_batch(train_ids, cfg.model.block_size, cfg.train.batch_size, rng),
                    cfg.model, cfg.train, next_token_loss, curve_every=cfg.curve_every, snapshots=cfg.snapshots,
                    on_snapshot=snapshot, progress=name if progress else None)
    results["curve"] = history.curve
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    results["passes"] = cfg.train.steps * tokens_per_step / len(train_ids)
    results["prequential"] = prequential([m["loss"] for m in history.metrics], tokens_per_step, len(train_ids))
    results["compression"] = yardsticks(world.pretrain_corpus(cfg.corpus)[1], cfg.corpus.seed)
    results["repeat_rate"] = float(np.mean(val_ids[1:] == val_ids[:-1]))   # how often text repeats a character
    checkpoint.save(out_dir / "checkpoints" / f"{name}.npz", cfg.model, tok, state.params,
                    meta={"step": cfg.train.steps})
    results["final"] = results["snapshots"][-1]
    results["tokens_per_second"] = cfg.train.batch_size * cfg.model.block_size * cfg.train.steps / history.seconds
    if write:
        (out_dir / "results" / f"{STAGE}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def run_widget_base(out_dir, results, progress=True):
    """Pretrain WIDGET_BASE into checkpoints/00_pretrain_widget.npz; its summary joins the stage's results."""
    wb = run(WIDGET_BASE, out_dir, progress, name=f"{STAGE}_widget", write=False)
    results["widget_base"] = {"config": wb["config"], "params": wb["params"], "checkpoint": f"{STAGE}_widget.npz",
                              "final": {k: wb["final"][k] for k in ("val_loss", "accuracy")}}
    (Path(out_dir) / "results" / f"{STAGE}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def main(argv=None):
    parser = stage_parser("Pretrain gpt_mini on the toy world's text.")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--only-widget-base", action="store_true", help="retrain only the widgets' small base "
                        "model (00_pretrain_widget.npz) and update its part of the results file")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else LESSON
    if args.steps:
        cfg = replace(cfg, train=replace(cfg.train, steps=args.steps),
                      snapshots=tuple(s for s in cfg.snapshots if s < args.steps) + (args.steps,))
    out = args.out or (Path("quick-run") if args.quick else ROOT)
    use_heap_for_temporaries()
    if args.only_widget_base:
        run_widget_base(out, json.loads((out / "results" / f"{STAGE}.json").read_text()))
        return
    results = run(cfg, out)
    if not args.quick:
        run_widget_base(out, results)
    final = results["final"]
    print(f"val loss {final['val_loss']:.3f} (unigram {results['baselines']['unigram']:.3f}); "
          f"accuracy {json.dumps(final['accuracy'])}; wrote {out / 'results' / (STAGE + '.json')}")


if __name__ == "__main__":
    main()
