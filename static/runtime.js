// Widget runtime (main thread). One Web Worker per page runs Python; this file never does.
//
// A widget is one static/widgets/<name>.js that calls
//     registerWidget("<name>", {title, mount(root, api) { ... }})
// and one widgets/<name>.py whose public functions it calls with `api.call(fn, args)`.
// The runtime owns everything widgets have in common: booting Python with visible progress, the status
// (data-status, aria-busy, a polite live region), readable errors, knob state in the URL hash, the Reset
// button, labelled controls bound to knobs, and lazily loaded uPlot with a text alternative for each chart.
//
// A training widget (Train / Stop / Reset over chunked calls) supplies only its Python calls and its drawing; the
// shared loop, `api.trainLoop(spec)`, does the rest (button, chunk sizing, endings, status, forgetting the run):
//
//   registerWidget("sft", {title: "Fine-tune on conversations", mount(root, api) {
//     const controls = api.el("div", {class: "w-controls"}); api.body.append(controls);
//     const steps = api.ui.range(controls, {knob: "steps", label: "Training steps"});  // disabled until setRange
//     const chart = api.lineChart(api.body, {title: "Loss", xLabel: "step", series: [{label: "train"}]});
//     const diverged = api.ui.explanation(api.body);      // Python's {what, why, try} for a run that blew up
//     let losses = [];
//     const draw = async () => (await chart).update([losses.map((_, i) => i + 1), losses]);
//     const loop = api.trainLoop({
//       button: controls,                                  // where the Train / Stop / Resume button goes
//       runKnobs: ["lr", "steps", "seed"],                 // changing one of these forgets the run
//       start: (k) => api.call("start", {lr: k.lr, steps: k.steps, seed: k.seed}),     // -> session (any JSON)
//       step: (s, n, k) => api.call("step", {session: s.session, n}),  // -> {status, losses, step, steps, ...}
//       close: (s) => api.call("close", {session: s.session}),        // optional: Reset frees Python's memory
//       onChunk: (r, {stepsPerSecond}) => { losses.push(...r.losses); draw(); },
//       onEnd: (kind, r) => { if (kind === "diverged") diverged.show(r.diverged); },  // words: the loop's own
//       onClear: () => { losses = []; diverged.show(null); draw(); },  // Reset, a run knob changed, Python restarted
//     });
//     api.call("info").then((i) => steps.setRange({min: i.steps_range[0], max: i.steps_range[1]}));  // not retyped
//   }});
//
// trainLoop(spec) -> {toggle(), train(), stop(), reset(), prepare(), button, running, session, state}.
//   spec: start(knobs), step(session, n, knobs) and optionally close(session): the Python calls (promises);
//         runKnobs: knob names whose change forgets the run; button: a parent element to put the Train button in;
//         onSession(session, knobs): a new session was adopted (draw the untrained model);
//         onChunk(result, {chunk, ms, stepsPerSecond}): after every chunk;
//         onEnd(kind, result): kind "done" | "diverged" | "stopped", may be async; the words it returns are
//           announced (done, stopped) or shown as the widget's error (diverged), else default words are;
//         onClear(): the run was forgotten; onState(state): after every change of `state`;
//         labels {train, stop, resume}; chunk {initial: 2, max: 20, targetMs: 300}.
//   The loop keeps data-train (idle | training | stopped | done | diverged), data-chunk and data-steps-per-second
//   on the root. prepare() starts a session without training (at most one start in flight, the newest wins), to
//   show the untrained model; Train after done or diverged starts a new run; Stop acts after the chunk in flight.
//
// Python calls have a budget (api.call(fn, args, {timeout}); 60 s of Python's own time by default). A call past it
// is a hang: the worker is replaced by a fresh one, that widget says so until its Reset, and every widget hears
// api.onRestart(fn) (its sessions are gone; trainLoop forgets its run) and gets its knobs again (source "restart").
//
// api.call rejects with a PyError {type, message} that the widget already shows; the next success clears it.
// Calls queue until Python is up, so a widget may call at mount. Non-finite floats arrive as NaN/±Infinity.

const html = document.documentElement;
const ROOT = new URL(html.dataset.root || "./", location.href);
const PYODIDE_URL = withSlash(new URL(html.dataset.pyodide || "pyodide/", ROOT).href);
const ZIP_URL = new URL("py/gpt_mini.zip", ROOT).href;
const BOOT_TIMEOUT_MS = 180_000;   // a boot that hangs (network stall) becomes an error, never an endless spinner
const CALL_TIMEOUT_MS = 60_000;    // Python's time per call: widgets chunk long work, so a minute means it hung

export const STALE = Symbol("stale");   // what `api.latest` resolves superseded calls with

function withSlash(url) { return url.endsWith("/") ? url : url + "/"; }

/** A Python exception (or a boot/timeout failure) as the widget shows it: "ValueError: ...". */
export class PyError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type;
    this.type = type;
  }
  toString() { return `${this.type}: ${this.message}`; }
}

// ----------------------------------------------------------------------------- worker and protocol

const boot = {state: "booting", stage: "Starting Python", done: 0, total: 3, error: null, restarts: 0};
/** [stage, performance.now()] as the boot went (for bench/boot.py and curious readers of the console). */
export const bootTimeline = [["worker started", 0]];
const calls = new Map();          // id -> {resolve, reject, timer, host, fn, budget (ms; unset: the default)}
const hosts = [];                 // every [data-widget] on the page
const definitions = new Map();    // name -> widget definition
const styled = new Map();         // name -> Promise: the widget's stylesheet has loaded (or failed)
let worker = null;
let nextId = 1;
let pythonReady;                  // resolves when the current worker's Python is up (a new one per restart)
let readyResolve;

function startWorker() {
  pythonReady = new Promise((resolve) => { readyResolve = resolve; });
  const w = new Worker(new URL("worker.js", import.meta.url));
  worker = w;
  if (!boot.restarts) bootTimeline[0][1] = performance.now();
  const timer = setTimeout(() => bootFailed(
    new PyError("BootError", `Python did not start within ${BOOT_TIMEOUT_MS / 1000} s`)), BOOT_TIMEOUT_MS);
  w.onmessage = ({data}) => {
    if (w !== worker) return;                         // a replaced worker's last words
    if (data.type === "started") {
      // The budget counts Python's own time: a call queued behind another one is not slow.
      const c = calls.get(data.id);
      if (!c) return;
      c.budget ??= defaultBudget();
      c.timer = setTimeout(() => restartAfterHang(data.id), c.budget);
    } else if (data.type === "progress") {
      bootTimeline.push([data.stage, performance.now()]);
      Object.assign(boot, {stage: data.stage, done: data.done, total: data.total});
      hosts.forEach((h) => h.render());
    } else if (data.type === "ready") {
      clearTimeout(timer);
      boot.state = "ready";
      boot.ms = data.ms;
      bootTimeline.push(...Object.entries(data.timings || {}).map(([k, v]) => [`worker: ${k} ms`, v]));
      readyResolve();
      hosts.forEach((h) => h.render());
    } else if (data.type === "boot-error") {
      clearTimeout(timer);
      bootFailed(new PyError(data.error.type, data.error.message));
    } else if (calls.has(data.id)) {
      const c = calls.get(data.id);
      calls.delete(data.id);
      clearTimeout(c.timer);
      if (data.ok) c.resolve(data.result);
      else c.reject(new PyError(data.error.type, data.error.message));
    }
  };
  // A worker script that fails to load or throws at top level lands here, not in onmessage.
  w.onerror = (e) => {
    e.preventDefault();
    if (w !== worker) return;
    clearTimeout(timer);
    bootFailed(new PyError("BootError", e.message || "the Python worker failed to start"));
  };
  w.postMessage({type: "boot", indexURL: PYODIDE_URL, zipURL: ZIP_URL});
}

function bootFailed(error) {
  if (boot.state === "error") return;
  boot.state = "error";
  boot.error = error;
  rejectAll(() => error);
  hosts.forEach((h) => h.render());
}

function rejectAll(errorFor) {
  const pending = [...calls];
  calls.clear();
  for (const [id, c] of pending) { clearTimeout(c.timer); c.reject(errorFor(id)); }
}

/**
 * A call ran past its budget. A worker cannot interrupt its Python, and every later call would queue behind it, so
 * the worker is replaced: a fresh one boots (each call re-fetches the files it needs). The widget that made the
 * call shows why until its Reset; every widget hears `onRestart` (its sessions are gone) and the others get their
 * knobs again (source "restart") so they redraw from scratch, like a widget that has just been mounted.
 */
function restartAfterHang(id) {
  const hung = calls.get(id);
  const seconds = +(hung.budget / 1000).toPrecision(3);
  const words = `The Python computation (${hung.host.name}.${hung.fn}) took longer than ${seconds} s and was ` +
    `stopped: Python was restarted, and this widget's state is gone. Press Reset to start again.`;
  console.warn(`${hung.host.name}.${hung.fn} ran past its ${seconds} s budget: restarting the Python worker`);
  worker.terminate();
  hung.host.stuck = words;
  const lost = new PyError("RestartError", "Python was restarted before this call finished");
  lost.restarted = true;             // not the widget's fault: Host.call does not show it
  rejectAll((cid) => (cid === id ? new PyError("TimeoutError", words) : lost));
  boot.restarts++;
  Object.assign(boot, {state: "booting", stage: "Restarting Python", done: 0});
  bootTimeline.push(["worker restarted", performance.now()]);
  startWorker();
  for (const h of hosts) h.restarted(h === hung.host);
}

/** `files` {"/abs/path": url relative to the site root}: the worker fetches them into Python's FS first. */
function resolveFiles(files) {
  if (!files) return undefined;
  return Object.fromEntries(Object.entries(files).map(([path, url]) => [path, new URL(url, ROOT).href]));
}

/** The budget of a call without its own `timeout`, read as the call starts; tests lower it with
 *  window.__gpt_mini_call_timeout_ms. */
function defaultBudget() {
  const test = Number(window.__gpt_mini_call_timeout_ms);
  return test > 0 ? test : CALL_TIMEOUT_MS;
}

function rawCall(host, fn, args, timeout = undefined, files = undefined) {
  if (boot.state === "error") return Promise.reject(boot.error);
  return new Promise((resolve, reject) => {
    const id = nextId++;
    calls.set(id, {resolve, reject, timer: null, host, fn, budget: timeout});
    worker.postMessage({id, widget: host.name, fn, args: args ?? {}, files: resolveFiles(files)});
  });
}

// ----------------------------------------------------------------------------- URL hash: #w-<key>=<json>&...

function readHash() {
  const out = new Map();
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const m = /^w-([\w-]+)=(.*)$/.exec(part);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

let hashTimer = null;
function writeHashSoon() {
  // Debounced: Chromium throttles (and logs) bursts of history updates; a drag only needs its last value.
  clearTimeout(hashTimer);
  hashTimer = setTimeout(writeHashNow, 250);
}

function writeHashNow() {
  clearTimeout(hashTimer);
  const keep = location.hash.replace(/^#/, "").split("&").filter((p) => p && !/^w-[\w-]+=/.test(p));
  for (const h of hosts) {
    if (h.inHash) keep.push(`w-${h.key}=${encodeURIComponent(JSON.stringify(h.knobs))}`);
  }
  const hash = keep.length ? "#" + keep.join("&") : "";
  if (hash !== location.hash) history.replaceState(history.state, "", location.pathname + location.search + hash);
}

window.addEventListener("hashchange", () => {
  // Someone pasted or edited a link on an open page: adopt its knobs.
  const hash = readHash();
  for (const h of hosts) {
    if (hash.has(h.key)) h.knobsFromHash(hash.get(h.key));
  }
});

// ----------------------------------------------------------------------------- small helpers

let uid = 0;
const newId = (prefix) => `${prefix}-${++uid}`;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const sameJSON = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

/** `12345678` -> "12,345,678" (thin, locale-independent: tests compare it). */
export function formatInt(n) {
  return typeof n === "number" && Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : String(n);
}

/** A CSS custom property of the page (light/dark aware), with a fallback for pages without the site CSS. */
export function cssVar(name, fallback, node = html) {
  const v = getComputedStyle(node).getPropertyValue(name).trim();
  return v || fallback;
}

// ----------------------------------------------------------------------------- charts (uPlot, lazily)

let uplotPromise = null;
/** Load the vendored uPlot once per page (script + CSS); resolves to the uPlot constructor. */
export function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  uplotPromise ??= new Promise((resolve, reject) => {
    const base = new URL("static/vendor/uplot/", ROOT);
    document.head.append(el("link", {rel: "stylesheet", href: new URL("uPlot.min.css", base).href}));
    document.head.append(el("script", {
      src: new URL("uPlot.iife.min.js", base).href,
      onload: () => resolve(window.uPlot),
      onerror: () => reject(new PyError("LoadError", "the chart library (uPlot) did not load")),
    }));
  });
  return uplotPromise;
}

/** Chart colours from the site's CSS variables, resolved now (call again after a theme change). */
export function chartColors(node = html) {
  const fallback = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];
  return {
    fg: cssVar("--fg", "#222", node), muted: cssVar("--muted", "#666", node), bg: cssVar("--bg", "#fff", node),
    border: cssVar("--border", "#ccc", node), accent: cssVar("--accent", "#1f6feb", node),
    series: fallback.map((f, i) => cssVar(`--c${i + 1}`, f, node)),
  };
}

/**
 * A chart's text alternative, kept in step with the chart: one summary sentence, then the numbers in a
 * collapsed <details> table. Call again with new data to update in place.
 */
export function textAlternative(container, {summary, caption = "The numbers", columns, rows}) {
  let box = container.querySelector(":scope > .w-alt");
  if (!box) {
    box = el("div", {class: "w-alt"},
      el("p", {class: "w-alt-summary"}),
      el("details", {}, el("summary", {text: caption}),
        el("div", {class: "w-table-wrap"}, el("table", {}, el("thead"), el("tbody")))));
    container.append(box);
  }
  box.querySelector(".w-alt-summary").textContent = summary;
  const thead = box.querySelector("thead");
  const tbody = box.querySelector("tbody");
  thead.replaceChildren(el("tr", {}, columns.map((c) => el("th", {scope: "col", text: c}))));
  tbody.replaceChildren(...rows.map((r) => el("tr", {}, r.map((v, i) =>
    el(i === 0 ? "th" : "td", i === 0 ? {scope: "row", text: v} : {text: v})))));
  return box;
}

/**
 * A uPlot line (or bar) chart with the site's colours, its width following the container, redrawn when the
 * colour scheme flips, and a text alternative kept in step. Resolves to {update(data), chart}.
 *   data = [xs, ys1, ys2, ...] (uPlot's column format); null/NaN gaps are fine.
 *   summary(data) -> one sentence for screen readers and for the <details> table's lead.
 *   bars: true draws the series as bars (e.g. a next-token probability chart).
 */
export async function lineChart(container, {title, xLabel = "x", series, height = 220, bars = false, summary,
                                            format = (v) => (typeof v === "number" ? +v.toPrecision(4) : v),
                                            maxRows = 60}) {
  const uPlot = await loadUPlot();
  const figure = el("figure", {class: "w-chart"});
  const plot = el("div", {class: "w-chart-plot", "aria-hidden": "true"});   // the canvas says nothing to AT
  figure.append(title ? el("figcaption", {text: title}) : null, plot);
  container.append(figure);
  let data = [[], ...series.map(() => [])];
  let chart = null;

  const make = () => {
    const c = chartColors(figure);
    chart?.destroy();
    const axis = {stroke: c.muted, grid: {stroke: c.border, width: 1}, ticks: {stroke: c.border}};
    chart = new uPlot({
      width: Math.max(200, plot.clientWidth || container.clientWidth || 300), height,
      legend: {show: series.length > 1},
      cursor: {drag: {x: false, y: false}},
      scales: {x: {time: false}},
      axes: [{...axis, label: xLabel}, {...axis}],
      series: [{label: xLabel}, ...series.map((s, i) => ({
        label: s.label, stroke: s.color || c.series[i % c.series.length], width: 2,
        fill: bars ? (s.color || c.series[i % c.series.length]) : undefined,
        paths: bars ? uPlot.paths.bars({size: [0.8, 40]}) : undefined, points: {show: false},
      }))],
    }, data, plot);
  };
  make();
  new ResizeObserver(() => chart.setSize({width: Math.max(200, plot.clientWidth), height})).observe(plot);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", make);

  const update = (next) => {
    data = next;
    chart.setData(data);
    const n = data[0].length;
    const stride = Math.max(1, Math.ceil(n / maxRows));   // the table samples long runs; the summary says so
    const rows = [];
    for (let i = 0; i < n; i += stride) rows.push(data.map((col) => format(col[i])));
    if (n && (n - 1) % stride) rows.push(data.map((col) => format(col[n - 1])));
    textAlternative(figure, {
      summary: summary ? summary(data) : `${title || "Chart"}: ${n} points.`,
      caption: stride > 1 ? `The numbers (every ${stride}th point)` : "The numbers",
      columns: [xLabel, ...series.map((s) => s.label)], rows,
    });
  };
  update(data);
  return {update, get chart() { return chart; }, figure};
}

// ----------------------------------------------------------------------------- the shared training loop

/**
 * Train / Stop / Reset over chunked Python calls (api.trainLoop(spec); the header comment shows a widget using it).
 * The loop owns what every training widget shares: the Train button (Train / Stop / Resume), data-train on the root
 * (idle | training | stopped | done | diverged), the busy status, a chunk size adapted so one call takes ~targetMs
 * (Stop, Reset and knob changes act within one chunk), steps per second, the done / diverged / stopped endings,
 * and forgetting the run on Reset, on a change of a knob in `runKnobs`, and when Python restarts.
 * The widget supplies its Python calls and its drawing; `step` must resolve to
 * {status: "training" | "done" | "diverged", losses: [...], step, steps, ...} (widgets/_live.py LiveRun).
 */
function trainLoop(host, api, {start, step, close, runKnobs = [], button, onSession, onChunk, onEnd, onClear,
                                onState, labels = {}, chunk: {initial = 2, max = 20, targetMs = 300} = {}}) {
  const words = {train: "Train", stop: "Stop", resume: "Resume", ...labels};
  const data = host.root.dataset;
  let session = null;       // what `start` resolved to, for `step`
  let state = "idle";
  let running = false;      // Train pressed and not stopped; the loop ends after the chunk in flight once false
  let active = null;        // the run whose loop is alive (possibly finishing its last chunk after Stop)
  let ending = false;       // onEnd is running: a press now waits for it (`again`)
  let again = false;
  let run = 0;              // bumped whenever the run is forgotten: anything older is discarded
  let starting = null;      // {run, promise} of the `start` in flight
  let chunk = initial;
  const runKey = (k) => JSON.stringify(runKnobs.map((name) => k[name]));
  let lastKey = runKey(api.knobs.get());

  const trainButton = button ? api.ui.button(button, {label: words.train, kind: "w-primary w-train",
                                                      onClick: () => toggle()}) : null;
  function setState(s, notify = true) {
    state = s;
    data.train = s;
    if (trainButton) {
      trainButton.textContent = running ? words.stop : s === "stopped" ? words.resume : words.train;
      trainButton.setAttribute("aria-pressed", String(running));
    }
    if (notify) onState?.(s);
  }

  /** The session to train, starting one for the current knobs if there is none (at most one `start` in flight;
   *  resolves to null if the run was forgotten meanwhile). A widget calls it to show the untrained model. */
  function prepare() {
    if (session) return Promise.resolve(session);
    if (starting?.run === run) return starting.promise;
    const mine = run;
    const promise = (starting?.promise ?? Promise.resolve()).catch(() => {}).then(async () => {
      if (mine !== run) return null;                     // superseded while the previous start ran
      const k = api.knobs.get();
      const s = await start(k);
      if (mine !== run) { closeQuietly(s); return null; }
      session = s;
      onSession?.(s, k);
      return s;
    });
    starting = {run: mine, promise};
    const done = () => { if (starting?.promise === promise) starting = null; };
    promise.then(done, done);
    return promise;
  }

  function closeQuietly(s) {
    if (s && close) Promise.resolve().then(() => close(s)).catch(() => {});
  }

  /** Forget the run (and its session): the next Train starts a new one. */
  function forget({closeSession = true} = {}) {
    run++;
    running = again = false;
    if (closeSession) closeQuietly(session);
    session = null;
    lastKey = runKey(api.knobs.get());
    setState("idle");
    api.setStatus("ready");
    onClear?.();
  }

  async function train() {
    if (state === "done" || state === "diverged") forget();   // a finished run: Train starts over
    const mine = run;
    active = mine;
    running = true;
    setState("training");
    api.setStatus("busy");
    let last = null;
    try {
      if (!(await prepare()) || mine !== run) return;
      const t0 = performance.now();
      let steps = 0;
      while (running && mine === run) {
        const c0 = performance.now();
        const r = await step(session, chunk, api.knobs.get());
        const ms = performance.now() - c0;
        if (mine !== run) return;                                // forgotten while the chunk ran
        last = r;
        steps += r.losses.length;
        // One call ≈ targetMs: responsive, without paying the per-call overhead on every step.
        if (r.losses.length) chunk = Math.max(1, Math.min(max, Math.round(chunk * targetMs / ms) || 1));
        const stepsPerSecond = steps / ((performance.now() - t0) / 1000);
        data.chunk = String(chunk);
        data.stepsPerSecond = stepsPerSecond.toFixed(2);
        onChunk?.(r, {chunk, ms, stepsPerSecond});
        if (r.status === "done" || r.status === "diverged") {
          await finish(r.status, r, mine);
          return;
        }
      }
      if (mine === run) await finish("stopped", last, mine);
    } catch (e) {
      if (mine !== run) return;               // e.g. the call that hung: the restart already said so
      running = false;
      setState("idle");
      if (!(e instanceof PyError)) host.bug(e, "failed while training");
      else if (!e.restarted) api.setStatus("error", String(e));
    } finally {
      if (active === mine) active = null;
      if (again) { again = false; train(); }
    }
  }

  /** The run ended (kind: done | diverged | stopped): the widget draws it and may give the words for it. */
  async function finish(kind, r, mine) {
    running = false;
    ending = true;
    let said;
    try { said = await onEnd?.(kind, r); } finally { ending = false; }
    if (mine !== run) return;
    setState(kind);
    if (kind === "diverged") {
      api.setStatus("error", said || `Training diverged at step ${r.step}.`);
      return;
    }
    api.setStatus("ready");
    api.announce(said || (kind === "done" ? `Training finished after ${r.step} steps.`
      : `Stopped at step ${r?.step ?? 0}.`));
  }

  function stop() {
    running = false;       // the loop sees it after the chunk in flight
    setState(state);
  }

  function toggle() {
    if (running) stop();
    else if (ending) again = !again;                               // pressed while the run ends: once it has
    else if (active === run) { running = true; setState("training"); }  // again before the last chunk came back
    else train();
  }

  api.knobs.on((k, source) => {
    if (source === "reset") lastKey = runKey(k);          // onReset has forgotten the run already
    else if (runKey(k) !== lastKey) forget();
  });
  api.onReset(() => forget());
  api.onRestart(() => forget({closeSession: false}));
  setState("idle", false);
  return {
    toggle, train, stop, prepare, reset: forget, button: trainButton,
    get running() { return running; }, get session() { return session; }, get state() { return state; },
  };
}

// ----------------------------------------------------------------------------- one widget on the page

class Host {
  constructor(root, key) {
    this.root = root;
    this.name = root.dataset.widget;
    this.key = key;
    this.def = null;
    this.pending = 0;
    this.held = false;           // setStatus("busy") holds busy across calls (e.g. a training loop)
    this.error = null;           // message of the widget's current error, or null
    this.stuck = null;           // why Python was restarted under this widget: shown until its Reset
    this.inHash = false;
    this.knobListeners = new Set();
    this.resetListeners = new Set();
    this.restartListeners = new Set();
    this.lastAnnounced = "";
    this.status = null;
    this.settled = null;        // last status that was not busy
    try {
      this.defaults = JSON.parse(root.dataset.knobs || "{}");
    } catch (e) {
      console.warn(`widget ${this.name}: data-knobs is not JSON`, e);
      this.defaults = {};
    }
    this.knobs = structuredClone(this.defaults);
    const fromHash = readHash().get(key);
    if (fromHash !== undefined) this.knobsFromHash(fromHash, false);
    this.buildChrome();
    this.render();
  }

  knobsFromHash(text, notify = true) {
    try {
      const value = JSON.parse(decodeURIComponent(text));
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
      this.knobs = {...this.defaults, ...value};   // exactly as shared, even if it cannot run
      this.inHash = true;
      if (notify) this.emitKnobs("hash");
    } catch (e) {
      console.warn(`widget ${this.name}: ignoring unreadable knobs in the URL (#w-${this.key})`, e);
    }
  }

  buildChrome() {
    const r = this.root;
    r.replaceChildren();
    r.classList.add("widget");
    this.stateText = el("span", {class: "w-state-text"});
    this.progress = el("progress", {class: "w-progress", max: 3, value: 0, "aria-hidden": "true"});
    this.resetButton = el("button", {
      type: "button", class: "w-reset", text: "Reset",
      title: "Restore the knobs this lesson set", onclick: () => this.reset(),
    });
    this.titleEl = el("span", {class: "w-title"});
    this.errorBox = el("div", {class: "w-error", hidden: true});
    this.body = el("div", {class: `w-body w-${this.name}`});
    this.live = el("p", {class: "w-live visually-hidden", "aria-live": "polite"});
    r.append(
      el("div", {class: "w-bar"}, this.titleEl, el("span", {class: "w-state"}, this.progress, this.stateText),
        this.resetButton),
      this.errorBox, this.body, this.live);
  }

  mount(def) {
    this.def = def;
    const label = def.title || this.name;
    this.titleEl.textContent = label;
    this.root.setAttribute("role", "group");
    this.root.setAttribute("aria-label", `Interactive: ${label}`);
    (styled.get(this.name) || Promise.resolve()).then(() => {
      try {
        def.mount(this.root, this.api());
      } catch (e) {
        this.bug(e, "failed to start");
      }
      this.render();
    });
    this.render();
  }

  api() {
    const host = this;
    const api = {
      root: this.root,
      /** Where the widget draws: a <div class="w-body w-NAME"> under the runtime's status bar. */
      body: this.body,
      name: this.name,
      /** Resolves when Python is up (a new promise after a restart). */
      get ready() { return pythonReady; },
      STALE,
      /** Call widgets.<name>.<fn>(**args) in Python. Resolves to the result, rejects with a PyError
       *  (already shown in the widget; the next successful call clears it). opts: {timeout, files}, where
       *  files {"/abs/path": url relative to the site root} are fetched into Python's filesystem first. */
      call: (fn, args, opts = {}) => host.call(fn, args, opts),
      /** A caller where only the newest request matters (knob-driven updates): at most one call in flight
       *  plus one waiting; a superseded request resolves to STALE instead of running. (args, opts) as `call`. */
      latest: (fn) => host.latest(fn),
      /** "busy" holds the busy state until "ready"; "error" shows the message; "ready" clears both. */
      setStatus: (status, message) => host.setStatus(status, message),
      announce: (text) => host.announce(text, true),
      knobs: {
        get: () => structuredClone(host.knobs),
        set: (partial, {source = "user"} = {}) => host.setKnobs(partial, source),
        defaults: () => structuredClone(host.defaults),
        /** fn(knobs, source) after every change; source: user | reset | hash | <your own label> */
        on: (fn) => { host.knobListeners.add(fn); return () => host.knobListeners.delete(fn); },
      },
      onReset: (fn) => { host.resetListeners.add(fn); return () => host.resetListeners.delete(fn); },
      /** fn() after Python was restarted (a call hung): every session and loaded file of the old worker is gone. */
      onRestart: (fn) => { host.restartListeners.add(fn); return () => host.restartListeners.delete(fn); },
      /** The shared Train / Stop / Reset loop over chunked Python calls: see the header comment. */
      trainLoop: (spec) => trainLoop(host, api, spec),
      ui: {
        range: (parent, spec) => host.range(parent, spec),
        select: (parent, spec) => host.select(parent, spec),
        button: (parent, spec) => host.button(parent, spec),
        text: (parent, spec) => host.text(parent, spec),
        prompt: (parent, spec) => host.prompt(parent, spec),
        explanation: (parent, spec) => host.explanation(parent, spec),
      },
      el, debounce, formatInt, cssVar, loadUPlot, chartColors, textAlternative, lineChart,
    };
    return api;
  }

  call(fn, args, {timeout, files} = {}) {
    this.pending++;
    this.render();
    const done = () => { this.pending--; this.render(); };
    return rawCall(this, fn, args, timeout, files).then(
      (result) => { this.error = null; done(); return result; },
      (error) => { if (!error.restarted) this.error = String(error); done(); throw error; });
  }

  /** Python was restarted under every widget; `culprit`: this widget's call is the one that hung. */
  restarted(culprit) {
    for (const fn of this.restartListeners) {
      try { fn(); } catch (e) { this.bug(e, "failed on a Python restart"); }
    }
    if (!culprit && this.def) this.emitKnobs("restart");
    this.render();
  }

  latest(fn) {
    let running = false;
    let waiting = null;
    const pump = () => {
      if (running || !waiting) return;
      const job = waiting;
      waiting = null;
      running = true;
      this.call(fn, job.args, job.opts).then(job.resolve, job.reject).finally(() => { running = false; pump(); });
    };
    return (args, opts) => new Promise((resolve, reject) => {
      if (waiting) waiting.resolve(STALE);
      waiting = {args, opts, resolve, reject};
      pump();
    });
  }

  setStatus(status, message) {
    if (status === "busy") this.held = true;
    else if (status === "ready") { this.held = false; this.error = null; }
    else if (status === "error") { this.held = false; this.error = message || "Something went wrong."; }
    else throw new Error(`unknown status ${status}`);
    this.render();
    if (message && status !== "error") this.announce(message, true);
  }

  setKnobs(partial, source) {
    const next = {...this.knobs, ...partial};
    if (sameJSON(next, this.knobs)) return;
    this.knobs = next;
    this.inHash = true;
    writeHashSoon();
    this.emitKnobs(source);
  }

  emitKnobs(source) {
    for (const fn of this.knobListeners) {
      try { fn(structuredClone(this.knobs), source); } catch (e) { this.bug(e, "failed on a knob change"); }
    }
  }

  /** A bug in the widget's JS: logged as an error (tests catch it), shown, and the page carries on. */
  bug(e, what) {
    console.error(`widget ${this.name} ${what}:`, e);
    this.error = `The widget ${what}: ${e}`;
    this.render();
  }

  reset() {
    for (const fn of this.resetListeners) {
      try { fn(); } catch (e) { this.bug(e, "failed on Reset"); }
    }
    this.knobs = structuredClone(this.defaults);
    this.inHash = false;
    this.error = null;
    this.stuck = null;
    this.held = false;
    writeHashNow();
    this.emitKnobs("reset");
    this.render();
  }

  announce(text, force = false) {
    if (!text || (!force && text === this.lastAnnounced)) return;
    this.lastAnnounced = text;
    this.live.textContent = text;
  }

  render() {
    let status;
    let text;
    const label = this.def?.title || this.name;
    if (boot.state === "error") {
      status = "error";
      text = "Python could not start";
    } else if (this.stuck) {
      status = "error";
      text = "Stopped";
    } else if (boot.state !== "ready") {
      status = "booting";
      text = `${boot.stage} (step ${boot.done + 1} of ${boot.total})`;
    } else if (!this.def) {
      status = "booting";
      text = "Loading the widget";
    } else if (this.pending > 0 || this.held) {
      status = "busy";
      text = "Working…";
    } else if (this.error) {
      status = "error";
      text = "Needs attention";
    } else {
      status = "ready";
      text = "Ready";
    }
    const error = boot.state === "error" ? `Python could not start: ${boot.error}`
      : status === "error" ? this.stuck || this.error : null;
    const r = this.root;
    const previousStatus = this.status;
    this.status = status;
    r.dataset.status = status;
    r.setAttribute("aria-busy", String(status === "booting" || status === "busy"));
    // A quick update should not flash "Working…": show it only if busy lasts (the dot's colour waits in CSS too).
    clearTimeout(this.busyTimer);
    if (status === "busy" && previousStatus !== "booting") {
      this.busyTimer = setTimeout(() => { if (this.status === "busy") this.stateText.textContent = text; }, 250);
    } else {
      this.stateText.textContent = text;
    }
    this.progress.hidden = status !== "booting";
    this.progress.max = boot.total;
    this.progress.value = boot.done;
    this.errorBox.hidden = !error;
    this.errorBox.textContent = error || "";
    // Announce what changed, not every busy blink: boot steps, errors, and coming back to ready.
    if (status === "booting") this.announce(`${label}: ${text}.`);
    else if (status === "error") this.announce(`${label}: ${error}`);
    else if (status === "ready" && this.settled !== "ready") this.announce(`${label} is ready.`, true);
    if (status !== "busy") this.settled = status;
  }

  // --------------------------------------------------------------------------- controls bound to knobs

  /** <label> + <input type=range> + <output>, bound to knobs[spec.knob]. A range that comes from Python (info())
   *  leaves out min/max: the input stays disabled until `setRange({min, max, step})`. */
  range(parent, {knob, label, min, max, step = 1, help, format = String}) {
    const id = newId(`w-${this.key}-${knob}`);
    const input = el("input", {type: "range", id, name: knob, min, max, step, disabled: min === undefined});
    const output = el("output", {for: id, class: "w-value"});
    const row = el("div", {class: "w-field", "data-knob": knob},
      el("label", {for: id, text: label}), input, output,
      help ? el("span", {class: "w-help", id: id + "-help", text: help}) : null);
    if (help) input.setAttribute("aria-describedby", id + "-help");
    const show = (k) => {
      const v = k[knob];
      const n = Number(v);
      if (typeof v === "number" && Number.isFinite(n)) input.value = String(n);  // the range clamps; the output doesn't
      output.value = v === undefined ? "—" : format(v);
      input.setAttribute("aria-valuetext", output.value);
    };
    input.addEventListener("input", () => this.setKnobs({[knob]: Number(input.value)}, "user"));
    this.knobListeners.add(show);
    show(this.knobs);
    parent.append(row);
    const setRange = (r) => {
      for (const k of ["min", "max", "step"]) if (r[k] !== undefined) input[k] = String(r[k]);
      input.disabled = false;
      show(this.knobs);
    };
    return {row, input, output, setRange};
  }

  /** <label> + <select>; options [{value, label}]; bound to knobs[spec.knob] unless spec.onChange is given. */
  select(parent, {knob, label, options = [], onChange, help}) {
    const id = newId(`w-${this.key}-${knob || "select"}`);
    const select = el("select", {id, name: knob || id});
    const row = el("div", {class: "w-field w-field-select"}, el("label", {for: id, text: label}), select,
      help ? el("span", {class: "w-help", text: help}) : null);
    const setOptions = (opts) => {
      select.replaceChildren(...opts.map((o) => el("option", {value: JSON.stringify(o.value), text: o.label})));
      if (knob) select.value = JSON.stringify(this.knobs[knob]);
    };
    setOptions(options);
    select.addEventListener("change", () => {
      const value = JSON.parse(select.value);
      if (onChange) onChange(value);
      else this.setKnobs({[knob]: value}, "user");
    });
    if (knob) this.knobListeners.add((k) => { select.value = JSON.stringify(k[knob]); });
    parent.append(row);
    return {row, select, setOptions};
  }

  /** <label> + <input type=text> bound to knobs[spec.knob]: typing sets the knob `debounce` ms after the last key
   *  (source "typing"), and a knob change from elsewhere never overwrites what is being typed. */
  text(parent, {knob, label, maxlength = 200, debounce: wait = 250}) {
    const id = newId(`w-${this.key}-${knob}`);
    const input = el("input", {type: "text", id, name: knob, spellcheck: "false", autocomplete: "off",
                               autocapitalize: "off", maxlength});
    const row = el("div", {class: "w-field w-field-text", "data-knob": knob},
      el("label", {for: id, text: label}), input);
    input.addEventListener("input", debounce(() => this.setKnobs({[knob]: input.value}, "typing"), wait));
    const show = (k, source) => {
      if (source !== "typing" && input.value !== (k[knob] ?? "")) input.value = k[knob] ?? "";
    };
    this.knobListeners.add(show);
    show(this.knobs);
    parent.append(row);
    return {row, input};
  }

  /** A prompt: a preset menu ("Custom" when the text is none of them) beside a `text` field, both bound to
   *  knobs[spec.knob]. Returns {row, input, select, setPresets(list)}; the presets usually come from info(). */
  prompt(parent, {knob = "prompt", label = "Prompt (type your own)", presetLabel = "Prompt preset"} = {}) {
    const row = el("div", {class: "w-prompt-row"});
    parent.append(row);
    let presets = [];
    const custom = {value: null, label: "Custom"};
    const menu = this.select(row, {label: presetLabel, options: [custom],
      onChange: (p) => { if (p !== null) this.setKnobs({[knob]: p}, "user"); }});
    const {input} = this.text(row, {knob, label});
    const sync = (k) => { menu.select.value = JSON.stringify(presets.includes(k[knob]) ? k[knob] : null); };
    this.knobListeners.add(sync);
    const setPresets = (list) => {
      presets = list;
      menu.setOptions([custom, ...list.map((p) => ({value: p, label: `“${p}”`}))]);
      sync(this.knobs);
    };
    return {row, input, select: menu.select, setPresets};
  }

  /** The box that explains a run gone wrong from Python's words {what, why, try}: "Training diverged. <what>",
   *  "Why: …", "Try: …" (styled by widgets.css). Returns {box, show(d)}; show(null) hides it. */
  explanation(parent, {lead = "Training diverged. "} = {}) {
    const box = el("div", {class: "w-diverged", hidden: true});
    parent.append(box);
    const part = (label, text) => (text ? el("p", {}, el("strong", {text: label}), text) : null);
    const show = (d) => {
      box.hidden = !d;
      box.replaceChildren(...(d ? [part(lead, d.what), part("Why: ", d.why), part("Try: ", d.try)] : [])
        .filter(Boolean));
    };
    return {box, show};
  }

  button(parent, {label, onClick, kind = ""}) {
    const b = el("button", {type: "button", class: `w-button ${kind}`.trim(), text: label, onclick: onClick});
    parent.append(b);
    return b;
  }
}

// ----------------------------------------------------------------------------- registration

/** Called by static/widgets/<name>.js: mounts `def` on every [data-widget=name] of the page, once the widget's
 *  own stylesheet (static/widgets/<name>.css, next to its script) has loaded, so its body never shows unstyled. */
export function registerWidget(name, def) {
  if (definitions.has(name)) return;
  definitions.set(name, def);
  styled.set(name, loadCss(`widgets/${name}.css`));
  for (const h of hosts) if (h.name === name && !h.def) h.mount(def);
}

function init() {
  const roots = [...document.querySelectorAll("[data-widget]")];
  if (!roots.length) {
    // Started early for a page whose widgets turned out to be missing: nothing will ever call Python.
    if (worker) { worker.terminate(); worker = null; }
    return;
  }
  loadWidgetCss();
  const seen = new Map();
  for (const root of roots) {
    const name = root.dataset.widget;
    const n = (seen.get(name) || 0) + 1;
    seen.set(name, n);
    hosts.push(new Host(root, n === 1 ? name : `${name}-${n}`));   // two of a kind get separate hash keys
  }
  // A widget script that ran before the page was parsed has registered already: mount it now.
  for (const h of hosts) if (definitions.has(h.name)) h.mount(definitions.get(h.name));
  if (!worker) startWorker();
  // Module scripts have all run by `load`: a widget still without code will never get any.
  window.addEventListener("load", () => {
    for (const h of hosts) {
      if (!h.def) {
        h.error = `No code registered for widget “${h.name}” (static/widgets/${h.name}.js did not load).`;
        h.def = {title: h.name, mount() {}};
        h.render();
      }
    }
  });
}

/** A stylesheet next to this file, linked once; resolves when it has loaded or failed (the browser reports it). */
function loadCss(path) {
  const href = new URL(path, import.meta.url).href;
  const link = [...document.querySelectorAll("link[rel=stylesheet]")].find((l) => l.href === href);
  if (link) return Promise.resolve();
  return new Promise((resolve) => document.head.append(el("link", {rel: "stylesheet", href, onload: resolve,
                                                                     onerror: resolve})));
}

/** The widgets' shared stylesheet travels with the runtime, so a page template needs only the script tags. Each
 *  widget's own (static/widgets/<name>.css) follows it when the widget registers: later in the cascade. */
function loadWidgetCss() {
  loadCss("widgets/widgets.css");
}

// Pages load this module `async`, so it usually runs while the HTML is still being parsed (a long lesson takes a
// few hundred ms): start Python and fetch the widget CSS right away, and find the widgets once the page is parsed.
// Loaded as a plain (deferred) module, or imported later, it finds the page parsed and does it all at once.
if (document.readyState === "loading") {
  startWorker();
  loadWidgetCss();
  document.addEventListener("DOMContentLoaded", init, {once: true});
} else {
  init();
}
