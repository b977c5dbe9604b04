"""The browser side the bench scripts share: a built site, a launched Chromium, and a bare Pyodide page.

The bare page (bench-bare.html + bare-worker.js, written into the site by add_bare_page) boots Pyodide and NumPy
in a Web Worker and nothing else, as the widget runtime does but without it: bench/boot.py times that boot as its
baseline; bench/sample.py then has the same worker run Python against the packed gpt_mini (booted_bare_page,
run_python).
"""
import contextlib
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
def booted_bare_page(site=None):
    """The site (built unless given) served on 127.0.0.1, Chromium, and the bare page with Pyodide + NumPy booted:
    yields (browser, page, base URL); run_python(page, ...) then runs code in its worker."""
    with built_site(site) as site:
        bare = add_bare_page(site)
        srv, base = serve(site)
        try:
            with launch_chromium() as browser:
                page = browser.new_page()
                page.goto(base + bare)
                page.wait_for_function("() => window.__readyAt !== undefined", timeout=120_000)
                yield browser, page, base
        finally:
            srv.shutdown()
