"""Lesson 03's SFT widget: how fast does it fine-tune in the browser, and how soon after Train does SFT show?

    python bench/sft_widget.py                 # builds the site into a temp dir
    python bench/sft_widget.py --site site     # or measures an existing build

Measures, in one run:
  1. `widgets.sft.step(session, n)` steps/s (01_sft's batches, train.next_token_loss, WIDGET's batch) and the time
     of one `evaluate` chunk (greedy replies + probes), in Chromium's Pyodide (bench/pyodide_bench.py's bare
     worker) and natively: the same Python, run in both;
  2. on the real widget page: seconds from pressing Train to the first evaluation where the model ends its turn
     (ends_turn > 0.5) and gets an answer right (accuracy > 0), and the steps/s the UI sustains.
The machine is shared and noisy: each figure is a median of several repetitions.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyodide_bench import ROOT, booted_bare_page, run_python  # noqa: E402

CHUNK, CALLS = 10, 6

# The same code natively and in the worker: returns JSON with per-call step and evaluate times (ms).
CODE = """
import json, time
from widgets import sft
sft.info()
out = []
for rep in range({reps}):
    s = sft.start(path={path!r}, seed=rep)["session"]
    sft.step(s, 2)                                   # warm up
    steps = []
    for _ in range({calls}):
        t0 = time.perf_counter(); sft.step(s, {chunk}); steps.append(1000 * (time.perf_counter() - t0))
    t0 = time.perf_counter(); sft.evaluate(s, 0, sft.EVAL_CHUNK); ev = 1000 * (time.perf_counter() - t0)
    out.append({{"step_ms": steps, "eval_chunk_ms": ev}})
json.dumps(out)
"""

PRESS_JS = """(sel) => new Promise((resolve) => {
  const root = document.querySelector(sel);
  const t0 = performance.now();
  const marks = {};
  const obs = new MutationObserver(() => {
    const now = (performance.now() - t0) / 1000;
    const m = root.dataset.metrics ? JSON.parse(root.dataset.metrics) : null;
    if (m && marks.firstEval === undefined) { marks.firstEval = now; marks.firstEvalStep = Number(root.dataset.evalStep); }
    if (m && m.ends_turn > 0.5 && m.accuracy > 0 && marks.sft === undefined) {
      marks.sft = now; marks.sftStep = Number(root.dataset.evalStep);
    }
    if (marks.sft !== undefined || now > 90) {
      obs.disconnect();
      marks.stepsPerSecond = Number(root.dataset.stepsPerSecond);
      root.querySelector(".w-train").click();        // Stop
      resolve(marks);
    }
  });
  obs.observe(root, {attributes: true, attributeFilter: ["data-metrics", "data-losses"]});
  root.querySelector(".w-train").click();
})"""


def rates(reps):
    return [CHUNK * len(r["step_ms"]) / (sum(r["step_ms"]) / 1000) for r in reps]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, help="an existing build (default: build into a temp dir)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    from gpt_mini.train import use_heap_for_temporaries
    use_heap_for_temporaries()                       # what the stage scripts do natively (no-op in Pyodide)
    from widgets import sft
    ckpt = "/" + sft.CHECKPOINT.split("/")[-1]
    with booted_bare_page(args.site) as (browser, page, base):
        wasm = json.loads(run_python(page, CODE.format(reps=args.reps, calls=CALLS, chunk=CHUNK, path=ckpt),
                                     zip_url=base + "py/gpt_mini.zip", files={ckpt: base + sft.CHECKPOINT}))
        page.close()
        presses = []
        for _ in range(args.reps):
            page = browser.new_page()
            page.goto(base + "widgets/sft.html")
            page.wait_for_function("""() => { const d = document.querySelector('[data-widget=sft]').dataset;
                                      return d.status === 'ready' && !!d.tokens; }""", timeout=120_000)
            presses.append(page.evaluate(PRESS_JS, '[data-widget="sft"]'))
            page.close()
    scope = {}
    exec(CODE.format(reps=args.reps, calls=CALLS, chunk=CHUNK, path=str(ROOT / sft.CHECKPOINT)), scope)
    native = json.loads(eval("json.dumps(out)", scope))

    med = statistics.median
    w, n = med(rates(wasm)), med(rates(native))
    ew, en = med(r["eval_chunk_ms"] for r in wasm), med(r["eval_chunk_ms"] for r in native)

    def mark(key, step):
        vals = [m[key] for m in presses if m.get(key) is not None]
        steps = [m[step] for m in presses if m.get(step) is not None]
        return f"{med(vals):.1f} s (step {int(med(steps))})" if vals else "not reached in 90 s"

    cfg = sft.CFG.train
    rows = [
        (f"SFT train steps/s, WIDGET (batch {cfg.batch_size}, lr {cfg.lr:g})", "", ""),
        ("  Chromium / Pyodide (wasm)", f"{w:.1f}", f"{1000 / w:.0f} ms/step"),
        ("  native (this machine, same calls)", f"{n:.1f}", f"{1000 / n:.0f} ms/step"),
        ("  wasm slowdown", f"{n / w:.1f}x", ""),
        (f"one evaluate call ({sft.EVAL_CHUNK} prompts), wasm / native", f"{ew:.0f} / {en:.0f} ms", ""),
        ("press Train -> first evaluation", mark("firstEval", "firstEvalStep"), ""),
        ("press Train -> ends_turn > 0.5 and accuracy > 0", mark("sft", "sftStep"), ""),
        ("steps/s the UI sustains (chunks + evals + redraws)", f"{med([m['stepsPerSecond'] for m in presses]):.1f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nbench/sft_widget.py: medians of {args.reps} repetitions\n")
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>22}  {note}")
    print("\nraw:", json.dumps({"wasm": wasm, "native": native, "presses": presses}))


if __name__ == "__main__":
    main()
