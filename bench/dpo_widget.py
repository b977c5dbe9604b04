"""Lesson 05's DPO widget: how fast does DPO run in the browser, and how soon after Train does it show?

    python bench/dpo_widget.py                 # builds the site into a temp dir
    python bench/dpo_widget.py --site site     # or measures an existing build

Measures, in one run:
  1. the same `widgets.dpo` calls in Chromium's Pyodide (bench/pyodide_bench.py's bare worker) and natively:
     the first `start` (03_dpo.pairs with the reference's sampled answers, reference_logps, the held-out replies),
     `step(session, n)` steps/s (03_dpo.batches, dpo_loss_fn, WIDGET's batch of 8 pairs) and one `evaluate`
     (greedy replies + 03_dpo.drift);
  2. on the real widget page: seconds from page load to the prepared session, and from pressing Train to the
     reward margin (mean of the last 10 steps, as drawn) above 0.1, and to the first evaluation where a held-out
     unknown person the SFT model answered is refused ("i do not know."); the steps/s the UI sustains.
The machine is shared and noisy: each figure is a median of several repetitions.
"""
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyodide_bench import (ROOT, bench_parser, booted_bare_page, mark, native_python, presses, press_js,  # noqa: E402
                           print_rows, rate_rows, steps_per_second, use_native_heap, wasm_python)

CHUNK, CALLS = 10, 4

# The same code natively and in the worker: returns JSON with the first start's, each step call's and one
# evaluate's times (ms).
CODE = """
import json, time
from widgets import dpo
t0 = time.perf_counter(); dpo.start(path={path!r}); first = 1000 * (time.perf_counter() - t0)
out = []
for rep in range({reps}):
    s = dpo.start(path={path!r}, seed=rep)["session"]
    dpo.step(s, 2)                                   # warm up
    steps = []
    for _ in range({calls}):
        t0 = time.perf_counter(); dpo.step(s, {chunk}); steps.append(1000 * (time.perf_counter() - t0))
    t0 = time.perf_counter(); dpo.evaluate(s); ev = 1000 * (time.perf_counter() - t0)
    out.append({{"first_start_ms": first, "step_ms": steps, "evaluate_ms": ev}})
json.dumps(out)
"""

PRESS_JS = press_js(["data-metrics", "data-eval"], setup="\n  const before = JSON.parse(root.dataset.before);",
                    check="""    const m = root.dataset.metrics ? JSON.parse(root.dataset.metrics)["rewards/margins"] : [];
    const recent = m.slice(-10);
    const margin = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : 0;
    if (m.length >= 10 && margin > 0.1 && marks.margin === undefined) { marks.margin = now; marks.marginStep = m.length; }
    const ev = root.dataset.eval ? JSON.parse(root.dataset.eval) : null;
    if (ev && marks.firstEval === undefined) { marks.firstEval = now; marks.firstEvalStep = ev.step; }
    const switched = ev && before.rows.some((b, i) => b.kind === "unknown" && !b.correct &&
                                                      ev.replies[i] === "i do not know.");
    if (switched && marks.refusal === undefined) { marks.refusal = now; marks.refusalStep = ev.step; }""",
                    done="(marks.refusal !== undefined && marks.margin !== undefined) || now > 90")


def rates(reps):
    """Each repetition's DPO steps per second over its timed step calls."""
    return [steps_per_second(CHUNK, r["step_ms"]) for r in reps]


def same_calls(page, base, reps, ckpt):
    """CODE in the bare page's worker (the checkpoint fetched to `ckpt`), then natively on the repository's."""
    from widgets import dpo
    code = lambda path: CODE.format(reps=reps, calls=CALLS, chunk=CHUNK, path=path)
    return (wasm_python(page, base, code(ckpt), {ckpt: dpo.CHECKPOINT}),
            native_python(code(str(ROOT / dpo.CHECKPOINT))))


def main():
    args = bench_parser(__doc__).parse_args()
    use_native_heap()
    from widgets import dpo
    with booted_bare_page(args.site) as (browser, page, base):
        wasm, native = same_calls(page, base, args.reps, "/" + dpo.CHECKPOINT.split("/")[-1])
        page.close()
        presses_ = presses(browser, base, "dpo", "d.status === 'ready' && !!d.before", PRESS_JS, args.reps,
                           timeout=180_000, timed=True)
    report(dpo, wasm, native, presses_, args.reps)


def report(dpo, wasm, native, presses, reps):
    med = statistics.median
    w, n = med(rates(wasm)), med(rates(native))
    ew, en = med(r["evaluate_ms"] for r in wasm), med(r["evaluate_ms"] for r in native)
    fw, fn = wasm[0]["first_start_ms"], native[0]["first_start_ms"]

    cfg = dpo.CFG.train
    rows = [
        (f"first start: {dpo.N_PAIRS} pairs + reference log-probs + held-out replies, wasm / native",
         f"{fw / 1000:.1f} / {fn / 1000:.2f} s", ""),
        *rate_rows(f"DPO train steps/s (batch {cfg.batch_size} pairs, lr {cfg.lr:g})", w, n),
        ("one evaluate call (12 greedy replies + drift), wasm / native", f"{ew:.0f} / {en:.0f} ms", ""),
        ("page load -> prepared session (boot + first start)", f"{med([m['prepared'] for m in presses]):.1f} s", ""),
        ("press Train -> reward margin (last 10 steps) > 0.1", mark(presses, "margin", "marginStep"), ""),
        ("press Train -> first evaluation", mark(presses, "firstEval", "firstEvalStep"), ""),
        ("press Train -> a held-out unknown person refused", mark(presses, "refusal", "refusalStep"), ""),
        ("steps/s the UI sustains (chunks + evals + redraws)", f"{med([m['stepsPerSecond'] for m in presses]):.1f}", ""),
    ]
    print_rows(f"bench/dpo_widget.py: medians of {reps} repetitions", rows)
    print("\nraw:", json.dumps({"wasm": wasm, "native": native, "presses": presses}))


if __name__ == "__main__":
    main()
