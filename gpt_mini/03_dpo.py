"""Stage 03, direct preference optimization: learn from pairs (chosen ≻ rejected) with a closed-form loss.

    python -m gpt_mini.03_dpo            # checkpoints/03_dpo*.npz and results/03_dpo.json
    python -m gpt_mini.03_dpo --quick    # a tiny run for tests (needs checkpoints/01_sft.npz in --out)

The behaviour: asked about someone the world does not contain, the SFT model makes an answer up (it names a person
it knows and their city). The pairs prefer "i do not know <name>." to an invented answer for unknown people, and
the true answer to a refusal (or to a near miss one or two characters away) for known people and sums.

Names and conventions follow TRL's DPOTrainer with loss_type="sigmoid": `sequence_logps` sums the completion's
token log-probs, `dpo_loss` returns per-pair losses and implicit rewards, and the logged metrics are
rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen, logps/rejected.
DPO starts from the SFT checkpoint: the CoT models of stage 02 were fine-tuned on arithmetic alone.
"""

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import chat, checkpoint, stage, stage_parser, world
from .model import token_logps, token_logps_backward
from .sample import sample_batch
from .train import TrainConfig, TrainState, train, use_heap_for_temporaries

ROOT = Path(__file__).resolve().parent.parent
STAGE = "03_dpo"
SFT = stage("01_sft")


@dataclass(frozen=True)
class DPOConfig:
    init: str = "01_sft.npz"                 # the policy starts here, and this frozen copy is the reference
    beta: float = 0.1                        # TRL's default: how far the policy may move from the reference
    rpo_alpha: float = None                  # TRL's name: weight of an NLL term on the chosen answers (None: off)
    # A small rate: DPO's loss keeps falling as rejected answers become ever less likely, and that pressure
    # spills onto every answer sharing their tokens; at 2e-5 the held-out replies broke (measured, see lesson 05).
    train: TrainConfig = TrainConfig(steps=300, batch_size=16, lr=5e-6, warmup=10, min_lr_ratio=1.0,
                                     weight_decay=0.0)
    n_pairs: int = 1200
    seed: int = 0


LESSON = DPOConfig()
WIDGET = replace(LESSON, init="01_sft_widget.npz", train=replace(LESSON.train, steps=150, batch_size=8, lr=2e-5))
QUICK = replace(LESSON, train=replace(LESSON.train, steps=40, batch_size=8, lr=2e-5), n_pairs=200)
BETAS = (0.01, 0.1, 0.5)                     # the sweep: margin against drift
LONG = 4                                     # "too long": the main run's steps times this
HOT = 4                                      # "too fast": the main run's learning rate times this


# ----------------------------------------------------------------------------- data: preference pairs from the world

def fact_question(rng, name, relation):
    return rng.choice(world.TRAIN_PHRASINGS[relation]).format(name=name)


def near_miss(answer, rng):
    """The true answer with its last word swapped for another of the same kind: a pair 1-4 characters apart."""
    for values in (world.CITIES, world.PETS, world.JOBS):
        for v in values:
            if answer.endswith(f" {v}."):
                return answer[:-len(v) - 1] + rng.choice([w for w in values if w != v]) + "."
    raise ValueError(f"no near miss for {answer!r}")


def pairs(cfg, ref, config, unknown=world.DPO_UNKNOWN, held_out=False):
    """(prompt turns, chosen, rejected, kind) preference pairs. Kinds:
    unknown   someone the world lacks: chosen "i do not know.", rejected the reference model's own answer, sampled
              (on-policy: the pairs reject what the model really does, inventing a fact about someone it knows)
    known     a real fact: chosen the truth, rejected the refusal (so DPO does not teach refusing everything)
    near      a real fact: chosen the truth, rejected a near miss (one word swapped, a few characters apart)
    sum       chosen a+b's sum, rejected the sum off by one (one character apart)"""
    rng = random.Random(f"dpo-{'eval' if held_out else 'train'}-{cfg.seed}")
    people = world.people()
    held = world.held_out_facts()
    out = []
    while len(out) < cfg.n_pairs:
        kind = rng.choice(("unknown", "unknown", "known", "near", "sum"))
        rel = rng.choice(tuple(world.FACT_TEMPLATES))
        if kind == "unknown":
            out.append(([("user", fact_question(rng, rng.choice(unknown), rel))], world.REFUSAL, None, kind))
        elif kind in ("known", "near"):
            person = rng.choice(people)
            if (person.name, rel) in held and not held_out:
                continue
            truth = world.fact(person, rel)
            rejected = world.REFUSAL if kind == "known" else near_miss(truth, rng)
            out.append(([("user", fact_question(rng, person.name, rel))], truth, rejected, kind))
        else:
            a, b = rng.randint(0, world.SUM_MAX_A), rng.randint(1, world.SUM_MAX_B)
            wrong = a + b + rng.choice((-1, 1))
            out.append(([("user", f"what is {a}+{b}?")], world.sum_sentence(a, b), f"{a}+{b}={wrong}.", kind))
    todo = [i for i, item in enumerate(out) if item[2] is None]
    replies = SFT.respond(ref, config, [out[i][0] for i in todo], temperature=1.0, seed=cfg.seed)
    for i, reply in zip(todo, replies):
        # a sampled refusal (or an unfinished reply) can't be the rejected answer: reject an invented fact instead
        invented = world.fact(rng.choice(people), rng.choice(tuple(world.FACT_TEMPLATES)))
        text = reply["text"] if reply["ended"] and reply["text"] != world.REFUSAL and reply["text"] else invented
        out[i] = (out[i][0], out[i][1], text, out[i][3])
    return out


def eval_pairs(cfg, ref, config):
    """Held-out pairs: unknown people no stage ever mentions, and facts / sums drawn apart from training."""
    return pairs(replace(cfg, n_pairs=200), ref, config, unknown=world.HELD_OUT_UNKNOWN, held_out=True)


def tensors(items):
    """Chosen rows then rejected rows, right-padded: input_ids (2B, T) and completion_mask (2B, T)."""
    rows = []
    for which in (1, 2):
        for item in items:
            prompt = chat.render(item[0], generation_prompt=True)[0]
            reply = chat.render(item[0] + [("assistant", item[which])])[0][len(prompt):]   # text + <|end|>
            rows.append((prompt + reply, [0] * len(prompt) + [1] * len(reply)))
    T = max(len(ids) for ids, _ in rows)
    input_ids = np.zeros((len(rows), T), np.int64)                      # (2B, T) padded with <|pad|> = 0
    completion_mask = np.zeros((len(rows), T), bool)                    # (2B, T)
    for r, (ids, m) in enumerate(rows):
        input_ids[r, :len(ids)], completion_mask[r, :len(m)] = ids, m
    return input_ids, completion_mask


# ----------------------------------------------------------------------------- the loss

def sequence_logps(params, input_ids, completion_mask, config):
    """Per row, the sum over completion positions t of log p(input_ids[t] | input_ids[<t]): the log-probability of
    the whole completion. The log-prob of token t comes from the logits at t-1. Returns (logps (R,), cache)."""
    logp, cache = token_logps(params, input_ids[:, :-1], input_ids[:, 1:], config)   # (R, T-1)
    mask = completion_mask[:, 1:]                                                    # (R, T-1) shifted with targets
    return (logp * mask).sum(axis=1), (cache, mask, logp)


def sequence_logps_backward(dlogps, cache, params, config, dlogp=0.0):
    """dlogps (R,): the loss's gradient per row's sum; dlogp (R, T-1), optional: extra per-token gradient."""
    fwd, mask, _ = cache
    return token_logps_backward(dlogps[:, None] * mask + dlogp, fwd, params, config)  # each token gets its row's


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """TRL's sigmoid DPO loss per pair, -log σ(β[(π_c - π_r) - (ref_c - ref_r)]), and the implicit rewards
    β(π - ref) of the chosen and the rejected completion. -log σ(z) is softplus(-z), computed stably."""
    logits = (policy_chosen_logps - policy_rejected_logps) - (ref_chosen_logps - ref_rejected_logps)
    losses = np.logaddexp(0.0, -beta * logits)
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    return losses, chosen_rewards, rejected_rewards


def dpo_loss_fn(beta, rpo_alpha=None):
    """The training loop's loss_fn: batch = (input_ids, completion_mask, ref_chosen_logps, ref_rejected_logps).

    rpo_alpha (TRL's name): adds rpo_alpha × the chosen completions' mean token NLL, an SFT term that keeps the
    chosen answers likely (RPO, Pang et al. 2024); None is plain DPO."""
    def loss_fn(params, batch, config):
        input_ids, completion_mask, ref_c, ref_r = batch
        logps, cache = sequence_logps(params, input_ids, completion_mask, config)
        B = len(ref_c)
        pc, pr = logps[:B], logps[B:]
        losses, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, ref_c, ref_r, beta)
        z = beta * ((pc - pr) - (ref_c - ref_r))
        dz = -1.0 / (1.0 + np.exp(z)) / B                       # d mean(softplus(-z)) / dz = -σ(-z) / B
        dlogps = np.concatenate([beta * dz, -beta * dz])        # z rises with π_c and falls with π_r
        loss, dlogp, extra = float(losses.mean()), 0.0, {}
        if rpo_alpha:
            _, mask, logp = cache
            chosen = mask * (np.arange(len(mask)) < B)[:, None]  # (2B, T-1) the chosen rows' completion tokens
            nll = -float((logp * chosen).sum() / chosen.sum())
            loss += rpo_alpha * nll
            dlogp = -rpo_alpha * chosen / chosen.sum()
            extra = {"nll_loss": nll}
        grads = sequence_logps_backward(dlogps, cache, params, config, dlogp)
        return loss, grads, {**metrics(chosen_rewards, rejected_rewards, pc, pr), **extra}
    return loss_fn


def metrics(chosen_rewards, rejected_rewards, pc, pr):
    """TRL's logged DPO metrics, means over the batch."""
    return {"rewards/chosen": float(chosen_rewards.mean()), "rewards/rejected": float(rejected_rewards.mean()),
            "rewards/margins": float((chosen_rewards - rejected_rewards).mean()),
            "rewards/accuracies": float((chosen_rewards > rejected_rewards).mean()),
            "logps/chosen": float(pc.mean()), "logps/rejected": float(pr.mean())}


def reference_logps(params, config, items, chunk=64):
    """The frozen reference's summed log-probs of every chosen and rejected completion, computed once."""
    c, r = [], []
    for i in range(0, len(items), chunk):
        logps, _ = sequence_logps(params, *tensors(items[i:i + chunk]), config)
        half = len(logps) // 2
        c.append(logps[:half])
        r.append(logps[half:])
    return np.concatenate(c), np.concatenate(r)


def batches(items, ref_c, ref_r, batch_size, rng):
    def next_batch():
        rows = rng.integers(0, len(items), batch_size)
        return (*tensors([items[i] for i in rows]), ref_c[rows], ref_r[rows])
    return next_batch


# ----------------------------------------------------------------------------- what changed

def behaviour(params, config, items):
    """Greedy replies to held-out prompts: the share that refuses unknown people and answers known ones right."""
    replies = SFT.respond(params, config, [item[0] for item in items])
    out = {}
    for kind in ("unknown", "known", "near", "sum"):
        got = [r["text"] == item[1] for r, item in zip(replies, items) if item[3] == kind]
        out[kind] = float(np.mean(got)) if got else None
    rows = [{"prompt": item[0][-1][1], "kind": item[3], "preferred": item[1], "reply": r["text"]}
            for r, item in zip(replies, items)]
    # three replies about people the world lacks, then three about what it knows
    out["samples"] = [s for s in rows if s["kind"] == "unknown"][:3] + [s for s in rows if s["kind"] != "unknown"][:3]
    return out


def drift(params, ref, config, items, samples=4, seed=0):
    """KL(π ‖ π_ref) on held-out prompts, estimated from samples of π: mean of Σ_t log π - log π_ref (nats)."""
    tok = world.tokenizer()
    prompts = [chat.render(item[0], generation_prompt=True)[0] for item in items for _ in range(samples)]
    roll = sample_batch(params, config, prompts, 32, stop_ids=(tok.special_id(chat.END),), seed=seed)
    ids, mask = roll.sequences()                                          # (R, T) prompt + sample, T <= block_size
    pi, _ = sequence_logps(params, ids, mask, config)
    pref, _ = sequence_logps(ref, ids, mask, config)
    return float(np.mean(pi - pref))


def pair_accuracy(params, config, items, ref_c, ref_r, beta):
    """Held-out preference rate: the share of held-out pairs whose implicit reward ranks chosen above rejected,
    and the share where the policy itself gives the chosen completion more probability."""
    pc, pr = reference_logps(params, config, items)
    _, cr, rr = dpo_loss(pc, pr, ref_c, ref_r, beta)
    return {"reward_accuracy": float(np.mean(cr > rr)), "policy_prefers_chosen": float(np.mean(pc > pr)),
            "margin": float(np.mean(cr - rr))}


# ----------------------------------------------------------------------------- the run

def optimize(cfg, out_dir, items, steps=None, progress=None, every=10):
    """One DPO run from cfg.init: returns (params, reference params, config, per-step metrics every `every`)."""
    config, _, ref, _ = checkpoint.load(Path(out_dir) / "checkpoints" / cfg.init)
    params = {k: v.copy() for k, v in ref.items()}                       # the policy starts as the reference
    ref_c, ref_r = reference_logps(ref, config, items)
    hp = replace(cfg.train, steps=steps or cfg.train.steps)
    history = train(TrainState(params), batches(items, ref_c, ref_r, hp.batch_size,
                                                np.random.default_rng(cfg.seed)),
                    config, hp, dpo_loss_fn(cfg.beta, cfg.rpo_alpha), progress=progress)
    curve = [{k: v for k, v in m.items() if k != "grad_norm"} for m in history.metrics[::every]]
    return params, ref, config, curve


def summary(params, ref, config, held, beta):
    ref_c, ref_r = reference_logps(ref, config, held)
    return {**pair_accuracy(params, config, held, ref_c, ref_r, beta), "kl": drift(params, ref, config, held[:60]),
            "behaviour": behaviour(params, config, held)}


def run(cfg, out_dir, widget=None, betas=BETAS, long=LONG, hot=HOT, progress=True):
    out_dir = Path(out_dir)
    tok = world.tokenizer()
    config, _, ref, _ = checkpoint.load(out_dir / "checkpoints" / cfg.init)
    items, held = pairs(cfg, ref, config), eval_pairs(cfg, ref, config)
    results = {"stage": STAGE, "config": {**asdict(cfg), "model": config.to_dict()},
               "data": {"pairs": len(items), "held_out_pairs": len(held),
                        "kinds": {k: sum(i[3] == k for i in items) for k in ("unknown", "known", "near", "sum")},
                        "unknown": {"sft_demos": list(world.DEMO_UNKNOWN), "dpo": list(world.DPO_UNKNOWN),
                                    "held_out": list(world.HELD_OUT_UNKNOWN)},
                        "examples": [{"prompt": i[0][-1][1], "chosen": i[1], "rejected": i[2], "kind": i[3]}
                                     for i in items[:8]]},
               "before": {"behaviour": behaviour(ref, config, held)}}
    params, ref, config, curve = optimize(cfg, out_dir, items, progress=STAGE if progress else None)
    checkpoint.save(out_dir / "checkpoints" / f"{STAGE}.npz", config, tok, params,
                    meta={"step": cfg.train.steps, "from": cfg.init, "beta": cfg.beta})
    results["curve"] = curve
    results["after"] = summary(params, ref, config, held, cfg.beta)
    results["by_kind"] = by_kind(params, ref, config, held, cfg.beta)
    results["betas"] = {}
    for beta in betas:
        if beta == cfg.beta:
            results["betas"][str(beta)] = {"curve": curve[-1:], **results["after"]}
            continue
        bcfg = replace(cfg, beta=beta)
        p, r, c, bcurve = optimize(bcfg, out_dir, items, progress=f"beta {beta}" if progress else None)
        results["betas"][str(beta)] = {"curve": bcurve[-1:], **summary(p, r, c, held, beta)}
    if long:
        p, r, c, lcurve = optimize(cfg, out_dir, items, steps=cfg.train.steps * long,
                                   progress="too long" if progress else None)
        results["long"] = {"steps": cfg.train.steps * long, "curve": lcurve, **summary(p, r, c, held, cfg.beta)}
    if hot:
        hcfg = replace(cfg, train=replace(cfg.train, lr=cfg.train.lr * hot))
        p, r, c, hcurve = optimize(hcfg, out_dir, items, progress="too fast" if progress else None)
        results["hot"] = {"lr": hcfg.train.lr, "curve": hcurve[-1:], **summary(p, r, c, held, cfg.beta)}
    if widget:
        wparams, wref, wconfig, wcurve = optimize(widget, out_dir, items, progress="widget" if progress else None)
        checkpoint.save(out_dir / "checkpoints" / f"{STAGE}_widget.npz", wconfig, tok, wparams,
                        meta={"step": widget.train.steps, "from": widget.init, "beta": widget.beta})
        results["widget"] = {"config": {**asdict(widget), "model": wconfig.to_dict()}, "curve": wcurve[-1:],
                             "before": behaviour(wref, wconfig, held), "after": behaviour(wparams, wconfig, held)}
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    (out_dir / "results" / f"{STAGE}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def by_kind(params, ref, config, held, beta):
    """Chosen and rejected log-probs, policy against reference, per kind of pair: where both fall (likelihood
    displacement) it shows most on the near-identical pairs."""
    out = {}
    for kind in ("unknown", "known", "near", "sum"):
        items = [i for i in held if i[3] == kind]
        rc, rr = reference_logps(ref, config, items)
        pc, pr = reference_logps(params, config, items)
        out[kind] = {"ref_chosen": float(rc.mean()), "ref_rejected": float(rr.mean()),
                     "chosen": float(pc.mean()), "rejected": float(pr.mean()),
                     "margin": float(beta * ((pc - rc) - (pr - rr)).mean())}
    return out


def main(argv=None):
    args = stage_parser("DPO from the SFT checkpoint on the world's preference pairs.").parse_args(argv)
    out = args.out or (Path("quick-run") if args.quick else ROOT)
    use_heap_for_temporaries()
    if args.quick:
        results = run(QUICK, out, betas=(), long=0, hot=0)
    else:
        results = run(LESSON, out, widget=WIDGET)
    a = results["after"]
    print(f"held-out: reward accuracy {a['reward_accuracy']:.2f}, refuses unknown {a['behaviour']['unknown']}, "
          f"KL {a['kl']:.3f}; wrote {out / 'results' / (STAGE + '.json')}")


if __name__ == "__main__":
    main()
