// The page's one Web Worker: boots Pyodide + NumPy + the packed gpt_mini/widgets, then answers calls.
// Classic worker (importScripts) because Pyodide's pyodide.js is a classic script.
//
// In:  {type: "boot", indexURL, zipURL}                     once, from static/runtime.js
//      {id, widget, fn, args, files?}                       a call: widgets.<widget>.<fn>(**args); `files`
//                                                           {"/abs/path": "absolute URL"} are fetched into
//                                                           Python's filesystem first (once per path and URL)
// Out: {type: "progress", stage, done, total}               boot progress (done of total steps finished)
//      {type: "ready", ms} | {type: "boot-error", error}    end of boot
//      {type: "started", id}                                Python begins the call (its files are in place):
//                                                           the runtime's budget for the call counts from here
//      {id, ok: true, result, ms} | {id, ok: false, error: {type, message}, ms}
// A call runs to its end: nothing can interrupt Python here, so the runtime replaces a worker whose call hangs.
"use strict";

const TOTAL = 3;
const FETCH_TIMEOUT_MS = 60_000;   // a file download that stalls becomes a FetchError, not a call without an answer
let booted = null;      // Promise<dispatch function>, set by the boot message
let pyodide = null;
const fetched = new Map();   // path -> {url, done: Promise}: each file is downloaded once per page

function progress(stage, done) {
  self.postMessage({type: "progress", stage, done, total: TOTAL});
}

// Python sends non-finite floats as these exact strings (JSON has no NaN); turn them back into numbers.
const NONFINITE = {"NaN": NaN, "Infinity": Infinity, "-Infinity": -Infinity};
function revive(_key, value) {
  return typeof value === "string" && value in NONFINITE ? NONFINITE[value] : value;
}

async function boot({indexURL, zipURL}) {
  const t0 = performance.now();
  // Start the package fetch now so it downloads while Pyodide compiles; nothing waits on it until step 3.
  const zip = fetch(zipURL).then((r) => {
    if (!r.ok) throw new Error(`could not fetch ${zipURL}: HTTP ${r.status}`);
    return r.arrayBuffer();
  });
  zip.catch(() => {});  // reported at step 3, not as an unhandled rejection
  // Warm the HTTP cache with NumPy's wheel too: loadPackage fetches the same URL after the core has booted,
  // and on any static host that sends cache headers it then reads it from cache (or joins this download).
  fetch(indexURL + "pyodide-lock.json")
    .then((r) => r.json())
    .then((lock) => fetch(new URL(lock.packages.numpy.file_name, indexURL)).then((r) => r.arrayBuffer()))
    .catch(() => {});     // only an optimisation: loadPackage reports real failures

  progress("Loading Python runtime", 0);
  try {
    importScripts(indexURL + "pyodide.js");
  } catch (e) {
    throw new Error(`could not load ${indexURL}pyodide.js (${e.message})`);
  }
  pyodide = await loadPyodide({indexURL});

  progress("Loading NumPy", 1);
  const failures = [];
  await pyodide.loadPackage("numpy", {messageCallback: () => {}, errorCallback: (m) => failures.push(m)});
  if (failures.length) throw new Error(`NumPy did not load: ${failures.join("; ")}`);

  progress("Loading gpt_mini", 2);
  const timings = {};                 // ms per part of this step, for bench/boot.py
  let t = performance.now();
  const buffer = await zip;
  timings.zip_wait = performance.now() - t;
  t = performance.now();
  pyodide.unpackArchive(buffer, "zip", {extractDir: "/home/pyodide/gpt_mini_site"});
  timings.unpack = performance.now() - t;
  t = performance.now();
  pyodide.runPython("import numpy");
  timings.import_numpy = performance.now() - t;
  t = performance.now();
  pyodide.runPython(`
import sys
sys.path.insert(0, "/home/pyodide/gpt_mini_site")
import gpt_mini.model, widgets
`);
  const dispatch = pyodide.pyimport("widgets").dispatch;
  timings.import_gpt_mini = performance.now() - t;
  progress("Python ready", 3);
  self.postMessage({type: "ready", ms: performance.now() - t0, timings});
  return dispatch;
}

/** Fetch each {path: url} into Pyodide's filesystem (e.g. a checkpoint a widget loads with np.load). */
function fetchFiles(files) {
  return Promise.all(Object.entries(files || {}).map(([path, url]) => {
    if (typeof path !== "string" || !path.startsWith("/")) throw new Error(`file path must be absolute: ${path}`);
    const known = fetched.get(path);
    if (known && known.url === url) return known.done;
    const done = fetch(url, {signal: AbortSignal.timeout(FETCH_TIMEOUT_MS)}).then(async (r) => {
      if (!r.ok) throw new Error(`could not fetch ${url}: HTTP ${r.status}`);
      const bytes = new Uint8Array(await r.arrayBuffer());
      pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")) || "/");
      pyodide.FS.writeFile(path, bytes);
    }).catch((e) => {
      throw e.name === "TimeoutError" ? new Error(`could not fetch ${url} within ${FETCH_TIMEOUT_MS / 1000} s`) : e;
    });
    fetched.set(path, {url, done});
    done.catch(() => fetched.delete(path));   // a failed download may be retried by a later call
    return done;
  }));
}

self.onmessage = async (event) => {
  const msg = event.data;
  if (msg && msg.type === "boot") {
    if (!booted) {
      booted = boot(msg);
      booted.catch((e) => self.postMessage({
        type: "boot-error", error: {type: e.name || "Error", message: String(e.message || e)},
      }));
    }
    return;
  }
  const {id, widget, fn, args, files} = msg;
  let dispatch;
  try {
    dispatch = await booted;
  } catch (e) {
    self.postMessage({id, ok: false, error: {type: "BootError", message: `Python did not start: ${e.message || e}`}});
    return;
  }
  const t0 = performance.now();
  if (files) {
    try {
      await fetchFiles(files);
    } catch (e) {
      self.postMessage({id, ok: false, error: {type: "FetchError", message: String(e.message || e)},
                        ms: performance.now() - t0});
      return;
    }
  }
  self.postMessage({type: "started", id});
  try {
    // JSON strings across the boundary: exact, and no proxies to leak.
    const reply = JSON.parse(dispatch(widget, fn, JSON.stringify(args ?? {})), revive);
    self.postMessage({id, ...reply, ms: performance.now() - t0});
  } catch (e) {
    // dispatch itself never raises; this is a fatal interpreter error or an unserialisable reply.
    self.postMessage({id, ok: false, error: {type: e.type || e.name || "Error", message: String(e.message || e)},
                      ms: performance.now() - t0});
  }
};
