"""Slide the number of summands and watch the direct-vs-CoT accuracy gap open up, live.

The two models 02_cot ships (the same SFT code path fine-tuned on the answer alone, "direct", or on the running
partial sums, "CoT") answer fresh problems of n summands in the browser, a few problems per call, greedily or at a
sampling temperature. Every number is 02_cot's own: `question`, `problems`, `final_answer`, `first_error`, `wilson`,
and the replies come from 01_sft.respond (batched sampling with a KV cache), as in 02_cot.evaluate.

JSON in, JSON out, no DOM. A session holds one experiment (temperature, seed): the same PER_N problems per n for
both models, answered a chunk at a time:
    info()                                   -> ranges (trained, evaluated), the temperature ladder, model, paths
    start(temperature, seed, direct, cot, results) -> session (checkpoints and the greedy reference read from paths)
    step(session, n, count)                  -> `count` more problems answered at n (or the next unfinished n):
                                                 tallies per n, the trace to show, what broke and why
    view(session, n)                         -> the same view for another n, nothing answered
    close(session)
Breaking configurations come back as explanations {what, why, try}: an n beyond the trained range, and a
temperature whose measured CoT accuracy falls clearly below the greedy reference.
"""

import json
import random

import numpy as np

from gpt_mini import checkpoint, stage

from ._live import Sessions, number

__all__ = ["info", "start", "step", "view", "close"]

_stage = stage("02_cot")
CFG = _stage.LESSON                  # its `trained` and `evaluated` ranges are the widget's; nothing is retyped
SFT = _stage.SFT

# Which checkpoints answer in the browser: measured with bench/cot_widget.py (README.md, Benchmarks; chunks of 8, both
# models answer each problem, medians of 3 on a shared machine, load 5-10). In Chromium's Pyodide the lesson models
# take 25-110 ms per problem (n = 2..7, greedy or at 1.5; two runs), so a ~400 ms call answers a few problems and the
# page answers a whole experiment (6 n x PER_N problems, both models) in ~25 s. The widget models take 3-25 ms but
# score far worse (results/02_cot.json "widget": CoT 0.76 / 0.40 / 0.14 / 0.02 at n = 2..5 against the lesson models'
# 0.96 / 0.86 / 0.63 / 0.42), so their gap closes by n = 4. The widget shows the lesson's own models (MODEL_NOTE).
MODELS = {
    "lesson": {"direct": "checkpoints/02_cot_direct.npz", "cot": "checkpoints/02_cot_cot.npz",
               "results_key": ("models",)},
    "widget": {"direct": "checkpoints/02_cot_direct_widget.npz", "cot": "checkpoints/02_cot_cot_widget.npz",
               "results_key": ("widget",)},
}
MODEL = "lesson"
CHECKPOINTS = {k: MODELS[MODEL][k] for k in ("direct", "cot")}   # relative to the site root or the repository
RESULTS = "results/02_cot.json"

# The knobs a page gets when its directive sets none (build.py reads this literal).
DEFAULT_KNOBS = {"n": 4, "temperature": 0, "seed": 0}

# 0 is greedy (the most likely token each step, as 02_cot.evaluate scores); the others sample at that temperature.
TEMPERATURES = (0, 0.3, 0.5, 0.7, 1.0, 1.2, 1.5, 2.0)
SEED_RANGE = (0, 9)
PER_N = 40                 # problems per number of summands in one experiment (95% Wilson half-width ≲ 0.15)
MAX_CHUNK = 16             # problems one call answers at most (the UI asks for a few, adapted to ~300 ms a call)
MAX_SESSIONS = 4
# Too hot: the CoT model's accuracy over the answered problems in the trained range, when its 95% Wilson upper
# bound is below the greedy reference (the stage's own greedy accuracy on the same n, from results/02_cot.json)
# by HOT_MARGIN, once HOT_MIN problems are in. Measured natively on the lesson models (this widget's problems,
# seed 0, 40 per n, n = 2, 3, 4, 5; tokens per reply include the end token):
#   greedy  CoT 0.98 0.93 0.60 0.63 (4.6-16.3 tokens)   direct 0.80 0.10 0.08 0.10 (4.6-5.0 tokens)
#   T = 0.5 CoT 1.00 0.78 0.62 0.47                     direct 0.80 0.10 0.12 0.07   never flagged
#   T = 0.7 CoT 1.00 0.70 0.57 0.33                     direct 0.53 0.05 0.10 0.05   never flagged
#   T = 1.0 CoT 0.93 0.62 0.45 0.28                     direct 0.45 0.03 0.10 0.05   flagged after 72 problems
#   T = 1.5 CoT 0.80 0.50 0.35 0.15                     direct 0.30 0.05 0.10 0.03   flagged after 16
# (answered from n = 2 up, in chunks of 16; the reference is the stage's greedy 0.96 0.86 0.63 0.42 on its own 200
# problems per n). The stage itself measured CoT at 1.5: 0.72 0.52 0.44 0.28.
HOT_MIN = 12
HOT_MARGIN = 0.05

_SESSIONS = Sessions(MAX_SESSIONS)
_models = {}


def _load(path):
    if path not in _models:
        if len(_models) >= 4:
            _models.pop(next(iter(_models)))
        config, _, params, meta = checkpoint.load(path)
        _models[path] = (config, params)
    return _models[path]


def _reference(results_path):
    """The stage's greedy accuracy per n for the shipped models ({"direct": {n: acc}, "cot": {n: acc}}), or None."""
    try:
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
        node = results
        for key in MODELS[MODEL]["results_key"]:
            node = node[key]
        if MODEL == "lesson":
            return {m: {int(n): v["accuracy"] for n, v in node[m]["eval"].items()} for m in ("direct", "cot")}
        return {m: {int(n): v["accuracy"] for n, v in node["eval"][m].items()} for m in ("direct", "cot")}
    except (OSError, KeyError, ValueError, TypeError):
        return None


def info():
    """Every constant the UI shows or binds: the ranges (from 02_cot's config), the temperature ladder, the model."""
    lo, hi = CFG.trained
    return {"defaults": DEFAULT_KNOBS, "trained": list(CFG.trained), "evaluated": list(CFG.evaluated),
            "beyond": [n for n in range(CFG.evaluated[0], CFG.evaluated[1] + 1) if not lo <= n <= hi],
            "temperatures": list(TEMPERATURES), "seed_range": list(SEED_RANGE), "per_n": PER_N,
            "max_chunk": MAX_CHUNK, "model": MODEL, "checkpoints": CHECKPOINTS, "results": RESULTS,
            "model_note": MODEL_NOTE, "n_train": CFG.n_train, "summand_range": [0, 99]}


_size = {"lesson": stage("00_pretrain").LESSON.model, "widget": stage("00_pretrain").WIDGET.model}[MODEL]
MODEL_NOTE = (f"the lesson's own models ({_size.n_layer} layers, {_size.n_embd} channels), the ones 02_cot scores: "
              f"fast enough in the browser (bench/cot_widget.py), so the accuracies here are the lesson's")


# ----------------------------------------------------------------------------- an experiment

class _Experiment:
    def __init__(self, temperature, seed, direct, cot, reference):
        self.temperature, self.seed = temperature, seed
        self.models = {"direct": direct, "cot": cot}
        self.reference = reference
        lo, hi = CFG.evaluated
        self.ns = list(range(lo, hi + 1))
        self.problems = {n: _stage.problems(n, PER_N, random.Random(f"cot-widget-{seed}-{n}")) for n in self.ns}
        self.done = {n: [] for n in self.ns}          # per n: one record per answered problem, in order

    def answered(self):
        return sum(len(v) for v in self.done.values())

    def next_n(self, n):
        """n itself while it has problems left, else the nearest unfinished n (smaller first), else None."""
        for m in sorted(self.ns, key=lambda m: (abs(m - n), m)):
            if len(self.done[m]) < PER_N:
                return m
        return None

    def answer(self, n, count):
        i = len(self.done[n])
        batch = self.problems[n][i:i + count]
        convs = [[("user", _stage.question(p))] for p in batch]
        # one seed per problem: a problem's sample never depends on the chunk it was answered in
        seeds = [int(np.random.SeedSequence([self.seed, n, i + j]).generate_state(1)[0]) for j in range(len(batch))]
        temperature = self.temperature or None
        replies = {}
        for name, (config, params) in self.models.items():
            replies[name] = SFT.respond(params, config, convs, config.block_size, temperature,
                                        seeds if temperature else 0)
        for j, p in enumerate(batch):
            rec = {"index": i + j, "summands": p, "answer": sum(p)}
            for name in self.models:
                r = replies[name][j]
                rec[name] = {"reply": r["text"], "ended": r["ended"],
                             "right": _stage.final_answer(r["text"]) == sum(p) and r["ended"],
                             "tokens": len(r["text"]) + r["ended"]}
            rec["cot"]["first_error"] = _stage.first_error(p, rec["cot"]["reply"])
            self.done[n].append(rec)
        return len(batch)


def _temperature(t):
    t = number("temperature", t, 0, max(TEMPERATURES))
    if t and t < 0.05:
        raise ValueError(f"temperature must be 0 (greedy) or at least 0.05, got {t:g}")
    return t


def start(temperature=DEFAULT_KNOBS["temperature"], seed=DEFAULT_KNOBS["seed"], direct=CHECKPOINTS["direct"],
          cot=CHECKPOINTS["cot"], results=RESULTS):
    """A new experiment: both models (read from `direct` and `cot`, the browser worker's copies of CHECKPOINTS),
    PER_N fresh problems per n drawn from `seed`, nothing answered yet."""
    temperature = _temperature(temperature)
    seed = number("seed", seed, 0, 2**31 - 1, integer=True)
    for name, path in (("direct", direct), ("cot", cot)):
        if not isinstance(path, str) or not path.endswith(".npz"):
            raise ValueError(f"{name} must be the path of a .npz checkpoint, got {path!r}")
    exp = _Experiment(temperature, seed, _load(direct), _load(cot), _reference(results))
    session = _SESSIONS.add(exp)
    return {"session": session, "temperature": temperature, "seed": seed, "step": 0,
            "steps": PER_N * len(exp.ns), "status": "ready", **_view(exp, DEFAULT_KNOBS["n"])}


def step(session, n=DEFAULT_KNOBS["n"], count=4):
    """Answer `count` more problems with both models at n (or, once n has all PER_N, at the nearest unfinished n).

    Returns what the shared loop needs (`status`, `step` = problems answered, `steps`, `losses` = one entry per
    problem answered in this call: whether CoT got it right) and the view of n (`view`)."""
    exp = _SESSIONS.get(session)
    n = _n(n)
    count = number("count", count, 1, MAX_CHUNK, integer=True)
    at = exp.next_n(n)
    answered = exp.answer(at, count) if at is not None else 0
    recs = exp.done[at][-answered:] if answered else []
    status = "done" if exp.next_n(n) is None else "training"
    return {"session": session, "status": status, "step": exp.answered(), "steps": PER_N * len(exp.ns),
            "answered_at": at, "losses": [r["cot"]["right"] for r in recs],
            "answered": [r["summands"] for r in recs], **_view(exp, n)}


def view(session, n):
    """The view of n without answering anything: tallies, the trace to show, the explanations. session may be null
    (no experiment yet): then only the beyond-range explanation."""
    n = _n(n)
    if session is None:
        return {"n": n, "tallies": None, "trace": None, "direct_reply": None, "beyond": _beyond(None, n),
                "hot": None}
    return _view(_SESSIONS.get(session), n)


def close(session):
    """Forget an experiment (Reset)."""
    return _SESSIONS.close(session)


def _n(n):
    return number("n", n, *CFG.evaluated, integer=True)


# ----------------------------------------------------------------------------- what the UI draws

def _tally(recs, name):
    k, m = sum(r[name]["right"] for r in recs), len(recs)
    return {"answered": m, "correct": int(k), "accuracy": k / m if m else None,
            "interval": _stage.wilson(k, m) if m else None,
            "tokens": float(np.mean([r[name]["tokens"] for r in recs])) if m else None}


def _view(exp, n):
    tallies = {str(m): {"direct": _tally(recs, "direct"), "cot": _tally(recs, "cot")} for m, recs in exp.done.items()}
    recs = exp.done[n]
    wrong = [r for r in recs if r["cot"]["first_error"] is not None]
    shown = (wrong or recs)[-1] if recs else None
    return {"n": n, "tallies": tallies, "trace": trace_view(shown) if shown else None,
            "direct_reply": ({"question": _stage.question(shown["summands"]), "reply": shown["direct"]["reply"],
                              "right": shown["direct"]["right"], "answer": shown["answer"]} if shown else None),
            "traces_wrong": len(wrong), "traces": len(recs),
            "beyond": _beyond(exp, n), "hot": _hot(exp)}


def trace_view(rec):
    """A CoT reply cut into the partial sums it wrote, each with the one it should have been, the first wrong one
    marked (02_cot.first_error), and what was missing if the trace stopped early."""
    summands, reply = rec["summands"], rec["cot"]["reply"]
    expected = [int(x) for x in np.cumsum(summands)[1:]]
    fe = rec["cot"]["first_error"]
    parts, pos = [], 0
    for i, m in enumerate(_stage.NUMBER.finditer(reply)):
        if m.start() > pos:
            parts.append({"kind": "text", "text": reply[pos:m.start()]})
        parts.append({"kind": "sum", "text": m.group(), "index": i,
                      "expected": expected[i] if i < len(expected) else None,
                      "first_error": i == fe, "after_error": fe is not None and i > fe})
        pos = m.end()
    if pos < len(reply):
        parts.append({"kind": "text", "text": reply[pos:]})
    written = sum(p["kind"] == "sum" for p in parts)
    return {"question": _stage.question(summands), "summands": summands, "reply": reply, "parts": parts,
            "expected": expected, "expected_text": _stage.cot_answer(summands), "answer": rec["answer"],
            "right": rec["cot"]["right"], "ended": rec["cot"]["ended"], "tokens": rec["cot"]["tokens"],
            "first_error": fe,
            "missing": ({"index": fe, "expected": expected[fe]} if fe is not None and fe >= written else None)}


def _pct(k, m):
    return f"{k}/{m} ({100 * k / m:.0f}%)"


def _beyond(exp, n):
    """n beyond the trained range: what both models do there, measured when there are answers, and why."""
    lo, hi = CFG.trained
    if lo <= n <= hi:
        return None
    what = (f"{n} summands is beyond the trained range: every training question had {lo} to {hi} summands, "
            f"every CoT trace at most {hi - 1} partial sums.")
    if exp is not None and exp.done[n]:
        recs = exp.done[n]
        d, c = _tally(recs, "direct"), _tally(recs, "cot")
        what += (f" Here the direct model got {_pct(d['correct'], d['answered'])} right and CoT "
                 f"{_pct(c['correct'], c['answered'])}")
        inside = exp.done[hi]
        if inside:
            what += f" (at {hi} summands: CoT {_pct(_tally(inside, 'cot')['correct'], len(inside))})"
        errs = [r["cot"]["first_error"] for r in recs if r["cot"]["first_error"] is not None]
        early = sum(e < hi - 1 for e in errs)
        if errs:
            short = sum(len(_stage.NUMBER.findall(r["cot"]["reply"])) < n - 1 for r in recs)
            what += (f". Of the {len(errs)} CoT traces that went wrong, {early} went wrong within their first "
                     f"{hi - 1} partial sums, no further than trained traces go (a question longer than any it saw "
                     f"throws off even those steps), and {len(errs) - early} only later, where the trace is longer than any it "
                     f"was trained on; {short} of {len(recs)} stopped before writing all {n - 1} sums.")
        else:
            what += "."
    return {"n": n, "trained": list(CFG.trained),
            "what": what,
            "why": (f"This is length generalisation, not reasoning. Each step of a trace is one easy addition the CoT "
                    f"model does well, but it learned them only in traces of at most {hi - 1} sums after questions "
                    f"of at most {hi} numbers: a longer question, and a position in the trace it never wrote at, are "
                    f"inputs it has never seen, and it tends to stop early or lose track of which number comes next. "
                    f"The direct model has to produce the whole sum without writing anything down, which was "
                    f"already failing inside the range."),
            "try": (f"Slide back to {hi} summands or fewer, where CoT's lead is clear. Training on longer traces "
                    f"(02_cot's `trained` range) would move the edge, not remove it.")}


def _span(ns):
    return f"{ns[0]}–{ns[-1]}" if len(ns) > 1 and ns == list(range(ns[0], ns[-1] + 1)) else ", ".join(map(str, ns))


def _hot(exp):
    """The sampling temperature is too hot when CoT's measured accuracy in the trained range falls clearly below
    its greedy accuracy (the stage's, on the same n): one wrong digit anywhere in a trace ruins the answer."""
    if not exp.temperature or not exp.reference:
        return None
    lo, hi = CFG.trained
    counts = {"direct": [0, 0, 0.0], "cot": [0, 0, 0.0]}     # right, answered, expected right at greedy
    tokens, direct_tokens, ns = [], [], []
    for n in range(lo, hi + 1):
        recs = exp.done[n]
        ns += [n] if recs else []
        for name, c in counts.items():
            c[0] += sum(r[name]["right"] for r in recs)
            c[1] += len(recs)
            c[2] += exp.reference[name].get(n, 0.0) * len(recs)
        tokens += [r["cot"]["tokens"] for r in recs]
        direct_tokens += [r["direct"]["tokens"] for r in recs]
    k, m, ref = counts["cot"]
    if m < HOT_MIN:
        return None
    upper = _stage.wilson(k, m)[1]
    if upper >= ref / m - HOT_MARGIN:
        return None
    dk, dm, dref = counts["direct"]
    L = float(np.mean(tokens))
    per_token = (k / m) ** (1 / L) if k else 0.0
    return {"temperature": exp.temperature, "accuracy": k / m, "greedy": ref / m, "answered": m,
            "tokens": L,
            "what": (f"At temperature {exp.temperature:g} the CoT model got {_pct(k, m)} right over the problems "
                     f"with {_span(ns)} summands, against {100 * ref / m:.0f}% greedy on the same numbers of "
                     f"summands (the direct model: {_pct(dk, dm)}, {100 * dref / dm:.0f}% greedy)."),
            "why": (f"Sampling draws every token from the model's distribution flattened by the temperature, so each "
                    f"token has some chance of being a wrong digit, and a CoT answer is only as good as its whole "
                    f"trace: one wrong digit in any partial sum is carried into every later sum and the final answer. "
                    f"CoT's traces here average {L:.1f} tokens against the direct model's "
                    f"{np.mean(direct_tokens):.1f}: more tokens, more chances to draw a wrong one" +
                    (f" (a {100 * k / m:.0f}% success over {L:.1f} tokens is what a {100 * per_token:.1f}% chance "
                     f"per token gives)." if k else ".")),
            "try": "Set the temperature to 0 (greedy) or lower it: the model's most likely tokens are the right ones."}
