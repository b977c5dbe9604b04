"""Lesson 02's training widget: how fast does the WIDGET model train in the browser, and how soon does Train show it?

    python bench/widget_train.py                 # builds the site into a temp dir
    python bench/widget_train.py --site site     # or measures an existing build

Measures, in one run:
  1. train steps/s of `widgets.pretrain.step(session, n)` (gpt_mini's train_step on WIDGET's batches, plus the one
     forward that reads the prompt's distribution), in Chromium's Pyodide (a bare worker.js, nothing else running)
     and natively, the same calls;
  2. on the real widget page: seconds from pressing Train to the first chart update, to the loss first falling
     below the unigram baseline, and to the top next-character probability passing 20%; and the steps/s the UI
     itself sustains (chunked calls, redraws, continuations).
The machine is shared and noisy: each figure is a median of several repetitions.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pyodide_bench import built_site, launch_chromium, rate_rows, serve  # noqa: E402

CHUNK = 20           # steps per call in the throughput measurement
CALLS = 8            # calls per repetition

# A bare worker (static/worker.js, the runtime's protocol) driven directly: no widget UI in the way.
WORKER_JS = """async ([base, chunk, calls, reps]) => {
  const w = new Worker(base + "static/worker.js");
  const pending = new Map();
  let nextId = 1;
  const ready = new Promise((resolve, reject) => {
    w.onmessage = ({data}) => {
      if (data.type === "ready") resolve(data.ms);
      else if (data.type === "boot-error") reject(new Error(data.error.message));
      else if (pending.has(data.id)) { pending.get(data.id)(data); pending.delete(data.id); }
    };
  });
  const call = (fn, args) => new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    w.postMessage({id, widget: "pretrain", fn, args});
  });
  w.postMessage({type: "boot", indexURL: base + "pyodide/", zipURL: base + "py/gpt_mini.zip"});
  const bootMs = await ready;
  const first = await call("info", {});           // builds the corpus once (not a training cost)
  const out = {bootMs, infoMs: first.ms, reps: []};
  for (let r = 0; r < reps; r++) {
    const s = await call("start", {seed: r});
    const times = [];
    for (let i = 0; i < calls; i++) {
      const reply = await call("step", {session: s.result.session, n: chunk, prompt: "ada lives in "});
      if (!reply.ok) throw new Error(JSON.stringify(reply.error));
      times.push(reply.ms);
    }
    out.reps.push(times);
  }
  w.terminate();
  return out;
}"""

# Press Train on the real widget and timestamp what the reader sees change.
PRESS_JS = """([sel, unigram]) => new Promise((resolve) => {
  const root = document.querySelector(sel);
  const marks = {};
  const t0 = performance.now();
  const obs = new MutationObserver(() => {
    const losses = JSON.parse(root.dataset.losses || "[]");
    const dist = root.dataset.dist ? JSON.parse(root.dataset.dist) : null;
    const now = (performance.now() - t0) / 1000;
    if (losses.length && marks.first === undefined) marks.first = now;
    if (losses.length && losses.at(-1) < unigram && marks.belowUnigram === undefined) {
      marks.belowUnigram = now; marks.belowUnigramStep = losses.length;
    }
    if (dist && dist.ok && dist.top[0].p > 0.2 && losses.length && marks.top20 === undefined) {
      marks.top20 = now; marks.top20Step = losses.length;
    }
    if (losses.length >= 150 || now > 60) {
      obs.disconnect();
      marks.stepsPerSecond = Number(root.dataset.stepsPerSecond);
      marks.chunk = Number(root.dataset.chunk);
      root.querySelector(".w-train").click();    // Stop
      resolve(marks);
    }
  });
  obs.observe(root, {attributes: true, attributeFilter: ["data-losses", "data-dist"]});
  root.querySelector(".w-train").click();
})"""


def native_steps_per_second(reps):
    from gpt_mini.train import use_heap_for_temporaries
    from widgets import pretrain
    use_heap_for_temporaries()            # what the stage scripts do natively (no-op in Pyodide)
    pretrain.info()
    out = []
    for r in range(reps):
        s = pretrain.start(seed=r)
        pretrain.step(s["session"], 2, "ada lives in ")   # warm up
        t0 = time.perf_counter()
        for _ in range(CALLS):
            pretrain.step(s["session"], CHUNK, "ada lives in ")
        out.append(CHUNK * CALLS / (time.perf_counter() - t0))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, help="an existing build (default: build into a temp dir)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    from widgets import pretrain
    unigram = pretrain.info()["baselines"]["unigram"]
    with built_site(args.site) as site:
        srv, base = serve(site)
        try:
            with launch_chromium() as browser:
                page = browser.new_page()
                page.goto(base + "index.html")
                wasm = page.evaluate(WORKER_JS, [base, CHUNK, CALLS, args.reps])
                wasm_rates = [CHUNK * len(t) / (sum(t) / 1000) for t in wasm["reps"]]
                page.close()
                presses = []
                for _ in range(args.reps):
                    page = browser.new_page()
                    page.goto(base + "widgets/pretrain.html")
                    page.wait_for_function("""() => { const d = document.querySelector('[data-widget=pretrain]').dataset;
                                              return d.status === 'ready' && !!d.dist && !!d.snapshot; }""", timeout=120_000)
                    presses.append(page.evaluate(PRESS_JS, ['[data-widget="pretrain"]', unigram]))
                    page.close()
        finally:
            srv.shutdown()
    native_rates = native_steps_per_second(args.reps)

    med = statistics.median
    w, n = med(wasm_rates), med(native_rates)

    def mark(key):
        vals = [m[key] for m in presses if m.get(key) is not None]
        return f"{med(vals):.2f} s" if vals else "not reached"

    def step_of(key):
        vals = [m[key] for m in presses if m.get(key) is not None]
        return f" (step {int(med(vals))})" if vals else ""

    rows = [
        *rate_rows("train steps/s, WIDGET config (B 8, T 32, d 48, 2 layers)", w, n,
                   wasm_label="Chromium / Pyodide 0.27.7 (wasm)"),
        ("Pyodide boot of a bare worker", f"{wasm['bootMs'] / 1000:.1f} s", ""),
        ("first call: build the corpus + baselines (wasm)", f"{wasm['infoMs'] / 1000:.2f} s", ""),
        ("press Train -> first chart update", mark("first"), ""),
        ("press Train -> loss below unigram baseline", mark("belowUnigram") + step_of("belowUnigramStep"), ""),
        ("press Train -> top next-char p > 20%", mark("top20") + step_of("top20Step"), ""),
        ("steps/s the UI sustains (chunks + redraws)", f"{med([m['stepsPerSecond'] for m in presses]):.1f}",
         f"chunk settles at {int(med([m['chunk'] for m in presses]))} steps"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nbench/widget_train.py: medians of {args.reps} repetitions, {CALLS} calls x {CHUNK} steps each\n")
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>18}  {note}")
    print("\nraw:", json.dumps({"wasm_steps_per_s": wasm_rates, "native_steps_per_s": native_rates,
                                "presses": presses}))


if __name__ == "__main__":
    main()
