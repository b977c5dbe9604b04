"""The browser side the bench scripts share: a built site, a launched Chromium, and a bare Pyodide page.

The bare page (bench-bare.html + bare-worker.js, written into the site by add_bare_page) boots Pyodide and NumPy
in a Web Worker and nothing else, as the widget runtime does but without it: bench/boot.py times that boot as its
baseline; bench/sample.py then has the same worker run Python against the packed gpt_mini (booted_bare_page,
run_python).
"""
import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from harness import CHROMIUM_ARGS, find_chromium, serve  # noqa: E402,F401  (serve: re-exported for the scripts)

BARE_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bare Pyodide boot</title></head>
<body><p id="s">booting</p><script>
const w = new Worker("bare-worker.js");
w.postMessage({indexURL: new URL("pyodide/", location.href).href});
let reply = null;
w.onmessage = (e) => {
  if (e.data === "ready") { window.__readyAt = performance.now(); document.getElementById("s").textContent = e.data; }
  else { reply(e.data); }
};
// after ready: {zipURL?, files?, code} -> {result} | {error}, one at a time
window.runPython = (msg) => new Promise((resolve) => { reply = resolve; w.postMessage(msg); });
</script></body></html>
"""
BARE_WORKER = """importScripts("pyodide/pyodide.js");
let py = null;
const bytes = async (url) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not fetch ${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
};
self.onmessage = async (e) => {
  if (e.data.indexURL) {
    py = await loadPyodide({indexURL: e.data.indexURL});
    await py.loadPackage("numpy", {messageCallback: () => {}});
    py.runPython("import numpy");
    self.postMessage("ready");
    return;
  }
  try {
    const {zipURL, files, code} = e.data;
    if (zipURL) {   // the packed gpt_mini/ + widgets/, importable as on a widget page
      py.unpackArchive(await bytes(zipURL), "zip", {extractDir: "/bench"});
      py.runPython("import sys; sys.path.insert(0, '/bench')");
    }
    for (const [path, url] of Object.entries(files || {})) py.FS.writeFile(path, new Uint8Array(await bytes(url)));
    self.postMessage({result: py.runPython(code)});
  } catch (err) {
    self.postMessage({error: String(err.message || err)});
  }
};
"""


def add_bare_page(site):
    """Write the bare page into `site`; returns its path relative to the site root."""
    (site / "bench-bare.html").write_text(BARE_HTML)
    (site / "bare-worker.js").write_text(BARE_WORKER)
    return "bench-bare.html"


def run_python(page, code, zip_url=None, files=None):
    """Run `code` in a booted bare page's worker; returns the value of its last expression (a str: send JSON)."""
    reply = page.evaluate("(msg) => window.runPython(msg)", {"zipURL": zip_url, "files": files or {}, "code": code})
    if "error" in reply:
        raise RuntimeError(f"Python in Pyodide failed: {reply['error']}")
    return reply["result"]


@contextlib.contextmanager
def built_site(site=None):
    """`site` as given, or a fresh `build.py` build in a temporary directory that is removed afterwards."""
    if site:
        yield Path(site)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "site"
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "build.py", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"build.py failed:\n{r.stderr}")
        print(f"built the site in {time.perf_counter() - t:.1f} s")
        yield out


@contextlib.contextmanager
def launch_chromium():
    """Headless Chromium through Playwright; exits with a reason when there is no Chromium."""
    path = find_chromium()
    if not path:
        sys.exit("Chromium not found (/usr/bin/chromium or on PATH; Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def served_site(site=None, setup=None):
    """The site (built unless given; `setup(site)` run on it first) served on 127.0.0.1, and Chromium:
    yields (browser, base URL, setup's return value)."""
    with built_site(site) as site:
        extra = setup(site) if setup else None
        srv, base = serve(site)
        try:
            with launch_chromium() as browser:
                yield browser, base, extra
        finally:
            srv.shutdown()


@contextlib.contextmanager
def booted_bare_page(site=None):
    """The site (built unless given) served on 127.0.0.1, Chromium, and the bare page with Pyodide + NumPy booted:
    yields (browser, page, base URL); run_python(page, ...) then runs code in its worker."""
    with served_site(site, add_bare_page) as (browser, base, bare):
        page = browser.new_page()
        page.goto(base + bare)
        page.wait_for_function("() => window.__readyAt !== undefined", timeout=120_000)
        yield browser, page, base


def bench_parser(doc):
    """The options every widget bench takes (--site, --reps); add more before parse_args()."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--site", type=Path, help="an existing build (default: build into a temp dir)")
    ap.add_argument("--reps", type=int, default=3)
    return ap


def use_native_heap():
    """What the stage scripts do natively (no-op in Pyodide)."""
    from gpt_mini.train import use_heap_for_temporaries
    use_heap_for_temporaries()


def wasm_python(page, base, code, files):
    """`code` in the bare page's worker, with the packed gpt_mini and `files` ({worker path: site-relative URL});
    its last expression (JSON) decoded."""
    return json.loads(run_python(page, code, zip_url=base + "py/gpt_mini.zip",
                                 files={path: base + url for path, url in files.items()}))


def native_python(code):
    """The same `code` natively: it leaves its result in `out`."""
    scope = {}
    exec(code, scope)
    return json.loads(eval("json.dumps(out)", scope))


def steps_per_second(chunk, times_ms):
    """Steps per second over calls of `chunk` steps that took `times_ms` each."""
    return chunk * len(times_ms) / (sum(times_ms) / 1000)


# Once the press is over: the rate the UI sustained, then Stop.
STOP = """marks.stepsPerSecond = Number(root.dataset.stepsPerSecond);
      root.querySelector(".w-train").click();        // Stop"""


def press_js(attributes, check, done, finish=STOP, setup="", args="sel"):
    """JS for page.evaluate: press the widget's Train (or Answer) button and, on each change of the root's
    `attributes`, run `check` (JS setting `marks`, with `now` the seconds since the press) until `done`; then
    `finish` and resolve with the marks. `args` names the evaluate argument (it holds `sel`, the root's selector)."""
    return f"""({args}) => new Promise((resolve) => {{
  const root = document.querySelector(sel);
  const t0 = performance.now();
  const marks = {{}};{setup}
  const obs = new MutationObserver(() => {{
    const now = (performance.now() - t0) / 1000;
{check}
    if ({done}) {{
      obs.disconnect();
      {finish}
      resolve(marks);
    }}
  }});
  obs.observe(root, {{attributes: true, attributeFilter: {json.dumps(list(attributes))}}});
  root.querySelector(".w-train").click();
}})"""


def presses(browser, base, name, ready, js, reps, arg=None, timeout=120_000, timed=False):
    """Per fresh page of widget `name`: wait until `ready` (a JS expression over `d`, the root's dataset), then
    page.evaluate(js, the root's selector, or [it, arg]); its marks, with "prepared" (seconds from navigation to
    ready) when `timed`."""
    sel = f'[data-widget="{name}"]'
    out = []
    for _ in range(reps):
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(f"{base}widgets/{name}.html")
        page.wait_for_function(f"() => {{ const d = document.querySelector('[data-widget={name}]').dataset; "
                               f"return {ready}; }}", timeout=timeout)
        prepared = time.perf_counter() - t0
        marks = page.evaluate(js, sel if arg is None else [sel, arg])
        out.append({"prepared": prepared, **marks} if timed else marks)
        page.close()
    return out


def mark(presses, key, step):
    """The median seconds to `key` (and its step) over the presses that reached it."""
    med = statistics.median
    vals = [m[key] for m in presses if m.get(key) is not None]
    steps = [m[step] for m in presses if m.get(step) is not None]
    return f"{med(vals):.1f} s (step {int(med(steps))})" if vals else "not reached in 90 s"


def rate_rows(title, wasm, native, wasm_label="Chromium / Pyodide (wasm)"):
    """A heading row and the three rows every widget bench reports: steps/s in wasm, natively, and the ratio."""
    return [(title, "", ""),
            (f"  {wasm_label}", f"{wasm:.1f}", f"{1000 / wasm:.0f} ms/step"),
            ("  native (this machine, same calls)", f"{native:.1f}", f"{1000 / native:.0f} ms/step"),
            ("  wasm slowdown", f"{native / wasm:.1f}x", "")]


def print_rows(title, rows, value_width=22):
    """A report: the title, then (label, value, note) rows in aligned columns."""
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}\n")
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>{value_width}}  {note}")
