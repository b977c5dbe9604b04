// Pretrain widget UI: train the small WIDGET model live, a few steps per call, and watch its next-character
// distribution for your prompt sharpen; or scrub through the full run's committed snapshots. Every number comes
// from widgets/pretrain.py (gpt_mini's train_step, forward, softmax); this file only draws and sends knobs.
import {PyError, registerWidget, STALE} from "../runtime.js";

// Python errors are already shown by the runtime; anything else is a bug in this file and must surface.
const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };

// Every constant (the learning-rate ladder, the sliders' ranges, the model's size, the divergence line) comes from
// widgets/pretrain.py info(); the Train / Stop / Reset loop is the runtime's (api.trainLoop).
const nearestRung = (ladder, v) => ladder.reduce((best, x, i) =>
  (Math.abs(Math.log(x / v)) < Math.abs(Math.log(ladder[best] / v)) ? i : best), 0);
const CONTINUATION_EVERY_MS = 2000;          // the greedy continuation costs ~16 forwards: not every chunk
const RESULTS = {path: "/data/results/00_pretrain.json", url: "results/00_pretrain.json"};

const fmtLr = (v) => (v >= 0.1 ? +v.toPrecision(2) : v.toExponential(1).replace("e-", "e−").replace(".0e", "e"));
const pct = (p) => (p >= 0.1 ? (100 * p).toFixed(0) : (100 * p).toFixed(1)) + "%";

registerWidget("pretrain", {
  title: "A char-level model learning what comes next",
  mount(root, api) {
    const {el, body} = api;        // body carries the class w-pretrain
    const data = root.dataset;      // what tests read: exactly what Python returned

    const intro = (size) => "Press Train: a small GPT (the same model.py" + size + ") learns from the toy world's " +
      "text right here in your browser. The bars are its probabilities for the character after your prompt.";
    const introNote = el("p", {class: "w-note", text: intro("")});
    body.append(introNote);

    // ------------------------------------------------------------------ controls
    const prompt = api.ui.prompt(body);         // presets (from info) + free text, bound to the "prompt" knob

    const controls = el("div", {class: "w-controls"});
    body.append(controls);
    // Learning rate: a log-scale slider (the input holds a rung of info's lr_ladder); the knob holds lr itself.
    let ladder = [];             // from info(): until then the slider is disabled
    const lrId = "w-pretrain-lr-" + Math.random().toString(36).slice(2, 8);
    const lrInput = el("input", {type: "range", id: lrId, name: "lr", min: 0, max: 0, step: 1, disabled: true,
      "aria-describedby": lrId + "-help"});
    const lrOut = el("output", {for: lrId, class: "w-value"});
    const lrHelp = el("span", {class: "w-help", id: lrId + "-help", text: "Adam's step size. Try the far right."});
    controls.append(el("div", {class: "w-field", "data-knob": "lr"},
      el("label", {for: lrId, text: "Learning rate (log scale)"}), lrInput, lrOut, lrHelp));
    lrInput.addEventListener("input", () => api.knobs.set({lr: ladder[Number(lrInput.value)]}));
    const showLr = (k) => {
      const v = Number(k.lr);
      if (Number.isFinite(v) && v > 0 && ladder.length) lrInput.value = String(nearestRung(ladder, v));
      lrOut.value = Number.isFinite(v) ? fmtLr(v) : String(k.lr);
      lrInput.setAttribute("aria-valuetext", `learning rate ${lrOut.value}`);
    };
    const stepsField = api.ui.range(controls, {knob: "steps", label: "Training steps",
      help: "The schedule (warmup, then cosine decay) spans these."});
    const seedField = api.ui.range(controls, {knob: "seed", label: "Seed", help: "Initial weights and batch order."});

    const actions = el("div", {class: "w-actions"});
    body.append(actions);
    // The shared loop: its Train / Stop / Resume button goes first in `actions`; `train` sets in motion below.
    const loop = api.trainLoop({
      button: actions,
      runKnobs: ["lr", "steps", "seed"],            // a new lr / steps / seed is a different run
      start: (k) => api.call("start", {lr: k.lr, steps: k.steps, seed: k.seed, prompt: k.prompt}),
      step: (s, n, k) => {
        wantText = performance.now() - lastContinuation > CONTINUATION_EVERY_MS;
        return api.call("step", {session: s.session, n: Math.min(n, info?.max_chunk ?? n), prompt: k.prompt,
                                 complete: wantText});
      },
      close: (s) => api.call("close", {session: s.session}),
      onSession: (r) => { useSession(r); showProgress(); },
      onChunk: (r, {stepsPerSecond}) => {
        losses.push(...r.losses);
        drawCurve();
        if (r.dist) { dist.draw(r.dist, wantText ? r.continuation : undefined); data.dist = JSON.stringify(r.dist); }
        if (wantText) lastContinuation = performance.now();
        stalledNote.hidden = !r.stalled;
        stalledNote.textContent = r.stalled || "";
        showProgress(` · ${stepsPerSecond.toFixed(1)} steps/s`);
      },
      onEnd: async (kind, r) => {
        if (kind === "diverged") {
          showDiverged(r.diverged);
          return `Training diverged at step ${r.diverged.step}: the loss rose above ` +
            `${info.diverge_above.toFixed(2)} nats. The explanation is below.`;
        }
        if (kind === "done") {
          const s = loop.session;
          const p = await api.call("probs", {session: s.session, prompt: api.knobs.get().prompt, complete: true});
          if (p && loop.session === s) dist.draw(p, p.continuation);
          return `Training finished: loss ${losses.at(-1).toFixed(3)} after ${losses.length} steps.`;
        }
        return undefined;            // stopped: the loop's own words
      },
      onClear: () => { losses = []; showDiverged(null); drawCurve(); },
    });
    const progressLine = el("span", {class: "w-progressline", role: "status"});
    actions.append(progressLine);

    // ------------------------------------------------------------------ outputs
    const diverged = api.ui.explanation(body);
    const stalledNote = el("p", {class: "w-note w-stalled", hidden: true});
    const panels = el("div", {class: "w-panels"});
    const distPanel = el("section", {class: "w-panel", "aria-label": "Next-character probabilities"});
    const lossPanel = el("section", {class: "w-panel", "aria-label": "Training loss"});
    panels.append(distPanel, lossPanel);
    body.append(stalledNote, panels);
    const dist = distributionView(distPanel, "w-livedist", "The training model's next character");

    let chart = null;
    const chartReady = api.lineChart(lossPanel, {
      title: "Training loss (nats per character)", xLabel: "step", height: 200,
      series: [{label: "train loss"}, {label: "unigram baseline", color: api.cssVar("--muted", "#888")}],
      summary: ([xs, ys]) => xs.length
        ? `Loss after ${xs.length} steps: ${ys.at(-1).toFixed(3)} (it started at ${ys[0].toFixed(3)}; the unigram ` +
          `baseline, which ignores context, is ${baselines.unigram.toFixed(3)}).`
        : "No training yet: press Train.",
    }).then((c) => { chart = c; drawCurve(); return c; });

    // ------------------------------------------------------------------ the full run's snapshots
    const snapBox = el("section", {class: "w-snap", "aria-label": "Snapshots of the full run"});
    body.append(snapBox);
    snapBox.append(el("h3", {text: "The full-size run, snapshot by snapshot"}));
    const snapNote = el("p", {class: "w-note", text: "Loading the full run's snapshots…"});
    snapBox.append(snapNote);
    const snapId = "w-pretrain-snap-" + Math.random().toString(36).slice(2, 8);
    const snapInput = el("input", {type: "range", id: snapId, name: "snapshot", min: 0, max: 0, step: 1, disabled: true});
    const snapOut = el("output", {for: snapId, class: "w-value", text: "—"});
    snapBox.append(el("div", {class: "w-field", "data-knob": "snapshot"},
      el("label", {for: snapId, text: "Snapshot (training step)"}), snapInput, snapOut));
    const snapDist = distributionView(snapBox, "w-snapdist", "That snapshot's next character");
    let snapList = [];
    snapInput.addEventListener("input", () => {
      const s = snapList[Number(snapInput.value)];
      if (s) api.knobs.set({snapshot: s.step});
    });

    // ------------------------------------------------------------------ state
    let info = null;             // widgets/pretrain.py info(): presets, ladder, ranges, model size, baselines
    let baselines = {uniform: NaN, unigram: NaN};
    let losses = [];
    let lastContinuation = 0;
    let wantText = false;        // the chunk in flight asked for the greedy continuation

    function drawCurve() {
      data.losses = JSON.stringify(losses);
      if (!chart) return;
      const xs = losses.map((_, i) => i + 1);
      chart.update([xs, losses.map((v) => (Number.isFinite(v) ? v : null)), xs.map(() => baselines.unigram)]);
    }

    function showProgress(extra = "") {
      const last = losses.at(-1);
      const total = loop.session ? loop.session.steps : api.knobs.get().steps;
      progressLine.textContent = losses.length
        ? `Step ${losses.length} of ${total} · loss ${Number.isFinite(last) ? last.toFixed(3) : String(last)}${extra}`
        : `Untrained (step 0 of ${total})${extra}`;
    }

    function showDiverged(d) {
      stalledNote.hidden = true;
      diverged.show(d);
      if (d) dist.stale(true, "No distribution: a diverged model's probabilities are meaningless.");
    }

    /** Adopt the untrained model a `start` call returned. */
    function useSession(r) {
      data.session = String(r.session);
      baselines = r.baselines;
      losses = [];
      lastContinuation = 0;
      showDiverged(null);
      drawCurve();
      dist.draw(r.dist);
      data.dist = JSON.stringify(r.dist);
    }

    // ------------------------------------------------------------------ prompt changes (no training needed)
    const probsLatest = api.latest("probs");
    async function refreshPrompt(k) {
      if (loop.running) return;            // the next chunk reads the new prompt anyway
      try {
        if (!loop.session) {
          await loop.prepare();            // a fresh untrained model (onSession draws it)
          return;
        }
        if (loop.state === "diverged") return;
        const r = await probsLatest({session: loop.session.session, prompt: k.prompt, complete: true});
        if (r === STALE) return;
        dist.draw(r, r.continuation);
        data.dist = JSON.stringify(r);
      } catch (e) { pyOnly(e); }
    }

    api.knobs.on((k) => {
      showLr(k);
      refreshPrompt(k);
      refreshSnapshot(k);
    });

    // ------------------------------------------------------------------ snapshots
    const snapLatest = api.latest("snapshot");   // only the newest scrub position is computed
    async function refreshSnapshot(k) {
      if (!snapList.length) return;
      let i = snapList.findIndex((s) => s.step === k.snapshot);
      if (i < 0) {
        // Nothing chosen yet: each snapshot is a whole checkpoint (~1.8 MB), so none is fetched until the reader
        // asks for one; the page's first widget is ready without it.
        snapInput.value = String(snapList.length - 1);
        snapOut.value = "—";
        snapInput.setAttribute("aria-valuetext", "no snapshot loaded yet: move the slider to load one");
        return;
      }
      const s = snapList[i];
      snapInput.value = String(i);
      snapOut.value = `step ${s.step}`;
      snapInput.setAttribute("aria-valuetext", `snapshot at step ${s.step} of ${snapList.at(-1).step}`);
      const path = `/data/checkpoints/${s.checkpoint}`;
      try {
        const r = await snapLatest({path, prompt: k.prompt}, {files: {[path]: `checkpoints/${s.checkpoint}`}});
        if (r === STALE) return;
        snapDist.draw(r.dist, r.continuation,
          `Step ${s.step}` + (s.val_loss != null ? `: validation loss ${s.val_loss.toFixed(3)}` : ""));
        data.snapshot = JSON.stringify(r);
      } catch (e) { pyOnly(e); }
    }

    async function loadSnapshots() {
      try {
        const r = await api.call("snapshots", {path: RESULTS.path}, {files: {[RESULTS.path]: RESULTS.url}});
        snapList = r.snapshots;
        const m = r.model || {};
        snapNote.textContent = `The lesson's own model (${m.n_layer} layers, ${m.n_embd} channels, ` +
          `${api.formatInt(r.params)} parameters) was trained natively for ${snapList.at(-1).step} steps; ` +
          `its checkpoints are part of this site. Drag through them: the same prompt, read by the model at each stage ` +
          `(each snapshot is fetched, about 1.8 MB, when you first move to it).`;
        snapInput.max = String(snapList.length - 1);
        snapInput.disabled = false;
        data.snapshots = JSON.stringify(snapList.map((s) => s.step));
        refreshSnapshot(api.knobs.get());
      } catch (e) {
        snapNote.textContent = "This build has no snapshots of the full run (results/00_pretrain.json is missing).";
        api.setStatus("ready");
      }
    }

    // ------------------------------------------------------------------ a distribution, drawn as labelled bars
    function distributionView(parent, cls, heading) {
      const h = el("h3", {text: heading});
      const problem = el("p", {class: "w-note w-bad-prompt", hidden: true});
      const list = el("ol", {class: `w-dist ${cls}`, "aria-hidden": "true"});   // the table below is the text version
      const greedy = el("p", {class: "w-greedy"});
      const wrap = el("div", {class: cls + "-wrap"}, h, problem, list, greedy);
      parent.append(wrap);
      let lastText = "";
      return {
        stale(on, message) {
          list.classList.toggle("w-stale", on);
          problem.hidden = !message;
          problem.textContent = message || "";
        },
        draw(d, continuation, caption) {
          if (!d) return;
          if (!d.ok) {
            this.stale(true, `${d.problem.message}. ${d.problem.hint}`);
            return;
          }
          this.stale(false);
          list.replaceChildren(...d.top.map((t) => el("li", {},
            el("span", {class: "w-char", title: t.name, text: t.label}),
            el("span", {class: "w-track"}, el("span", {class: "w-fill", style: `width:${(100 * t.p).toFixed(1)}%`})),
            el("span", {class: "w-p", text: pct(t.p)}))));
          if (continuation !== undefined) lastText = continuation ?? "";
          greedy.replaceChildren(
            el("span", {class: "visually-hidden", text: "Greedy continuation: "}),
            el("span", {class: "w-given", text: d.prompt}), el("mark", {text: lastText || "…"}));
          const top = d.top[0];
          api.textAlternative(wrap, {
            summary: `${caption ? caption + ". " : ""}After “${d.prompt}”, the most likely next character is ` +
              `${top.name} at ${pct(top.p)}; the top ${d.top.length} hold ${pct(d.top_mass)} of the probability ` +
              `(entropy ${d.entropy.toFixed(2)} nats).`,
            caption: `All ${d.top.length} probabilities`,
            columns: ["Character", "Probability"],
            rows: d.top.map((t) => [t.name, pct(t.p)]),
          });
        },
      };
    }

    // ------------------------------------------------------------------ start
    /** What info() says: the sliders' ranges, the texts that name sizes, the prompt presets. */
    function useInfo(r) {
      info = r;
      baselines = r.baselines;
      ladder = r.lr_ladder;
      lrInput.max = String(ladder.length - 1);
      lrInput.disabled = false;
      lrHelp.textContent = `Adam's step size: ${fmtLr(r.lr_range[0])} … ${fmtLr(r.lr_range[1])}. Try the far right.`;
      stepsField.setRange({min: r.steps_range[0], max: r.steps_range[1], step: r.steps_step});
      seedField.setRange({min: r.seed_range[0], max: r.seed_range[1], step: 1});
      introNote.textContent = intro(`, ${r.model.n_layer} layers, ${r.model.n_embd} channels`);
      prompt.setPresets(r.prompts);
      showLr(api.knobs.get());
    }

    const k0 = api.knobs.get();
    showLr(k0);
    showProgress();
    api.call("info").then(useInfo, () => {});
    refreshPrompt(k0);
    chartReady.catch(() => {});
    loadSnapshots();
  },
});
