// GRPO widget UI: sample one group of K rollouts from the current policy and see each reply's verifier score,
// length, advantage and the weight each of TRL's loss types gives its tokens (all four computed by Python in one
// call: the toggle only chooses which to show); then train GRPO live (the runtime's api.trainLoop) and watch the
// mean reward, the KL to the reference and the share of zero-spread groups beside p^K + (1−p)^K. A configuration
// that cannot learn comes back from Python named and explained. Every number comes from widgets/grpo.py; this
// file only draws and sends knobs.
import {PyError, STALE, registerWidget} from "../runtime.js";

const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };
const pct = (p) => `${Math.round(100 * p)}%`;
const fmt = (v, d = 3) => (Number.isFinite(v) ? v.toFixed(d).replace("-", "−") : "—");
const fmtNum = (v) => (v === 0 ? "0" : v >= 0.01 ? String(+v.toPrecision(2)) : v.toExponential(0).replace("e-", "e−"));
const LOSS_WORDS = {
  grpo: "grpo: mean over each reply's tokens, then over replies: a short reply's tokens weigh more each.",
  bnpo: "bnpo: sum over all tokens ÷ their number in the batch: every token the same weight.",
  dr_grpo: "dr_grpo: sum ÷ (replies × max completion length): every token the same weight, a constant.",
  dapo: "dapo: sum ÷ the tokens of the whole accumulated batch: every token the same weight (here one batch, " +
    "so it equals bnpo).",
};
const KIND_LEAD = {k1: "K = 1: a group of one. ", temperature: "The temperature is too low. ",
  impossible: "The problems are too hard. ", trivial: "The problems are too easy. ",
  lr: "The learning rate is too high. ", spread: "Most groups teach nothing. "};

registerWidget("grpo", {
  title: "GRPO: a group, its advantages, and live training",
  mount(root, api) {
    const {el, body} = api;
    const data = root.dataset;   // what tests read: exactly what Python returned

    // One state object; draw() renders all of it.
    const state = {info: null, group: null, groupCalls: 0, seed: 0, pending: false,
      losses: [], metrics: {}, smooth: {}, diagnosis: null, session: null};

    // ------------------------------------------------------------------ layout
    const intro = el("p", {class: "w-note", text:
      "GRPO samples K replies to the same problem, scores each with a verifier (1 if its last number is the " +
      "sum, else 0) and uses the group's mean as the baseline: a reply's advantage is how much better than its " +
      "group it did."});
    const groupPanel = el("section", {class: "w-group", "aria-label": "One group of rollouts"});
    const groupControls = el("div", {class: "w-controls"});
    const groupActions = el("div", {class: "w-actions"});
    const lossToggle = el("fieldset", {class: "w-loss-toggle"},
      el("legend", {text: "Loss type: the weight of each token"}));
    const lossNote = el("p", {class: "w-note w-loss-note"});
    const groupHead = el("p", {class: "w-group-head", role: "status"});
    const groupTable = el("table", {class: "w-rollouts"});
    const groupExplain = el("p", {class: "w-note w-group-explain"});
    groupPanel.append(el("h3", {text: "One group"}), groupControls, groupActions, groupHead,
      el("div", {class: "w-table-wrap"}, groupTable), groupExplain, lossToggle, lossNote);

    const trainPanel = el("section", {class: "w-trainpanel", "aria-label": "Live training"});
    const trainControls = el("div", {class: "w-controls"});
    const setNote = el("p", {class: "w-note w-set-note"});
    const actions = el("div", {class: "w-actions"});
    const progress = el("span", {class: "w-progressline", role: "status"});
    const diagnosis = el("div", {class: "w-diagnosis", hidden: true, role: "note"});
    const charts = el("div", {class: "w-charts"});
    trainPanel.append(el("h3", {text: "Train with GRPO"}), trainControls, setNote, actions);
    body.append(intro, groupPanel, trainPanel);
    const diverged = api.ui.explanation(trainPanel);
    trainPanel.append(diagnosis, charts);

    // ------------------------------------------------------------------ charts
    const last = (ys) => (ys || []).filter((v) => Number.isFinite(v)).at(-1);
    const S = () => state.info?.smooth ?? 10;
    const chartSpecs = [
      {key: "reward", title: "Mean reward: share of rollouts the verifier marked right",
        series: [{label: "each step"}, {label: "mean of last steps"}],
        cols: () => [state.metrics.reward || [], state.smooth.reward || []],
        summary: ([xs, r, s]) => (xs.length ? `After ${xs.length} steps the mean reward (mean of the last ${S()} ` +
          `steps) is ${fmt(last(s), 2)}; over the first steps it was ${fmt(s[0], 2)}.` :
          "No training yet: the reward is the share of right replies at each step.")},
      {key: "kl", title: "KL from the policy to the frozen reference (nats per token)",
        series: [{label: "KL"}], cols: () => [state.smooth.kl || []],
        summary: ([xs, k]) => (xs.length ? `After ${xs.length} steps the KL to the reference (mean of the last ` +
          `${S()} steps) is ${fmt(last(k), 3)} nats per token; it starts at 0.` : "No training yet: the KL starts at 0.")},
      {key: "zero", title: "Share of groups with zero spread (they teach nothing), and p^K + (1−p)^K",
        series: [{label: "measured"}, {label: "p^K + (1−p)^K"}],
        cols: () => [state.smooth.frac_reward_zero_std || [], state.smooth.frac_reward_zero_std_if_equal || []],
        summary: ([xs, z, e]) => (xs.length ? `After ${xs.length} steps ${pct(last(z))} of the groups had zero ` +
          `spread (mean of the last ${S()} steps); if every problem had the batch's pass rate p it would be ` +
          `${pct(last(e))}.` : "No training yet.")},
    ];
    const drawn = {};
    for (const spec of chartSpecs) {
      api.lineChart(charts, {title: spec.title, xLabel: "step", height: 160, series: spec.series,
        summary: spec.summary}).then((c) => { drawn[spec.key] = c; draw(); }).catch(() => {});
    }

    // ------------------------------------------------------------------ the one draw function
    function draw() {
      data.groupCalls = String(state.groupCalls);
      data.lossType = api.knobs.get().loss_type;
      drawGroup();
      data.metrics = JSON.stringify(state.metrics);
      data.losses = JSON.stringify(state.losses);
      const xs = state.losses.map((_, i) => i + 1);
      for (const spec of chartSpecs) drawn[spec.key]?.update([xs, ...spec.cols()]);
      drawDiagnosis();
      drawProgress();
      const set = state.info?.problem_sets.find((p) => p.value === api.knobs.get().problems);
      setNote.textContent = set ? set.note + (state.info ? ` Each step samples ` +
        `${state.info.prompts_per_step[String(api.knobs.get().K)]} problems × K rollouts.` : "") : "";
    }

    function drawGroup() {
      const g = state.group;
      const lt = api.knobs.get().loss_type;
      lossNote.textContent = LOSS_WORDS[lt] || "";
      for (const input of lossToggle.querySelectorAll("input")) input.checked = JSON.parse(input.value) === lt;
      if (!g) {
        groupHead.textContent = state.info ? "Sampling a group…" : "Loading the CoT model…";
        groupTable.replaceChildren();
        groupExplain.textContent = "";
        return;
      }
      data.group = JSON.stringify(g);
      const w = g.weights[lt];
      const who = g.from === "policy" ? `the policy after ${g.step} training steps` : "the CoT checkpoint (untrained)";
      groupHead.textContent = `${g.question} — the answer is ${g.answer} (the trace the model learned: “${g.trace}”). ` +
        `${g.K} rollouts from ${who} at temperature ${g.temperature}: ${pct(g.pass_rate)} right.`;
      groupExplain.textContent = g.explain;
      const head = ["#", "Reply", "Verifier", "Tokens", "Advantage", `β × KL`, "Weight per token", "Total weight", ""];
      groupTable.replaceChildren(
        el("caption", {class: "visually-hidden", text: `The ${g.K} rollouts, weighted as ${lt}`}),
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {scope: "col", text: h})))),
        el("tbody", {}, ...g.rows.map((r, i) => el("tr", {class: r.reward > 0 ? "w-right" : "w-wrong"},
          el("th", {scope: "row", text: String(i + 1)}),
          el("td", {class: "w-reply", text: (r.reply || "(nothing)") + (r.ended ? "" : " … (cut off)")}),
          el("td", {class: "w-score", text: r.reward > 0 ? "✓ 1" : "✗ 0",
            "aria-label": r.reward > 0 ? "right, reward 1" : "wrong, reward 0"}),
          el("td", {class: "num", text: String(r.tokens)}),
          el("td", {class: "num", text: fmt(r.advantage, 2)}),
          el("td", {class: "num", text: fmt(r.beta_kl, 3)}),
          el("td", {class: "num", text: fmt(w.per_token[i], 4)}),
          el("td", {class: "num", text: fmt(w.total[i], 3)}),
          el("td", {class: "w-barcell", "aria-hidden": "true"},
            el("span", {class: "w-bar-fill", style: `width: ${(100 * w.bar[i]).toFixed(1)}%`}))))),
      );
    }

    function drawDiagnosis() {
      const d = state.diagnosis;
      data.diagnosis = d ? JSON.stringify(d) : "";
      if (!d || !d.symptoms.length) { diagnosis.hidden = true; diagnosis.replaceChildren(); return; }
      diagnosis.hidden = false;
      diagnosis.className = `w-diagnosis w-${d.status}`;
      diagnosis.replaceChildren(...d.symptoms.flatMap((s) => [
        el("p", {"data-kind": s.kind}, el("strong", {text: KIND_LEAD[s.kind] || ""}), s.what),
        el("p", {}, el("strong", {text: "Why: "}), s.why),
        el("p", {class: "w-try"}, el("strong", {text: "Try: "}), s.try)]));
    }

    function drawProgress(extra = "") {
      const total = loop?.session ? loop.session.steps : api.knobs.get().steps;
      const r = last(state.smooth.reward);
      progress.textContent = state.losses.length
        ? `Step ${state.losses.length} of ${total} · reward ${fmt(r, 2)} · KL ${fmt(last(state.smooth.kl), 3)}${extra}`
        : `Step 0 of ${total}`;
    }

    // ------------------------------------------------------------------ one group: Python samples, JS shows
    const infoReady = api.call("info");
    const groupCall = api.latest("group");
    async function sample({problem} = {}) {
      const {checkpoint} = await infoReady;
      const k = api.knobs.get();
      const path = "/data/" + checkpoint;
      const args = {path, problem: problem ?? k.problem, n: k.n, K: k.K, temperature: k.temperature,
        beta: k.beta, seed: state.seed};
      if (loop.session) args.session = loop.session.session;
      const r = await groupCall(args, {files: {[path]: checkpoint}});
      if (r === STALE) return;
      state.group = r;
      state.groupCalls++;
      draw();
    }
    const resample = (opts) => sample(opts).catch(pyOnly);

    // ------------------------------------------------------------------ training: the runtime's loop
    const loop = api.trainLoop({
      button: actions,
      runKnobs: ["K", "temperature", "beta", "loss_type", "lr", "steps", "problems"],
      start: async (k) => {
        const {checkpoint} = await infoReady;
        const path = "/data/" + checkpoint;
        return api.call("start", {path, K: k.K, temperature: k.temperature, beta: k.beta, loss_type: k.loss_type,
          lr: k.lr, steps: k.steps, problems: k.problems}, {files: {[path]: checkpoint}});
      },
      step: async (s, n) => {
        const r = await api.call("step", {session: s.session, n: Math.min(n, state.info.max_chunk)});
        s.step = r.step;
        return r;
      },
      close: (s) => api.call("close", {session: s.session}),
      onSession: (s) => { data.session = String(s.session); draw(); },
      onChunk: (r, {stepsPerSecond}) => {
        if (!r.losses.length) return;
        state.losses.push(...r.losses);
        for (const [k, v] of Object.entries(r.metrics)) (state.metrics[k] ||= []).push(...v);
        for (const [k, v] of Object.entries(r.smooth)) (state.smooth[k] ||= []).push(...v);
        state.diagnosis = r.diagnosis;
        draw();
        drawProgress(` · ${stepsPerSecond.toFixed(1)} steps/s`);
      },
      onEnd: (kind, r) => {
        if (kind === "diverged") {
          diverged.show(r.diverged);
          return `Training diverged at step ${r.diverged.step}. The explanation is below.`;
        }
        if (kind === "done") {
          const d = state.diagnosis;
          return `Training finished after ${r.step} steps: mean reward ${fmt(last(state.smooth.reward), 2)}.` +
            (d?.symptoms.length ? " Something stopped it learning: see the explanation." : "");
        }
        return undefined;
      },
      onClear: () => {
        data.session = "";
        state.losses = [];
        state.metrics = {};
        state.smooth = {};
        state.diagnosis = null;
        diverged.show(null);
        draw();
      },
    });
    actions.append(progress);

    // ------------------------------------------------------------------ knobs and constants
    function build(r) {
      state.info = r;
      data.info = "1";
      const ladder = (values, lesson, f = fmtNum) => values.map((v) => ({value: v,
        label: v === lesson ? `${f(v)} (default)` : f(v)}));
      const L = r.lesson;
      // the group's knobs
      api.ui.text(groupControls, {knob: "problem", label: "Problem (type one, e.g. 12+5+30=?, or leave empty)",
        maxlength: 60});
      const n = api.ui.range(groupControls, {knob: "n", label: "Summands of a random problem",
        help: "Used when the problem is empty."});
      n.setRange({min: r.summands_range[0], max: r.summands_range[1], step: 1});
      api.ui.select(groupControls, {knob: "K", label: "K (rollouts per problem)",
        options: r.k_options.map((k) => ({value: k, label: k === L.K ? `${k} (default)` : String(k)}))});
      api.ui.select(groupControls, {knob: "temperature", label: "Temperature",
        options: ladder(r.temperature_ladder, L.temperature, String)});
      api.ui.select(groupControls, {knob: "beta", label: "β (weight of the KL to the reference)",
        options: ladder(r.beta_ladder, L.beta)});
      api.ui.button(groupActions, {label: "New problem", kind: "w-primary w-new", onClick: () => {
        state.seed++;
        if (api.knobs.get().problem) api.knobs.set({problem: ""});   // the knob change samples
        else resample();
      }});
      api.ui.button(groupActions, {label: "Sample this problem again", kind: "w-again", onClick: () => {
        state.seed++;
        resample({problem: state.group?.question ?? undefined});
      }});
      const radios = `w-grpo-lt-${Math.random().toString(36).slice(2, 9)}`;   // one name per widget on a page
      for (const lt of r.loss_types) {
        const id = `${radios}-${lt}`;
        const input = el("input", {type: "radio", name: radios, id, value: JSON.stringify(lt)});
        input.addEventListener("change", () => { if (input.checked) api.knobs.set({loss_type: lt}); });
        lossToggle.append(el("label", {for: id, class: "w-loss-option"}, input, ` ${lt}`));
      }
      // the run's knobs
      api.ui.select(trainControls, {knob: "problems", label: "Problem set",
        options: r.problem_sets.map((p) => ({value: p.value, label: p.label}))});
      api.ui.select(trainControls, {knob: "lr", label: "Learning rate", options: ladder(r.lr_ladder, L.lr)});
      api.ui.range(trainControls, {knob: "steps", label: "Training steps", min: r.steps_range[0],
        max: r.steps_range[1], step: r.steps_step});
      draw();
      resample();
    }

    api.knobs.on((k, source) => {
      if (!state.info) return;
      draw();
      if (source === "restart" || source === "reset" || source === "hash") { state.group = null; resample(); return; }
      const g = state.group;
      const changed = !g || g.K !== k.K || g.temperature !== k.temperature || g.beta !== k.beta ||
        (k.problem ? g.question !== k.problem.trim() || !g.typed : g.typed || g.summands.length !== k.n);
      if (changed) resample();                           // the loss type alone never resamples
    });
    api.onReset(() => { state.seed = 0; state.group = null; });
    infoReady.then(build).catch(pyOnly);
    draw();
  },
});
