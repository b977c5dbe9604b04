// DPO widget UI: run 03_dpo's DPO live on the small SFT model and watch the implicit reward margin climb, the
// chosen and rejected rewards and log-probs move apart (or both fall), and the held-out replies change; the β,
// learning-rate and steps knobs show what breaks it. Every number comes from widgets/dpo.py; this file only draws
// and sends knobs. The Train / Stop / Reset loop is the runtime's (api.trainLoop); this widget adds a held-out
// evaluation every info().eval_every steps and once at the end.
import {PyError, registerWidget} from "../runtime.js";

const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };
const pct = (p) => `${Math.round(100 * p)}%`;
const fmt = (v, d = 3) => (Number.isFinite(v) ? v.toFixed(d).replace("-", "−") : "—");
const fmtNum = (v) => (v >= 0.01 ? String(+v.toPrecision(2)) : v.toExponential(0).replace("e-", "e−"));
let SMOOTH = 10;               // the charts draw the mean of the last info().smooth steps (a batch of 8 is noisy)
const KEYS = ["rewards/margins", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "logps/chosen",
  "logps/rejected"];

/** The running mean over the last `w` values (fewer at the start), gaps for non-finite values. */
function smooth(ys, w = SMOOTH) {
  const out = [];
  let sum = 0;
  const win = [];
  for (const y of ys) {
    const v = Number.isFinite(y) ? y : 0;
    win.push(v);
    sum += v;
    if (win.length > w) sum -= win.shift();
    out.push(Number.isFinite(y) ? sum / win.length : null);
  }
  return out;
}

registerWidget("dpo", {
  title: "DPO: watch the reward margin climb",
  mount(root, api) {
    const {el, body} = api;
    const data = root.dataset;   // what tests read: exactly what Python returned

    const intro = el("p", {class: "w-note", text:
      "Press Train: DPO fine-tunes a small SFT model on preference pairs right here in your browser. The " +
      "reference is a frozen copy of the same model; the implicit reward of an answer is β × how much more " +
      "likely the policy makes it than the reference does."});
    const controls = el("div", {class: "w-controls"});
    const actions = el("div", {class: "w-actions"});
    const progress = el("span", {class: "w-progressline", role: "status"});
    body.append(intro, controls, actions);
    const diverged = api.ui.explanation(body);
    const diagnosis = el("div", {class: "w-diagnosis", hidden: true, role: "note"});
    const charts = el("div", {class: "w-charts"});
    const heldPanel = el("section", {class: "w-held", "aria-label": "Held-out replies, before and now"});
    body.append(diagnosis, charts, heldPanel);

    let info = null;
    let m = Object.fromEntries(KEYS.map((k) => [k, []]));
    let losses = [];
    let lastEval = null;
    let before = null;

    // ------------------------------------------------------------------ charts
    const last = (ys) => ys.filter((v) => Number.isFinite(v)).at(-1);
    const chartSpecs = [
      {key: "margin", title: "Implicit reward margin: β × (log-ratio of chosen − log-ratio of rejected)",
        series: [{label: "margin"}], cols: () => [m["rewards/margins"]],
        summary: ([xs, ys]) => (xs.length ? `After ${xs.length} steps the reward margin (mean of the last ` +
          `${SMOOTH} steps) is ${fmt(last(ys))}; it started at 0.` : "No training yet: the margin starts at 0.")},
      {key: "rewards", title: "Implicit rewards of the chosen and the rejected answers",
        series: [{label: "chosen"}, {label: "rejected"}], cols: () => [m["rewards/chosen"], m["rewards/rejected"]],
        summary: ([xs, c, r]) => (xs.length ? `After ${xs.length} steps the chosen answers' reward is ${fmt(last(c))} ` +
          `and the rejected answers' ${fmt(last(r))} (both start at 0).` : "No training yet: both rewards start at 0.")},
      {key: "accuracy", title: "Reward accuracy: share of pairs where chosen out-rewards rejected",
        series: [{label: "accuracy"}], cols: () => [m["rewards/accuracies"]],
        summary: ([xs, a]) => (xs.length ? `After ${xs.length} steps the implicit reward ranks the chosen answer ` +
          `first in ${pct(last(a))} of pairs.` : "No training yet.")},
      {key: "logps", title: "Log-probabilities (nats) of the chosen and the rejected answers under the policy",
        series: [{label: "chosen"}, {label: "rejected"}], cols: () => [m["logps/chosen"], m["logps/rejected"]],
        summary: ([xs, c, r]) => (xs.length ? `After ${xs.length} steps the chosen answers' log-probability is ` +
          `${fmt(last(c), 2)} (first step ${fmt(c[0], 2)}), the rejected ones' ${fmt(last(r), 2)} (first step ` +
          `${fmt(r[0], 2)}). If both fall while the margin rises, that is likelihood displacement.` :
          "No training yet.")},
    ];
    const drawn = {};
    for (const spec of chartSpecs) {
      api.lineChart(charts, {title: spec.title, xLabel: "step", height: 160, series: spec.series,
        summary: spec.summary}).then((c) => { drawn[spec.key] = c; drawCharts(); }).catch(() => {});
    }

    function drawCharts() {
      data.metrics = JSON.stringify(m);
      data.losses = JSON.stringify(losses);
      const xs = losses.map((_, i) => i + 1);
      for (const spec of chartSpecs) drawn[spec.key]?.update([xs, ...spec.cols().map((ys) => smooth(ys))]);
    }

    // ------------------------------------------------------------------ held-out replies
    const heldNote = el("p", {class: "w-note", text: "Loading the SFT model and building the preference pairs…"});
    const heldTable = el("table", {class: "w-replies"});
    const heldWrap = el("div", {class: "w-table-wrap"}, heldTable);
    heldPanel.append(el("h3", {text: "Held-out prompts, greedy replies"}), heldNote, heldWrap);

    function drawHeld() {
      if (!before) return;
      const now = lastEval?.after;
      const refusal = info?.refusal ?? "";
      const b = before;
      heldNote.textContent = `${b.n_unknown} people the world does not contain (the preferred reply is “${refusal}”) ` +
        `and ${b.n_known} known facts and sums (the unknown people appear in no training pair; some of the known questions do). The SFT model refuses ` +
        `${pct(b.refuses_unknown)} of the unknown people and answers ${pct(b.answers_known)} of the rest right` +
        (now ? `; after ${lastEval.step} steps: ${pct(now.refuses_unknown)} and ${pct(now.answers_known)}, ` +
          `drift from the reference (sampled KL) ${fmt(lastEval.kl, 2)} nats.` : ".");
      const mark = (r) => el("mark", {class: r.correct ? "w-right" : "w-wrong", text: r.reply || "(nothing)"});
      heldTable.replaceChildren(
        el("thead", {}, el("tr", {}, el("th", {scope: "col", text: "Prompt"}),
          el("th", {scope: "col", text: "Preferred"}), el("th", {scope: "col", text: "SFT model"}),
          el("th", {scope: "col", text: now ? `Step ${lastEval.step}` : "Now"}))),
        el("tbody", {}, ...b.rows.map((r, i) => el("tr", {"data-kind": r.kind},
          el("th", {scope: "row", text: r.prompt}), el("td", {text: r.preferred}), el("td", {}, mark(r)),
          el("td", {}, now ? mark(now.rows[i]) : "—")))));
    }

    function showDiagnosis(d) {
      data.diagnosis = d ? JSON.stringify(d) : "";
      if (!d || !d.symptoms.length) { diagnosis.hidden = true; diagnosis.replaceChildren(); return; }
      diagnosis.hidden = false;
      diagnosis.className = `w-diagnosis w-${d.status}`;
      const lead = {beta: "β is too small. ", lr: "The learning rate is too high. ", long: "Too many steps. ",
        displacement: "Likelihood displacement. "};
      diagnosis.replaceChildren(...d.symptoms.flatMap((s) => [
        el("p", {"data-kind": s.kind}, el("strong", {text: lead[s.kind] || ""}), s.what),
        el("p", {}, el("strong", {text: "Why: "}), s.why),
        el("p", {class: "w-try"}, el("strong", {text: "Try: "}), s.try)]));
    }

    // ------------------------------------------------------------------ training: the runtime's loop
    const infoReady = api.call("info");
    const loop = api.trainLoop({
      button: actions,
      runKnobs: ["beta", "lr", "steps"],
      start: async (k) => {
        const {checkpoint} = await infoReady;
        const path = "/data/" + checkpoint;
        const s = await api.call("start", {path, beta: k.beta, lr: k.lr, steps: k.steps},
          {files: {[path]: checkpoint}});
        return {...s, evalStep: 0};
      },
      step: async (s, n) => {
        if (s.step - s.evalStep >= info.eval_every && !(await evaluate(s, () => loop.running))) {
          return {status: "training", losses: [], step: s.step, steps: s.steps};
        }
        const r = await api.call("step", {session: s.session, n: Math.min(n, info.max_chunk)});
        s.step = r.step;
        return r;
      },
      close: (s) => api.call("close", {session: s.session}),
      onSession: (s) => {
        data.session = String(s.session);
        before = s.before;
        data.before = JSON.stringify(s.before);
        data.pairs = String(s.pairs);
        drawHeld();
        showProgress();
      },
      onChunk: (r, {stepsPerSecond}) => {
        if (!r.losses.length) return;
        losses.push(...r.losses);
        for (const k of KEYS) m[k].push(...r.metrics[k]);
        drawCharts();
        showProgress(` · ${stepsPerSecond.toFixed(1)} steps/s`);
      },
      onEnd: async (kind, r) => {
        if (kind === "diverged") {
          diverged.show(r.diverged);
          return `Training diverged at step ${r.diverged.step}. The explanation is below.`;
        }
        if (kind === "done" && await evaluate(loop.session)) {
          const a = lastEval.after;
          return `Training finished after ${r.step} steps: reward margin ${fmt(last(smooth(m["rewards/margins"])))}, ` +
            `refuses ${pct(a.refuses_unknown)} of the unknown people, drift ${fmt(lastEval.kl, 2)} nats.` +
            (lastEval.diagnosis.symptoms.length ? " Something went wrong: see the explanation." : "");
        }
        return undefined;
      },
      onClear: () => {
        data.session = "";
        losses = [];
        m = Object.fromEntries(KEYS.map((k) => [k, []]));
        lastEval = null;
        data.eval = "";
        data.evalStep = "";
        diverged.show(null);
        showDiagnosis(null);
        drawCharts();
        drawHeld();
        showProgress();
        if (info) loop.prepare().catch(pyOnly);      // the new knobs' untrained model, pairs already built
      },
    });
    actions.append(progress);

    function showProgress(extra = "") {
      const total = loop.session ? loop.session.steps : api.knobs.get().steps;
      const margins = smooth(m["rewards/margins"]);
      progress.textContent = losses.length
        ? `Step ${losses.length} of ${total} · loss ${fmt(losses.at(-1))} · margin ${fmt(margins.at(-1))}${extra}`
        : `Step 0 of ${total} · loss ln 2 = 0.693, margin 0`;
    }

    /** Evaluate session `s` (greedy replies, drift, diagnosis); false if the run was forgotten or stopped first. */
    async function evaluate(s, going = () => true) {
      if (loop.session !== s || !going()) return false;
      const r = await api.call("evaluate", {session: s.session});
      if (loop.session !== s) return false;
      s.evalStep = r.step;
      lastEval = r;
      data.eval = JSON.stringify({step: r.step, kl: r.kl, refuses_unknown: r.after.refuses_unknown,
        answers_known: r.after.answers_known, replies: r.after.rows.map((x) => x.reply)});
      data.evalStep = String(r.step);
      drawHeld();
      showDiagnosis(r.diagnosis);
      return true;
    }

    // ------------------------------------------------------------------ knobs and constants
    function build(r) {
      info = r;
      SMOOTH = r.smooth;
      data.info = "1";
      const ladder = (values, lesson) => values.map((v) => ({value: v,
        label: v === lesson ? `${fmtNum(v)} (default)` : fmtNum(v)}));
      api.ui.select(controls, {knob: "beta", label: "β", options: ladder(r.beta_ladder, r.lesson_beta),
        help: "How far the policy may move from the reference: with a small β the reward hardly holds it back."});
      api.ui.select(controls, {knob: "lr", label: "Learning rate", options: ladder(r.lr_ladder, r.lesson_lr),
        help: "Adam's step size."});
      api.ui.range(controls, {knob: "steps", label: "Training steps", min: r.steps_range[0],
        max: r.steps_range[1], step: r.steps_step, help: `Batches of ${r.batch_size} pairs, from ${r.n_pairs}.`});
      showProgress();
      loop.prepare().catch(pyOnly);     // build the pairs and the reference's replies while the reader reads
    }
    infoReady.then(build).catch(pyOnly);
    showProgress();
  },
});
