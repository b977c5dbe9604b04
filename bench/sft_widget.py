"""Lesson 03's SFT widget: how fast does it fine-tune in the browser, and how soon after Train does SFT show?

    python bench/sft_widget.py                 # builds the site into a temp dir
    python bench/sft_widget.py --site site     # or measures an existing build

Measures, in one run:
  1. `widgets.sft.step(session, n)` steps/s (01_sft's batches, train.next_token_loss) in the live run's batch
     (widgets.sft.BATCH_SIZE) and in WIDGET's own, and the time of one `evaluate` chunk (greedy replies + probes),
     in Chromium's Pyodide (bench/pyodide_bench.py's bare worker) and natively: the same Python, run in both;
  2. natively, for both batch sizes and a few seeds: the step of the first score (every EVAL_EVERY steps, as the
     widget scores) at which the model ends its turns (ends_turn > 0.5) and gets a held-out answer right
     (accuracy > 0); the maths is the same in wasm, so this is the step the browser reaches it at too;
  3. on the real widget page: seconds from pressing Train to the first evaluation and to that effect, and the
     steps/s the UI sustains.
The machine is shared and noisy: each figure is a median of several repetitions, the two batch sizes alternating.
"""
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyodide_bench import (ROOT, bench_parser, booted_bare_page, mark, native_python, presses, press_js,  # noqa: E402
                           print_rows, rate_rows, steps_per_second, use_native_heap, wasm_python)

CHUNK, CALLS = 10, 6

# The same code natively and in the worker: per-call step and evaluate times (ms) for each batch size.
CODE = """
import json, time
from dataclasses import replace
from widgets import sft
sft.info()
live = sft.CFG
out = []
for rep in range({reps}):
    for b in ({batches} if rep % 2 == 0 else {batches}[::-1]):
        sft.CFG = replace(live, train=replace(live.train, batch_size=b))
        s = sft.start(path={path!r}, seed=rep)["session"]
        sft.step(s, 2)                                   # warm up
        steps = []
        for _ in range({calls}):
            t0 = time.perf_counter(); sft.step(s, {chunk}); steps.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter(); sft.evaluate(s, 0, sft.EVAL_CHUNK); ev = 1000 * (time.perf_counter() - t0)
        out.append({{"batch": b, "step_ms": steps, "eval_chunk_ms": ev}})
        sft.close(s)
sft.CFG = live
json.dumps(out)
"""

PRESS_JS = press_js(["data-metrics", "data-losses"], done="marks.sft !== undefined || now > 90",
                    check="""    const m = root.dataset.metrics ? JSON.parse(root.dataset.metrics) : null;
    if (m && marks.firstEval === undefined) { marks.firstEval = now; marks.firstEvalStep = Number(root.dataset.evalStep); }
    if (m && m.ends_turn > 0.5 && m.accuracy > 0 && marks.sft === undefined) {
      marks.sft = now; marks.sftStep = Number(root.dataset.evalStep);
    }""")


def rates(reps, batch):
    return [steps_per_second(CHUNK, r["step_ms"]) for r in reps if r["batch"] == batch]


def effect_step(sft, batch, seed, limit=300):
    """Natively: the step of the first score at which the model ends its turns and answers one held-out prompt."""
    live = sft.CFG
    sft.CFG = replace(live, train=replace(live.train, batch_size=batch))
    try:
        s = sft.start(path=str(ROOT / sft.CHECKPOINT), seed=seed)["session"]
        step = 0
        while step < limit:
            step = sft.step(s, sft.EVAL_EVERY)["step"]
            offset, ev = 0, {"done": False}
            while not ev["done"]:
                ev = sft.evaluate(s, offset, sft.EVAL_CHUNK)
                offset += sft.EVAL_CHUNK
            if ev["metrics"]["ends_turn"] > 0.5 and ev["metrics"]["accuracy"] > 0:
                return step
        return None
    finally:
        sft.CFG = live


def main():
    ap = bench_parser(__doc__)
    ap.add_argument("--seeds", type=int, default=5, help="seeds for the native effect step")
    args = ap.parse_args()
    use_native_heap()
    from widgets import sft
    batches = [sft.BATCH_SIZE, sft._stage.WIDGET.train.batch_size]
    code = lambda path: CODE.format(reps=args.reps, batches=batches, calls=CALLS, chunk=CHUNK, path=path)
    ckpt = "/" + sft.CHECKPOINT.split("/")[-1]
    with booted_bare_page(args.site) as (browser, page, base):
        wasm = wasm_python(page, base, code(ckpt), {ckpt: sft.CHECKPOINT})
        page.close()
        presses_ = presses(browser, base, "sft", "d.status === 'ready' && !!d.tokens", PRESS_JS, args.reps)
    native = native_python(code(str(ROOT / sft.CHECKPOINT)))
    effects = {b: [effect_step(sft, b, seed) for seed in range(args.seeds)] for b in batches}

    med = statistics.median

    cfg = sft.CFG.train
    rows = []
    for b in batches:
        w, n = med(rates(wasm, b)), med(rates(native, b))
        first = effects[b]
        rows += [
            *rate_rows(f"SFT train steps/s, batch {b}" + (" (the live run)" if b == sft.BATCH_SIZE else " (WIDGET's)"),
                       w, n),
            (f"  effect at step (native, seeds 0-{args.seeds - 1})", " ".join(str(s) for s in first), ""),
        ]
    ew = med(r["eval_chunk_ms"] for r in wasm if r["batch"] == cfg.batch_size)
    en = med(r["eval_chunk_ms"] for r in native if r["batch"] == cfg.batch_size)
    rows += [
        (f"one evaluate call ({sft.EVAL_CHUNK} prompts), wasm / native", f"{ew:.0f} / {en:.0f} ms", ""),
        (f"the page (batch {cfg.batch_size}, lr {cfg.lr:g}): press Train -> first evaluation",
         mark(presses_, "firstEval", "firstEvalStep"), ""),
        ("  press Train -> ends_turn > 0.5 and accuracy > 0", mark(presses_, "sft", "sftStep"), ""),
        ("  steps/s the UI sustains (chunks + evals + redraws)", f"{med([m['stepsPerSecond'] for m in presses_]):.1f}",
         ""),
    ]
    print_rows(f"bench/sft_widget.py: medians of {args.reps} repetitions", rows)
    print("\nraw:", json.dumps({"wasm": wasm, "native": native, "presses": presses_, "effects": effects}))


if __name__ == "__main__":
    main()
