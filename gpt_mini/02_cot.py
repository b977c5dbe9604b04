"""Stage 02, chain of thought: the SFT code path, unchanged, on answers that show their running sums.

    python -m gpt_mini.02_cot            # checkpoints/02_cot_{direct,cot}*.npz and results/02_cot.json
    python -m gpt_mini.02_cot --quick    # a tiny run for tests (needs checkpoints/01_sft.npz in --out)

Two models fine-tune from the SFT checkpoint on the same problems, the same number of examples and steps, through
01_sft.finetune: one on the answer alone (direct), one on a trace of running partial sums that ends in the same
answer (CoT). Only the data differs. Both are then scored on fresh problems with 2 summands up to beyond the
trained range. A depth study trains direct models of 1, 2 and 4 layers at the same width from scratch.
"""

import json
import math
import random
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import checkpoint, stage, stage_parser, world
from .model import GPT
from .train import TrainConfig, use_heap_for_temporaries

ROOT = Path(__file__).resolve().parent.parent
STAGE = "02_cot"
SFT = stage("01_sft")   # the code path CoT trains through, imported, not copied


@dataclass(frozen=True)
class CoTConfig:
    init: str = "01_sft.npz"                 # both models start from the SFT checkpoint
    sft: SFT.SFTConfig = SFT.SFTConfig(train=TrainConfig(steps=1200, batch_size=32, lr=1e-3, warmup=20,
                                                         min_lr_ratio=0.1, weight_decay=0.0))
    n_train: int = 8000                      # training problems (the same ones for both models)
    trained: tuple = (2, 5)                  # numbers of summands seen in training, inclusive
    evaluated: tuple = (2, 7)                # numbers of summands scored, inclusive: 6 and 7 are beyond the trained range
    n_eval: int = 200                        # fresh problems per number of summands
    depths: tuple = (1, 2, 4)                # the depth study: direct models of these depths, same width, from scratch
    depth_steps: int = 1200
    seed: int = 0


LESSON = CoTConfig()
WIDGET = replace(LESSON, init="01_sft_widget.npz", depths=())
QUICK = replace(LESSON, sft=replace(LESSON.sft, train=replace(LESSON.sft.train, steps=300)), n_train=2000,
                trained=(2, 3), evaluated=(2, 4), n_eval=40, depths=(1,), depth_steps=20)


# ----------------------------------------------------------------------------- data: the same problems, two answers

def question(summands):
    return "+".join(map(str, summands)) + "=?"


def direct_answer(summands):
    return f"{sum(summands)}."


def cot_answer(summands):
    """The running partial sums, one per addition, the last of which is the answer: "3+5+2=?" -> "8 10."."""
    partial = np.cumsum(summands)[1:]
    return " ".join(map(str, partial)) + "."


def problems(n, count, rng):
    """`count` problems of n summands, each 0-99."""
    return [[rng.randint(0, 99) for _ in range(n)] for _ in range(count)]


def training_problems(cfg):
    rng = random.Random(f"cot-train-{cfg.seed}")
    lo, hi = cfg.trained
    return [p for n in range(lo, hi + 1) for p in problems(n, cfg.n_train // (hi - lo + 1), rng)]


def eval_problems(cfg):
    """Fresh problems per number of summands, drawn from a different seed than training (repeats of a short
    problem are possible: with 2 summands there are 10,000 ordered pairs)."""
    rng = random.Random(f"cot-eval-{cfg.seed}")
    lo, hi = cfg.evaluated
    return {n: problems(n, cfg.n_eval, rng) for n in range(lo, hi + 1)}


def conversations(probs, answer):
    return [[("user", question(p)), ("assistant", answer(p))] for p in probs]


# ----------------------------------------------------------------------------- reading an answer

NUMBER = re.compile(r"\d+")


def final_answer(text):
    """The last number in a reply, or None: robust to any malformed output (never raises)."""
    if not isinstance(text, str):
        return None
    found = NUMBER.findall(text)
    return int(found[-1]) if found else None


def first_error(summands, text):
    """Where a CoT trace first goes wrong: the index of the first partial sum that is missing or wrong, or None."""
    expected = np.cumsum(summands)[1:]
    got = [int(x) for x in NUMBER.findall(text or "")]
    for i, e in enumerate(expected):
        if i >= len(got) or got[i] != e:
            return i
    return None


def evaluate(params, config, probs_by_n, temperature=None, seed=0):
    """Exact-answer accuracy per number of summands (with a 95% Wilson interval), the reply length in tokens, and
    samples. Greedy unless a temperature is given."""
    out = {}
    for n, probs in probs_by_n.items():
        convs = [[("user", question(p))] for p in probs]
        replies = SFT.respond(params, config, convs, config.block_size, temperature, seed)
        right = [final_answer(r["text"]) == sum(p) and r["ended"] for r, p in zip(replies, probs)]
        k, m = int(sum(right)), len(right)
        out[str(n)] = {"n": m, "correct": k, "accuracy": k / m, "interval": wilson(k, m),
                       "tokens": float(np.mean([len(r["text"]) + r["ended"] for r in replies])),
                       "ended": float(np.mean([r["ended"] for r in replies])),
                       "samples": [{"question": question(p), "answer": sum(p), "reply": r["text"],
                                    "first_error": first_error(p, r["text"])}
                                   for r, p in list(zip(replies, probs))[:4]]}
    return out


def wilson(k, n, z=1.96):
    """A 95% interval for a proportion k/n (Wilson's: sensible at 0 and 1, unlike p ± 2σ)."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


# ----------------------------------------------------------------------------- the run

def run(cfg, out_dir, widget=None, progress=True):
    out_dir = Path(out_dir)
    tok = world.tokenizer()
    train_probs, eval_probs = training_problems(cfg), eval_problems(cfg)
    results = {"stage": STAGE, "config": asdict(cfg),
               "data": {"train_problems": len(train_probs),
                        "examples": {"direct": conversations(train_probs[-1:], direct_answer)[0],
                                     "cot": conversations(train_probs[-1:], cot_answer)[0]}},
               "models": {}}
    for name, answer in (("direct", direct_answer), ("cot", cot_answer)):
        config, _, params, _ = checkpoint.load(out_dir / "checkpoints" / cfg.init)
        history = SFT.finetune(params, config, conversations(train_probs, answer), cfg.sft,
                               f"{name}" if progress else None)
        checkpoint.save(out_dir / "checkpoints" / f"{STAGE}_{name}.npz", config, tok, params,
                        meta={"step": cfg.sft.train.steps, "from": cfg.init, "answers": name})
        results["models"][name] = {"curve": history.curve, "eval": evaluate(params, config, eval_probs)}
        if name == "cot":
            hot = {n: p[:50] for n, p in eval_probs.items()}
            results["models"][name]["temperature"] = {"temperature": 1.5, "eval": evaluate(
                params, config, hot, temperature=1.5)}
    results["config"]["model"] = config.to_dict()
    results["depth"] = depth_study(cfg, train_probs, eval_probs, config, progress)
    if widget:
        wres = {}
        for name, answer in (("direct", direct_answer), ("cot", cot_answer)):
            wconfig, _, params, _ = checkpoint.load(out_dir / "checkpoints" / widget.init)
            SFT.finetune(params, wconfig, conversations(train_probs, answer), widget.sft,
                         f"widget {name}" if progress else None)
            checkpoint.save(out_dir / "checkpoints" / f"{STAGE}_{name}_widget.npz", wconfig, tok, params,
                            meta={"step": widget.sft.train.steps, "from": widget.init, "answers": name})
            small = {n: p[:50] for n, p in eval_probs.items()}
            wres[name] = {k: {"accuracy": v["accuracy"], "tokens": v["tokens"]}
                          for k, v in evaluate(params, wconfig, small).items()}
        results["widget"] = {"model": wconfig.to_dict(), "eval": wres}
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    (out_dir / "results" / f"{STAGE}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def depth_study(cfg, train_probs, eval_probs, config, progress=True):
    """Direct answers only, from scratch, at the lesson model's width and 1, 2, 4 layers: does depth buy accuracy
    on more summands? (From scratch, so that depth is the only difference; the models see only this task.)"""
    out = {}
    for L in cfg.depths:
        dconfig = replace(config, n_layer=L)
        params = GPT(dconfig, seed=cfg.seed).params
        hp = replace(cfg.sft, train=replace(cfg.sft.train, steps=cfg.depth_steps, lr=2e-3, warmup=50))
        SFT.finetune(params, dconfig, conversations(train_probs, direct_answer), hp,
                     f"depth {L}" if progress else None)
        out[str(L)] = {"params": int(sum(v.size for v in params.values())),
                       "eval": {k: {"accuracy": v["accuracy"], "interval": v["interval"]}
                                for k, v in evaluate(params, dconfig, eval_probs).items()}}
    return out


def main(argv=None):
    args = stage_parser("Chain of thought: the SFT code path on reasoning traces vs direct answers.").parse_args(argv)
    out = args.out or (Path("quick-run") if args.quick else ROOT)
    use_heap_for_temporaries()
    results = run(QUICK if args.quick else LESSON, out, widget=None if args.quick else WIDGET)
    for name, m in results["models"].items():
        print(name, " ".join(f"n={n}:{v['accuracy']:.2f}" for n, v in m["eval"].items()))
    print(f"wrote {out / 'results' / (STAGE + '.json')}")


if __name__ == "__main__":
    main()
