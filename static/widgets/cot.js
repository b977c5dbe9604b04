// CoT widget UI: the two models 02_cot ships (direct answers, and chain-of-thought traces of running partial sums)
// answer fresh problems of n summands live, a few per call; accuracy per n (with 95% Wilson intervals), tokens per
// answer and one trace with its first wrong partial sum fill in. Every number, range and word of explanation comes
// from widgets/cot.py (02_cot's question, problems, final_answer, first_error, wilson); this file draws and sends
// knobs.
import {PyError, registerWidget, STALE} from "../runtime.js";

// Python errors are already shown by the runtime; anything else is a bug in this file and must surface.
const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };
const pct = (p) => (p == null ? "—" : `${Math.round(100 * p)}%`);
const fmtT = (t) => (Number(t) === 0 ? "0 (greedy)" : String(t));
// a series colour, lighter, for its interval lines
const faint = (c) => {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  return m ? `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, 0.4)` : c;
};

registerWidget("cot", {
  title: "Direct answers vs chain of thought, by number of summands",
  mount(root, api) {
    const {el, body} = api;        // body carries the class w-cot
    const data = root.dataset;      // what tests read: exactly what Python returned

    const intro = el("p", {class: "w-note", text: "Two models fine-tuned from the same SFT checkpoint on the " +
      "same problems: one answers directly, one writes its running partial sums first (chain of thought). " +
      "Press Answer: both answer fresh problems right here in your browser."});
    body.append(intro);

    // ------------------------------------------------------------------ controls
    const controls = el("div", {class: "w-controls"});
    body.append(controls);
    let info = null;                // widgets/cot.py info(): ranges, temperature ladder, model, paths
    const beyondN = (n) => !!info && info.beyond.includes(Number(n));
    const nField = api.ui.range(controls, {knob: "n", label: "Summands n",
      format: (v) => (beyondN(v) ? `${v} (beyond training)` : String(v)),
      help: "How many numbers to add."});
    const scale = el("div", {class: "w-nscale", "aria-hidden": "true"});   // the help text says it in words
    nField.row.append(scale);

    // Temperature: a slider over info's ladder (the input holds a rung; the knob holds the temperature itself)
    let ladder = [];
    const tId = "w-cot-temperature-" + Math.random().toString(36).slice(2, 8);
    const tInput = el("input", {type: "range", id: tId, name: "temperature", min: 0, max: 0, step: 1, disabled: true,
      "aria-describedby": tId + "-help"});
    const tOut = el("output", {for: tId, class: "w-value"});
    controls.append(el("div", {class: "w-field", "data-knob": "temperature"},
      el("label", {for: tId, text: "Sampling temperature"}), tInput, tOut,
      el("span", {class: "w-help", id: tId + "-help", text: "0 takes the most likely token each step; higher " +
        "samples from a flatter distribution. Try 1.5."})));
    tInput.addEventListener("input", () => api.knobs.set({temperature: ladder[Number(tInput.value)]}));
    const showT = (k) => {
      const i = ladder.indexOf(Number(k.temperature));
      if (i >= 0) tInput.value = String(i);
      tOut.value = fmtT(k.temperature);
      tInput.setAttribute("aria-valuetext", `temperature ${tOut.value}`);
    };
    const seedField = api.ui.range(controls, {knob: "seed", label: "Problem seed",
      help: "Which fresh problems are drawn (and the samples)."});

    const actions = el("div", {class: "w-actions"});
    body.append(actions);
    const paths = {direct: "/data/checkpoints/02_cot_direct.npz", cot: "/data/checkpoints/02_cot_cot.npz",
                   results: "/data/results/02_cot.json"};
    let files = null;              // {path: url}, from info(): fetched by the worker at the first Answer only
    const loop = api.trainLoop({
      button: actions,
      labels: {train: "Answer", stop: "Stop", resume: "Resume"},
      runKnobs: ["temperature", "seed"],          // a new temperature or seed is a different experiment
      start: async (k) => {
        await infoReady;
        return api.call("start", {temperature: k.temperature, seed: k.seed, ...paths}, {files});
      },
      step: (s, n, k) => api.call("step", {session: s.session, n: k.n, count: Math.min(n, info.max_chunk)}),
      close: (s) => api.call("close", {session: s.session}),
      chunk: {initial: 2, max: 16, targetMs: 400},
      onSession: (r) => { data.session = String(r.session); draw(r); showProgress(r); },
      onChunk: (r, {stepsPerSecond}) => { draw(r); showProgress(r, ` · ${stepsPerSecond.toFixed(1)} problems/s`); },
      onEnd: (kind, r) => {
        if (kind === "done") return `All ${r.steps} problems answered by both models.`;
        return r ? `Stopped after ${r.step} of ${r.steps} problems.` : undefined;
      },
      onClear: () => { last = null; draw(null); showProgress(null); refreshView(api.knobs.get()); },
    });
    const progressLine = el("span", {class: "w-progressline", role: "status"});
    actions.append(progressLine);

    // ------------------------------------------------------------------ outputs
    const beyondBox = api.ui.explanation(body, {lead: "Beyond the trained range. "});
    beyondBox.box.classList.add("w-beyond-box");
    const hotBox = api.ui.explanation(body, {lead: "Too hot. "});
    hotBox.box.classList.add("w-hot-box");
    const panels = el("div", {class: "w-panels"});
    const accPanel = el("section", {class: "w-panel w-acc", "aria-label": "Accuracy by number of summands"});
    const tokPanel = el("section", {class: "w-panel", "aria-label": "Tokens per answer"});
    panels.append(accPanel, tokPanel);
    const tracePanel = el("section", {class: "w-trace-panel", "aria-label": "A chain-of-thought trace"});
    body.append(panels, tracePanel);

    const colors = api.chartColors(root);
    let accChart = null;
    let tokChart = null;
    const ns = () => (info ? Array.from({length: info.evaluated[1] - info.evaluated[0] + 1},
      (_, i) => info.evaluated[0] + i) : []);
    api.lineChart(accPanel, {
      title: "Exact-answer accuracy (faint: 95% Wilson intervals)", xLabel: "summands n", height: 220,
      series: [{label: "direct", color: colors.series[0]}, {label: "CoT", color: colors.series[1]},
               {label: "direct 95% low", color: faint(colors.series[0])},
               {label: "direct 95% high", color: faint(colors.series[0])},
               {label: "CoT 95% low", color: faint(colors.series[1])},
               {label: "CoT 95% high", color: faint(colors.series[1])}],
      format: (v) => (typeof v === "number" && v <= 1 ? pct(v) : v ?? "—"),   // n is 2 or more
      summary: accSummary,
    }).then((c) => { accChart = c; drawCharts(); }, () => {});
    api.lineChart(tokPanel, {
      title: "Tokens per answer (mean)", xLabel: "summands n", height: 220,
      series: [{label: "direct", color: colors.series[0]}, {label: "CoT", color: colors.series[1]}],
      format: (v) => (typeof v === "number" ? +v.toFixed(1) : v ?? "—"),
      summary: ([xs, d, c]) => {
        const done = xs.map((n, i) => [n, d[i], c[i]]).filter((r) => r[1] != null);
        return done.length ? "Mean tokens per answer (the end token included): " + done.map(([n, a, b]) =>
          `n = ${n}: direct ${a.toFixed(1)}, CoT ${b.toFixed(1)}`).join("; ") + ". CoT's trace costs tokens."
          : "No answers yet: press Answer.";
      },
    }).then((c) => { tokChart = c; drawCharts(); }, () => {});

    // ------------------------------------------------------------------ state and drawing
    let last = null;               // the latest view from Python (start, step or view)

    function accSummary([xs, d, c]) {
      const rows = xs.map((n, i) => [n, d[i], c[i]]).filter((r) => r[1] != null);
      if (!rows.length) return "No answers yet: press Answer.";
      const t = last?.tallies || {};
      return "Exact-answer accuracy by number of summands: " + rows.map(([n, a, b]) =>
        `n = ${n}${beyondN(n) ? " (beyond training)" : ""}: direct ${pct(a)}, CoT ${pct(b)} ` +
        `of ${t[n]?.cot.answered ?? "?"}`).join("; ") + ".";
    }

    function drawCharts() {
      const xs = ns();
      const t = last?.tallies || {};
      const col = (model, f) => xs.map((n) => (t[n]?.[model].answered ? f(t[n][model]) : null));
      if (accChart) {
        accChart.update([xs, col("direct", (v) => v.accuracy), col("cot", (v) => v.accuracy),
          col("direct", (v) => v.interval[0]), col("direct", (v) => v.interval[1]),
          col("cot", (v) => v.interval[0]), col("cot", (v) => v.interval[1])]);
      }
      if (tokChart) tokChart.update([xs, col("direct", (v) => v.tokens), col("cot", (v) => v.tokens)]);
    }

    /** Draw a view from Python: tallies (charts), the trace at n, and the explanations. */
    function draw(v) {
      last = v?.tallies ? v : null;           // no tallies: no experiment yet
      data.tallies = JSON.stringify(last?.tallies ?? null);
      data.viewN = String(v?.n ?? api.knobs.get().n);
      data.trace = JSON.stringify(v?.trace ?? null);
      data.beyond = JSON.stringify(v?.beyond ?? null);
      data.hot = JSON.stringify(v?.hot ?? null);
      beyondBox.show(v?.beyond ?? null);
      hotBox.show(v?.hot ?? null);
      drawCharts();
      drawTrace(v);
    }

    function drawTrace(v) {
      const n = v?.n ?? api.knobs.get().n;
      const tr = v?.trace;
      const kids = [el("h3", {text: `A chain-of-thought trace at n = ${n}`})];
      if (!tr) {
        kids.push(el("p", {class: "w-note", text: "No problem with this many summands answered yet: press Answer."}));
        tracePanel.replaceChildren(...kids);
        return;
      }
      const reply = el("p", {class: "w-reply"}, el("span", {class: "w-q", text: tr.question + " "}));
      for (const p of tr.parts) {
        if (p.kind === "text") { reply.append(p.text); continue; }
        if (p.first_error) {
          reply.append(el("mark", {class: "w-first-error", text: p.text,
            title: `first wrong partial sum: should be ${p.expected}`}),
          el("span", {class: "w-should", text: ` (should be ${p.expected ?? "nothing: the trace is too long"})`}));
        } else {
          reply.append(el("span", {class: p.after_error ? "w-sum w-after" : "w-sum", text: p.text}));
        }
      }
      if (tr.missing) {
        reply.append(el("mark", {class: "w-first-error w-missing",
          text: ` [stopped here: partial sum ${tr.missing.index + 1} should be ${tr.missing.expected}]`}));
      }
      const verdict = tr.right ? (tr.first_error == null ? "Right, every partial sum correct."
        : "The final answer is right, though a partial sum on the way is not.")
        : tr.first_error == null
          ? `Wrong: the trace is right but the reply ${tr.ended ? "is malformed" : "never ended"}.`
          : tr.first_error === tr.expected.length - 1
            ? `Wrong: partial sum ${tr.first_error + 1}, the last one, is the mistake.`
            : `Wrong: partial sum ${tr.first_error + 1} is the first mistake, and every sum after it inherits it.`;
      kids.push(el("p", {class: "w-trace-which", text: v.traces_wrong
        ? `The latest of the ${v.traces_wrong} traces (of ${v.traces} answered) that went wrong:`
        : `The latest of ${v.traces} traces answered (none went wrong):`}),
      reply,
      el("p", {class: "w-expected"}, el("span", {class: "w-label", text: "Correct trace: "}), tr.expected_text),
      el("p", {class: tr.right ? "w-verdict w-ok" : "w-verdict w-bad", text: `${verdict} ${tr.tokens} tokens.`}));
      const d = v.direct_reply;
      if (d) {
        kids.push(el("p", {class: "w-direct"}, el("span", {class: "w-label", text: "Direct model: "}),
          `${d.question} ${d.reply} `, el("span", {class: d.right ? "w-ok" : "w-bad",
            text: d.right ? "(right)" : `(wrong: ${d.answer})`})));
      }
      tracePanel.replaceChildren(...kids);
    }

    function showProgress(r, extra = "") {
      progressLine.textContent = r
        ? `Answered ${r.step} of ${r.steps} problems (${info?.per_n ?? "?"} per n, both models)${extra}`
        : "Nothing answered yet.";
    }

    // ------------------------------------------------------------------ knob changes (no answering needed)
    const viewLatest = api.latest("view");
    async function refreshView(k) {
      showT(k);
      data.n = String(k.n);
      if (loop.running) return;             // the next chunk answers at the new n and returns its view
      try {
        const r = await viewLatest({session: loop.session ? loop.session.session : null, n: k.n});
        if (r === STALE) return;
        draw(r);
      } catch (e) { pyOnly(e); }
    }
    api.knobs.on((k) => refreshView(k));

    // ------------------------------------------------------------------ start
    let infoResolve;
    const infoReady = new Promise((resolve) => { infoResolve = resolve; });
    function useInfo(r) {
      info = r;
      ladder = r.temperatures;
      tInput.max = String(ladder.length - 1);
      tInput.disabled = false;
      files = {[paths.direct]: r.checkpoints.direct, [paths.cot]: r.checkpoints.cot, [paths.results]: r.results};
      nField.setRange({min: r.evaluated[0], max: r.evaluated[1], step: 1});
      const [lo, hi] = r.trained;
      nField.row.querySelector(".w-help").textContent = `How many numbers (each ${r.summand_range[0]}–` +
        `${r.summand_range[1]}) to add. Trained on ${lo}–${hi}; ${r.beyond.join(" and ")} are beyond the ` +
        "trained range.";
      scale.replaceChildren(...ns().map((n) => el("span", {class: r.beyond.includes(n) ? "w-tick w-beyond" : "w-tick",
        text: String(n)})), el("span", {class: "w-scale-note", text: `trained ${lo}–${hi} · beyond`}));
      seedField.setRange({min: r.seed_range[0], max: r.seed_range[1], step: 1});
      intro.textContent = "Two models fine-tuned from the same SFT checkpoint on the same problems: one answers " +
        "directly, one writes its running partial sums first (chain of thought). Press Answer: both answer " +
        `${r.per_n} fresh problems per n right here in your browser. The models are ${r.model_note}.`;
      data.info = JSON.stringify({trained: r.trained, evaluated: r.evaluated, model: r.model});
      infoResolve();
      drawCharts();
      refreshView(api.knobs.get());
    }

    const k0 = api.knobs.get();
    showT(k0);
    showProgress(null);
    drawTrace(null);
    api.call("info").then(useInfo, () => {});
  },
});
