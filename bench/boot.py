#!/usr/bin/env python3
"""Boot benchmark: how much does the widget runtime add on top of Pyodide + NumPy themselves?

    python bench/boot.py [--runs 5] [--site DIR]

Builds the site with build.py (unless --site), serves it on 127.0.0.1 and, in one Chromium, alternates:
  - shapes: site/widgets/shapes.html, navigation -> first [data-widget] with data-status=ready (Pyodide, NumPy,
    gpt_mini.zip, import, the first traced forward, the tables drawn);
  - bare:   a page written into the site (bench/pyodide_bench.py) that boots the same Pyodide and NumPy in a worker
    (loadPyodide, loadPackage("numpy"), import numpy) and posts "ready".
Both are timed in the page with performance.now() (origin = navigation start), each run in a fresh browser
context (cold HTTP cache for both). With --lessons, each lesson page is timed the same way against the bare page
(goal: first widget ready within 1.2× the bare boot) and the bytes the page fetched outside pyodide/ before then
are summed (goal: under 2 MB; checkpoints load when a widget first needs them). Then, on a booted shapes page, it drives knob changes (presets up to GPT-2 XL,
the largest slider settings, random moves) under a PerformanceObserver for 'longtask' entries and reports the
longest main-thread task. Goals: overhead <= 20 %, no main-thread task over 100 ms.
"""
import argparse
import json
import random
import statistics
import sys

from pyodide_bench import add_bare_page, built_site, launch_chromium, serve

# Installed before any page script: records when the first widget turns ready, and every long task.
INIT_JS = """
window.__longtasks = [];
try {
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longtasks.push([e.startTime, e.duration]); })
    .observe({type: "longtask", buffered: true});
} catch (e) { window.__longtasks = null; }
new MutationObserver(() => {
  if (window.__readyAt) return;
  for (const e of document.querySelectorAll("[data-widget]")) {
    if (e.dataset.status === "ready") { window.__readyAt = performance.now(); return; }
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-status"]});
"""

BIGGEST = dict(B=512, T=2048, block_size=2048, n_embd=2048, n_head=32, n_layer=48, vocab_size=65536)


TIMELINE_JS = """async () => {
    const m = await import(new URL(document.documentElement.dataset.root + "static/runtime.js", location.href).href);
    return Object.fromEntries(m.bootTimeline);
}"""


def time_boot(browser, url, timeout_s=120, timeline=False):
    """ms from navigation to ready; with timeline=True also the runtime's boot stages (ms since navigation)."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.add_init_script(INIT_JS)
    page.goto(url)
    page.wait_for_function("() => window.__readyAt !== undefined", timeout=timeout_s * 1000)
    ms = page.evaluate("window.__readyAt")
    stages = page.evaluate(TIMELINE_JS) if timeline else None
    ctx.close()
    return (ms, stages) if timeline else ms


def time_lesson(browser, url, timeout_s=120):
    """(ms from navigation to the first widget ready, bytes fetched outside pyodide/ by then, by the page and its
    worker). A request counts if it finished (wall clock, as Python saw the event) before the page's ready time."""
    import time
    ctx = browser.new_context()
    page = ctx.new_page()
    own = []
    page.on("requestfinished", lambda r: own.append((time.time() * 1000, r.sizes()["responseBodySize"]))
            if "/pyodide/" not in r.url else None)
    page.add_init_script(INIT_JS)
    page.goto(url)
    page.wait_for_function("() => window.__readyAt !== undefined", timeout=timeout_s * 1000)
    ms, ready_epoch = page.evaluate("[window.__readyAt, performance.timeOrigin + window.__readyAt]")
    page.wait_for_timeout(500)                       # let late events arrive; only those before ready count
    fetched = sum(size for t, size in own if t <= ready_epoch)
    ctx.close()
    return ms, fetched


def lessons_report(browser, base, site, bare_page, runs):
    """Per lesson page: median first-widget-ready against the bare boot, alternating, and own bytes before it."""
    from pathlib import Path
    pages = sorted(p.name for p in Path(site).glob("0*-*.html"))
    rows = []
    for name in pages:
        bare, ready, fetched = [], [], []
        for _ in range(runs):
            bare.append(time_boot(browser, base + bare_page))
            ms, b = time_lesson(browser, base + name)
            ready.append(ms)
            fetched.append(b)
        mb, ml = statistics.median(bare), statistics.median(ready)
        rows.append((name, ml, mb, ml / mb, max(fetched) / 1e6))
    print(f"\n{'lesson page':<22} {'first widget':>12} {'bare boot':>10} {'ratio':>6} {'own MB':>7}  "
          f"(medians of {runs}, alternating; goals: ratio <= 1.2, own MB < 2)")
    for name, ml, mb, ratio, mbytes in rows:
        print(f"{name:<22} {ml:>10.0f}ms {mb:>8.0f}ms {ratio:>6.2f} {mbytes:>7.2f}")
    ready, bare = sum(r[1] for r in rows) / len(rows), sum(r[2] for r in rows) / len(rows)
    print(f"{'all pages (mean of medians)':<22} {ready:>10.0f}ms {bare:>8.0f}ms {ready / bare:>6.2f}")
    print(json.dumps([dict(zip(("page", "ready_ms", "bare_ms", "ratio", "own_mb"), r)) for r in rows]))


def drive_knobs(browser, url, moves=40, seed=1):
    """Knob work on a booted shapes page; returns (longest task during boot, longest during knob work, n moves)."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.add_init_script(INIT_JS)
    page.goto(url)
    page.wait_for_function("() => window.__readyAt !== undefined", timeout=120_000)
    ready_at = page.evaluate("window.__readyAt")
    sel = '[data-widget="shapes"]'
    rng = random.Random(seed)
    presets = page.locator(f"{sel} select option").all_inner_texts()

    def settle():
        page.wait_for_function(f"""() => {{ const e = document.querySelector('{sel}');
            return (e.dataset.status === 'ready' || e.dataset.status === 'error') && e.getAttribute('aria-busy') === 'false'; }}""")

    def set_knob(knob, value):
        page.evaluate("""([sel, knob, v]) => { const i = document.querySelector(`${sel} .w-field[data-knob="${knob}"] input`);
            i.value = String(v); i.dispatchEvent(new Event('input', {bubbles: true})); }""", [sel, knob, value])

    for label in presets:
        page.locator(f"{sel} select").select_option(label=label)
        settle()
    for knob, value in BIGGEST.items():
        set_knob(knob, value)
        settle()
    ranges = page.evaluate(f"""() => [...document.querySelectorAll('{sel} .w-field[data-knob]')].map(f =>
        [f.dataset.knob, +f.querySelector('input').min, +f.querySelector('input').max])""")
    for _ in range(moves):
        knob, lo, hi = rng.choice(ranges)
        set_knob(knob, rng.choice([lo, hi, rng.randint(int(lo), int(hi))]))
        settle()
    page.wait_for_timeout(200)
    tasks = page.evaluate("window.__longtasks")
    ctx.close()
    if tasks is None:
        return None, None, moves
    boot = [d for start, d in tasks if start <= ready_at]
    work = [d for start, d in tasks if start > ready_at]
    return max(boot, default=0.0), max(work, default=0.0), len(presets) + len(BIGGEST) + moves


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--site", help="an already built site (default: build one into a temp dir)")
    ap.add_argument("--lessons", action="store_true", help="time every lesson page's first widget instead")
    a = ap.parse_args()
    with built_site(a.site) as site:
        bare_page = add_bare_page(site)
        srv, base = serve(site, cache_control="public, max-age=600")   # as a static host (GitHub Pages) sends
        try:
            with launch_chromium() as browser:
                if a.lessons:
                    time_boot(browser, base + bare_page)                # warm-up
                    return lessons_report(browser, base, site, bare_page, a.runs)
                time_boot(browser, base + bare_page)                    # warm-up: disk cache, CPU frequency
                shapes, bare, stages = [], [], []
                for _ in range(a.runs):
                    bare.append(time_boot(browser, base + bare_page))
                    ms, st = time_boot(browser, base + "widgets/shapes.html", timeline=True)
                    shapes.append(ms)
                    stages.append({**st, "first widget ready": ms})
                boot_task, work_task, moves = drive_knobs(browser, base + "widgets/shapes.html")
        finally:
            srv.shutdown()

    ms, mb = statistics.median(shapes), statistics.median(bare)
    overhead = 100 * (ms - mb) / mb
    rows = [
        ("bare Pyodide + NumPy in a worker -> ready", f"{mb:.0f} ms", " ".join(f"{x:.0f}" for x in bare)),
        ("shapes page -> first widget ready", f"{ms:.0f} ms", " ".join(f"{x:.0f}" for x in shapes)),
        ("overhead of the widget runtime", f"{overhead:+.1f} %", "goal <= 20 %"),
        ("longest main-thread task during boot", "n/a" if boot_task is None else f"{boot_task:.0f} ms", ""),
        (f"longest main-thread task over {moves} knob changes",
         "n/a" if work_task is None else f"{work_task:.0f} ms", "goal < 100 ms (0 = no task over 50 ms)"),
    ]
    # Where the shapes page's time goes (medians over its runs). The last two lines are the runtime's own work:
    # unpacking + importing gpt_mini/widgets, then the first call and drawing; the rest is Pyodide and NumPy.
    order = ["worker started", "Loading Python runtime", "Loading NumPy", "Loading gpt_mini", "Python ready",
             "first widget ready"]
    spans = [("page -> worker started", None, "worker started"),
             ("Pyodide core boot", "Loading Python runtime", "Loading NumPy"),
             ("NumPy load", "Loading NumPy", "Loading gpt_mini"),
             ("gpt_mini.zip unpack + imports", "Loading gpt_mini", "Python ready"),
             ("first compute + draw", "Python ready", "first widget ready")]
    if all(all(k in st for k in order) for st in stages):
        for name, a_, b_ in spans:
            d = statistics.median(st[b_] - (st[a_] if a_ else 0) for st in stages)
            rows.append((f"  shapes page: {name}", f"{d:.0f} ms", ""))
        # The runtime's own boot work, measured inside the worker/page and so far less noisy than the difference
        # of two medians on a busy machine: zip wait + unpack + gpt_mini/widgets imports + first compute and draw.
        own = [st.get("worker: zip_wait ms", 0) + st.get("worker: unpack ms", 0) + st.get("worker: import_gpt_mini ms", 0)
               + st["first widget ready"] - st["Python ready"] for st in stages]
        numpy_import = statistics.median(st.get("worker: import_numpy ms", 0) for st in stages)
        rows.append(("  (of which import numpy, as the bare page does)", f"{numpy_import:.0f} ms", ""))
        rows.append(("runtime's own boot work (in-page timers)", f"{statistics.median(own):.0f} ms",
                     f"= {100 * statistics.median(own) / mb:.1f} % of the bare boot"))
    w = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{w}}  {'median':>10}  runs / note ({a.runs} each, alternating)")
    for name, value, note in rows:
        print(f"{name:<{w}}  {value:>10}  {note}")
    print(json.dumps({"bare_ms": bare, "shapes_ms": shapes, "overhead_pct": overhead, "shapes_stages": stages,
                      "longtask_boot_ms": boot_task, "longtask_work_ms": work_task}))
    ok = overhead <= 20 and (work_task is None or work_task < 100)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
