"""Lesson 04's CoT widget: which shipped models can answer live in the browser, and how fast?

    python bench/cot_widget.py                 # builds the site into a temp dir
    python bench/cot_widget.py --site site     # or measures an existing build

Measures `widgets.cot.step` (both models answer the same problems: 01_sft.respond, batched sampling with a KV
cache) for the lesson models (02_cot_direct.npz / 02_cot_cot.npz, 4 layers, 96 channels) and the widget models
(*_widget.npz, 2 layers, 48 channels), greedy and at temperature 1.5, at n = 2, 5 and 7 summands, in Chromium's
Pyodide (bench/pyodide_bench.py's bare worker) and natively: the same Python in both. A figure is ms per problem
(both models) in chunks of CHUNK problems; the median of --reps repetitions (the machine is shared and noisy).
Then, on the real widget page (the lesson models, greedy): seconds from pressing Answer to the first chart point and
to the whole experiment (every n, both models), and the problems/s the page sustains while drawing.
"""
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyodide_bench import (ROOT, bench_parser, booted_bare_page, native_python, presses, press_js,  # noqa: E402
                           use_native_heap, wasm_python)

CHUNK, NS, TEMPERATURES = 8, (2, 5, 7), (0, 1.5)

CODE = """
import json, time
from widgets import cot
out = {{}}
for label, paths in {models!r}.items():
    for T in {temperatures!r}:
        for n in {ns!r}:
            times = []
            for rep in range({reps}):
                s = cot.start(temperature=T, seed=rep, direct=paths["direct"], cot=paths["cot"], results="/none.json")
                cot.step(s["session"], n=n, count=1)                  # warm up (and load the checkpoints)
                t0 = time.perf_counter(); cot.step(s["session"], n=n, count={chunk})
                times.append(1000 * (time.perf_counter() - t0) / {chunk})
                cot.close(s["session"])
            out[f"{{label}} T={{T}} n={{n}}"] = times
json.dumps(out)
"""


PRESS_JS = press_js(["data-tallies", "data-train"], done='root.dataset.train === "done" || now > 300',
                    check="""    const t = JSON.parse(root.dataset.tallies || "null");
    if (t && marks.first === undefined && Object.values(t).some((v) => v.cot.answered)) marks.first = now;""",
                    finish="""Object.assign(marks, {all: now, done: root.dataset.train === "done",
                            problemsPerSecond: Number(root.dataset.stepsPerSecond)});""")


def models(where):
    """{label: {"direct": path, "cot": path}} for both pairs of MODELS, each path `where(site-relative path)`."""
    from widgets.cot import MODELS
    return {label: {k: where(m[k]) for k in ("direct", "cot")} for label, m in MODELS.items()}


def main():
    args = bench_parser(__doc__).parse_args()
    use_native_heap()
    wasm_models = models(lambda rel: "/" + Path(rel).name)          # the worker's filesystem: flat in /
    files = {"/" + Path(rel).name: rel for m in models(str).values() for rel in m.values()}
    code = dict(reps=args.reps, chunk=CHUNK, ns=NS, temperatures=TEMPERATURES)
    with booted_bare_page(args.site) as (browser, page, base):
        wasm = wasm_python(page, base, CODE.format(models=wasm_models, **code), files)
        page.close()
        presses_ = presses(browser, base, "cot", "!!d.info", PRESS_JS, args.reps)
    native = native_python(CODE.format(models=models(lambda rel: str(ROOT / rel)), **code))
    med = statistics.median
    width = max(map(len, wasm))
    print(f"\nbench/cot_widget.py: ms per problem (both models answer it), chunks of {CHUNK}, medians of {args.reps}\n")
    print(f"{'':<{width}}  {'wasm':>8}  {'native':>8}  {'slowdown':>8}")
    for key in wasm:
        w, n = med(wasm[key]), med(native[key])
        print(f"{key:<{width}}  {w:8.1f}  {n:8.1f}  {w / n:7.1f}x")
    from widgets.cot import PER_N
    print(f"\nthe page ({cot_model()} models, greedy, {PER_N} problems per n, first Answer fetches the checkpoints):")
    print(f"  press Answer -> first chart point   {med(m['first'] for m in presses_):6.2f} s")
    print(f"  press Answer -> every n answered    {med(m['all'] for m in presses_):6.2f} s"
          f"  (done in {sum(m['done'] for m in presses_)} of {len(presses_)})")
    print(f"  problems/s the page sustains        {med(m['problemsPerSecond'] for m in presses_):6.1f}")
    print("\nraw:", json.dumps({"wasm": wasm, "native": native, "presses": presses_}))


def cot_model():
    from widgets.cot import MODEL
    return MODEL


if __name__ == "__main__":
    main()
