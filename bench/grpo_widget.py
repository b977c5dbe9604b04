"""Lesson 06's GRPO widget: how long is one live GRPO step in the browser, and how soon after Train does it show?

    OPENBLAS_NUM_THREADS=1 python bench/grpo_widget.py             # builds the site into a temp dir
    OPENBLAS_NUM_THREADS=1 python bench/grpo_widget.py --site site # or measures an existing build

Measures, in one run:
  1. the same `widgets.grpo` calls in Chromium's Pyodide (bench/pyodide_bench.py's bare worker) and natively:
     one `group` (K 8 rollouts of one problem, scored, all four loss types' weights), and `step(session, n)` with
     K 8 (prompts_per_step(8) prompts × 8 rollouts: sample, verify, GRPO loss, backward, AdamW) on the default
     problem set and on fresh problems of 2-4 summands (04_rlvr.WIDGET's set, longer replies): steps/s and s/step;
  2. on the real widget page: seconds from page load to the first group, and from pressing Train to the mean
     reward (mean of the last 10 steps, as drawn) 0.15 above its first value; the steps/s the page sustains.
The machine is shared and noisy: each figure is a median of several repetitions.
"""
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyodide_bench import (ROOT, bench_parser, booted_bare_page, mark, native_python, presses, press_js,  # noqa: E402
                           print_rows, rate_rows, steps_per_second, use_native_heap, wasm_python)

CHUNK, CALLS, GROUPS = 5, 4, 5
SETS = ("few", "mixed")

CODE = """
import json, time
from widgets import grpo
grpo.group(path={path!r}, seed=0)                        # load the checkpoint
out = []
for rep in range({reps}):
    g = []
    for i in range({groups}):
        t0 = time.perf_counter(); grpo.group(path={path!r}, problem="", n=3, seed=100 * rep + i)
        g.append(1000 * (time.perf_counter() - t0))
    steps = {{}}
    for problems in {sets!r}:
        s = grpo.start(path={path!r}, problems=problems, K=8, seed=rep, steps=300)["session"]
        grpo.step(s, 2)                                  # warm up
        steps[problems] = []
        for _ in range({calls}):
            t0 = time.perf_counter(); grpo.step(s, {chunk}); steps[problems].append(1000 * (time.perf_counter() - t0))
        grpo.close(s)
    out.append({{"group_ms": g, "step_ms": steps}})
json.dumps(out)
"""

PRESS_JS = press_js(["data-metrics"], check="""    const m = root.dataset.metrics ? JSON.parse(root.dataset.metrics).reward || [] : [];
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    if (m.length >= 1 && marks.first === undefined) { marks.first = now; }
    if (m.length >= 20 && marks.rise === undefined && mean(m.slice(-10)) > mean(m.slice(0, 10)) + 0.15) {
      marks.rise = now; marks.riseStep = m.length; }""", done="marks.rise !== undefined || now > 90")


def rates(reps, problems):
    return [steps_per_second(CHUNK, r["step_ms"][problems]) for r in reps]


def main():
    args = bench_parser(__doc__).parse_args()
    use_native_heap()
    from widgets import grpo
    code = lambda path: CODE.format(reps=args.reps, calls=CALLS, chunk=CHUNK, groups=GROUPS, sets=SETS, path=path)
    with booted_bare_page(args.site) as (browser, page, base):
        ckpt = "/" + grpo.CHECKPOINT.split("/")[-1]
        wasm = wasm_python(page, base, code(ckpt), {ckpt: grpo.CHECKPOINT})
        native = native_python(code(str(ROOT / grpo.CHECKPOINT)))
        page.close()
        presses_ = presses(browser, base, "grpo", "d.status === 'ready' && !!d.group", PRESS_JS, args.reps,
                           timeout=180_000, timed=True)
    report(grpo, wasm, native, presses_, args.reps)


def report(grpo, wasm, native, presses, reps):
    med = statistics.median
    gw, gn = (med(x for r in side for x in r["group_ms"]) for side in (wasm, native))
    rows = [("one group: K 8 rollouts of a 3-summand problem, scored, 4 loss types' weights, wasm / native",
             f"{gw:.0f} / {gn:.0f} ms", f"{gw / gn:.1f}x")]
    for problems in SETS:
        w, n = med(rates(wasm, problems)), med(rates(native, problems))
        rows += rate_rows(f"GRPO steps/s, K 8 × {grpo.prompts_per_step(8)} prompts, problem set {problems!r}", w, n)
    rows += [("page load -> first group shown (boot + checkpoint + group)", f"{med([m['prepared'] for m in presses]):.1f} s", ""),
             ("press Train -> first chart point", f"{med([m['first'] for m in presses]):.1f} s", ""),
             ("press Train -> mean reward (last 10 steps) 0.15 above the first 10", mark(presses, "rise", "riseStep"), ""),
             ("steps/s the UI sustains (chunks + redraws)", f"{med([m['stepsPerSecond'] for m in presses]):.1f}", "")]
    print_rows(f"bench/grpo_widget.py: medians of {reps} repetitions", rows)
    print("\nraw:", json.dumps({"wasm": wasm, "native": native, "presses": presses}))


if __name__ == "__main__":
    main()
