"""Rollout sampling: does sample_batch's KV cache pay, natively and in the browser?

    python bench/sample.py [--reps 9] [--site DIR] [--threads 1]

Times `gpt_mini.sample.sample_batch(..., kv_cache=True)` against `kv_cache=False` on a batch of 8 rows, each the
one-token document start ("\\n") plus 32 sampled tokens, no stop tokens (every batch does the same work), for
  - the lesson model: checkpoints/00_pretrain.npz (results/00_pretrain.json "config.model");
  - the widget model: results/00_pretrain.json "widget.model", freshly initialised (the time does not depend on
    the weights); its block is 32, so its rows stop at 31 new tokens: a rollout never passes block_size.
The one function `measure` runs natively (BLAS on --threads threads, default 1, as in wasm) and, its source sent
as is, in Chromium's Pyodide (a bare worker, bench/pyodide_bench.py, with the site's gpt_mini.zip and checkpoint).
Cached and uncached alternate within each repetition, after 3 warm-up calls each; the table shows the best and the
median of the repetitions (on a busy machine the best is the fairer speed: contention only adds time).
"""
import argparse
import inspect
import json
import os
import statistics
import sys
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--reps", type=int, default=9)
ap.add_argument("--site", help="an already built site (default: build one into a temp dir)")
ap.add_argument("--threads", type=int, default=1, help="native BLAS threads (wasm has one)")
args = ap.parse_args()
# thread counts must be fixed before NumPy's BLAS is loaded
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pyodide_bench import booted_bare_page, run_python  # noqa: E402

ROWS, NEW_TOKENS = 8, 32


def measure(checkpoint_path, widget_model, rows, new_tokens, reps):
    """ms per sample_batch call, cached and uncached, for the lesson and widget models (as JSON)."""
    import json
    import time

    from gpt_mini import checkpoint
    from gpt_mini.model import GPT, GPTConfig
    from gpt_mini.sample import sample_batch

    config, tokenizer, params, _ = checkpoint.load(checkpoint_path)
    widget = GPTConfig(**widget_model)
    prompts = [tokenizer.encode("\n")] * rows
    out = {}
    for name, cfg, p in (("lesson", config, params), ("widget", widget, GPT(widget, seed=0).params)):
        n = min(new_tokens, cfg.block_size - len(prompts[0]))
        times = {True: [], False: []}
        for _ in range(3):              # warm-up: wasm speeds up over the first calls (V8 tiers up hot code)
            for kv in (True, False):
                sample_batch(p, cfg, prompts, n, kv_cache=kv)
        for r in range(reps):
            for kv in (True, False):
                t0 = time.perf_counter()
                sample_batch(p, cfg, prompts, n, seed=r, kv_cache=kv)
                times[kv].append(1000 * (time.perf_counter() - t0))
        out[name] = {"config": cfg.to_dict(), "new_tokens": n, "cached_ms": times[True], "uncached_ms": times[False]}
    return json.dumps(out)


def main():
    widget_model = json.loads((ROOT / "results" / "00_pretrain.json").read_text())["widget"]["model"]
    call = f"measure('/bench/00_pretrain.npz', {widget_model!r}, {ROWS}, {NEW_TOKENS}, {args.reps})"
    with booted_bare_page(args.site) as (_, page, base):
        wasm = json.loads(run_python(page, inspect.getsource(measure) + "\n" + call, zip_url=base + "py/gpt_mini.zip",
                                     files={"/bench/00_pretrain.npz": base + "checkpoints/00_pretrain.npz"}))
    native = json.loads(measure(str(ROOT / "checkpoints" / "00_pretrain.npz"), widget_model, ROWS, NEW_TOKENS,
                                args.reps))

    print(f"\nbench/sample.py: ms per sample_batch of {ROWS} rows, best / median of {args.reps}; "
          f"native on {args.threads} BLAS thread(s)\n")
    head = (f"{'model':<30} {'new tokens':>10} {'side':<7} {'cached':>15} {'uncached':>15} "
            f"{'uncached/cached':>16}")
    print(head + "\n" + "-" * len(head))
    for name in ("lesson", "widget"):
        c = native[name]["config"]
        label = f"{name} (d {c['n_embd']}, {c['n_layer']} layers, T {c['block_size']})"
        for side, res in (("native", native), ("wasm", wasm)):
            # contention only adds time: the best is the machine's speed, the median what a busy machine gives
            cached, uncached = (sorted(res[name][k]) for k in ("cached_ms", "uncached_ms"))
            ratio = f"{uncached[0] / cached[0]:.1f}x / {statistics.median(uncached) / statistics.median(cached):.1f}x"
            print(f"{label:<30} {res[name]['new_tokens']:>10} {side:<7} "
                  f"{cached[0]:>6.1f} / {statistics.median(cached):>6.1f} "
                  f"{uncached[0]:>6.0f} / {statistics.median(uncached):>6.0f} {ratio:>16}")
            label = ""
    print("\nraw:", json.dumps({"native": native, "wasm": wasm}))


if __name__ == "__main__":
    main()
