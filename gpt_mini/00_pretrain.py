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
from .model import GPT, GPTConfig
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


def score(params, config, cfg, batches, seed=0):
    """Validation loss, per-category accuracy, and samples, for one set of params."""
    tok = world.tokenizer()
    # each probe is decoded once; its completion feeds both the accuracy and the quoted samples
    facts = [(rel, {"prompt": p, "completion": probe(params, config, p), "answer": a})
             for rel, p, a in world.fact_probes()]
    sums = [{"prompt": p, "completion": probe(params, config, p), "answer": a} for p, a in world.sum_probes()]
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
        "samples": {
            "facts": [f for _, f in facts[:6]],
            "sums": sums[:6],
            "sentences": sentences[:6],
            "questions": [{"prompt": q, "continuation": probe(params, config, q, max_new=48, stop="\n")}
                          for q in world.question_probes()],
        },
    }


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
