// Pretrain widget UI: train the small WIDGET model live, a few steps per call, and watch its next-character
// distribution for your prompt sharpen; or scrub through the full run's committed snapshots. Every number comes
// from widgets/pretrain.py (gpt_mini's train_step, forward, softmax); this file only draws and sends knobs.
import {PyError, registerWidget, STALE} from "../runtime.js";

// Python errors are already shown by the runtime; anything else is a bug in this file and must surface.
const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };

// The learning-rate slider walks this log-spaced ladder of round values (within widgets/pretrain.py LR_RANGE):
// exact numbers in links and tests, the lesson's default on it, and the diverging end (≳ 0.5) within reach.
const LR_LADDER = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 2, 3];
const nearestRung = (v) => LR_LADDER.reduce((best, x, i) =>
  (Math.abs(Math.log(x / v)) < Math.abs(Math.log(LR_LADDER[best] / v)) ? i : best), 0);
const CHUNK_TARGET_MS = 300;                 // one call ≈ this long: Stop and knob changes act within it
const CHUNK_MAX = 20;
const CONTINUATION_EVERY_MS = 2000;          // the greedy continuation costs ~16 forwards: not every chunk
const RESULTS = {path: "/data/results/00_pretrain.json", url: "results/00_pretrain.json"};

const fmtLr = (v) => (v >= 0.1 ? +v.toPrecision(2) : v.toExponential(1).replace("e-", "e−").replace(".0e", "e"));
const pct = (p) => (p >= 0.1 ? (100 * p).toFixed(0) : (100 * p).toFixed(1)) + "%";

registerWidget("pretrain", {
  title: "A char-level model learning what comes next",
  mount(root, api) {
    const {el} = api;
    const body = api.body;
    body.classList.add("w-pretrain");
    const data = root.dataset;   // what tests read: exactly what Python returned

    body.append(el("p", {class: "w-note", text:
      "Press Train: a small GPT (the same model.py, 2 layers, 48 channels) learns from the toy world's text " +
      "right here in your browser. The bars are its probabilities for the character after your prompt."}));

    // ------------------------------------------------------------------ controls
    const promptRow = el("div", {class: "w-prompt-row"});
    body.append(promptRow);
    const presetSelect = api.ui.select(promptRow, {
      label: "Prompt preset", options: [{value: null, label: "Custom"}],
      onChange: (p) => { if (p !== null) api.knobs.set({prompt: p}); },
    });
    const promptId = "w-pretrain-prompt-" + Math.random().toString(36).slice(2, 8);
    const promptInput = el("input", {type: "text", id: promptId, name: "prompt", spellcheck: "false",
      autocomplete: "off", autocapitalize: "off", maxlength: 200});
    promptRow.append(el("div", {class: "w-field w-field-text", "data-knob": "prompt"},
      el("label", {for: promptId, text: "Prompt (type your own)"}), promptInput));
    promptInput.addEventListener("input", api.debounce(() => api.knobs.set({prompt: promptInput.value}, {source: "typing"}), 250));

    const controls = el("div", {class: "w-controls"});
    body.append(controls);
    // Learning rate: a log-scale slider (the input holds a rung of LR_LADDER); the knob holds lr itself.
    const lrId = "w-pretrain-lr-" + Math.random().toString(36).slice(2, 8);
    const lrInput = el("input", {type: "range", id: lrId, name: "lr", min: 0, max: LR_LADDER.length - 1,
      step: 1, "aria-describedby": lrId + "-help"});
    const lrOut = el("output", {for: lrId, class: "w-value"});
    controls.append(el("div", {class: "w-field", "data-knob": "lr"},
      el("label", {for: lrId, text: "Learning rate (log scale)"}), lrInput, lrOut,
      el("span", {class: "w-help", id: lrId + "-help", text: "Adam's step size: 1e−4 … 3. Try the far right."})));
    lrInput.addEventListener("input", () => api.knobs.set({lr: LR_LADDER[Number(lrInput.value)]}));
    const showLr = (k) => {
      const v = Number(k.lr);
      if (Number.isFinite(v) && v > 0) lrInput.value = String(nearestRung(v));
      lrOut.value = Number.isFinite(v) ? fmtLr(v) : String(k.lr);
      lrInput.setAttribute("aria-valuetext", `learning rate ${lrOut.value}`);
    };
    api.ui.range(controls, {knob: "steps", label: "Training steps", min: 50, max: 1000, step: 50,
      help: "The schedule (warmup, then cosine decay) spans these."});
    api.ui.range(controls, {knob: "seed", label: "Seed", min: 0, max: 9, step: 1,
      help: "Initial weights and batch order."});

    const actions = el("div", {class: "w-actions"});
    body.append(actions);
    const trainButton = api.ui.button(actions, {label: "Train", kind: "w-primary w-train", onClick: () => toggle()});
    const progressLine = el("span", {class: "w-progressline", role: "status"});
    actions.append(progressLine);

    // ------------------------------------------------------------------ outputs
    const divergedBox = el("div", {class: "w-diverged", hidden: true});
    const stalledNote = el("p", {class: "w-note w-stalled", hidden: true});
    const panels = el("div", {class: "w-panels"});
    const distPanel = el("section", {class: "w-panel", "aria-label": "Next-character probabilities"});
    const lossPanel = el("section", {class: "w-panel", "aria-label": "Training loss"});
    panels.append(distPanel, lossPanel);
    body.append(divergedBox, stalledNote, panels);
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
    let baselines = {uniform: NaN, unigram: NaN};
    let session = null;          // {id, lr, steps, seed}
    let losses = [];
    let trainStatus = "idle";    // idle | training | stopped | done | diverged
    let running = false;
    let chunk = 2;
    let lastContinuation = 0;
    let generation = 0;          // bumped by Reset / knob changes: a loop from an older generation stops

    function setTrainStatus(s) {
      trainStatus = s;
      data.train = s;
      trainButton.textContent = running ? "Stop" : (s === "stopped" ? "Resume" : "Train");
      trainButton.setAttribute("aria-pressed", String(running));
    }

    function drawCurve() {
      data.losses = JSON.stringify(losses);
      if (!chart) return;
      const xs = losses.map((_, i) => i + 1);
      chart.update([xs, losses.map((v) => (Number.isFinite(v) ? v : null)), xs.map(() => baselines.unigram)]);
    }

    function showProgress(extra = "") {
      const last = losses.at(-1);
      const total = session ? session.steps : api.knobs.get().steps;
      progressLine.textContent = losses.length
        ? `Step ${losses.length} of ${total} · loss ${Number.isFinite(last) ? last.toFixed(3) : String(last)}${extra}`
        : `Untrained (step 0 of ${total})${extra}`;
    }

    function showDiverged(d) {
      stalledNote.hidden = true;
      if (!d) { divergedBox.hidden = true; divergedBox.replaceChildren(); return; }
      divergedBox.hidden = false;
      divergedBox.replaceChildren(
        el("p", {}, el("strong", {text: "Training diverged. "}), d.what),
        el("p", {}, el("strong", {text: "Why: "}), d.why),
        el("p", {}, el("strong", {text: "Try: "}), d.try));
      dist.stale(true, "No distribution: a diverged model's probabilities are meaningless.");
    }

    // ------------------------------------------------------------------ training loop
    const sameRun = (k) => session && session.lr === k.lr && session.steps === k.steps && session.seed === k.seed;

    async function newSession(k) {
      useSession(await api.call("start", {lr: k.lr, steps: k.steps, seed: k.seed, prompt: k.prompt}), k);
    }

    /** Adopt the untrained model a `start` call returned for knobs k. */
    function useSession(r, k) {
      session = {id: r.session, lr: k.lr, steps: k.steps, seed: k.seed};
      data.session = String(r.session);
      baselines = r.baselines;
      losses = [];
      showDiverged(null);
      drawCurve();
      dist.draw(r.dist);
      data.dist = JSON.stringify(r.dist);
    }

    async function trainLoop() {
      const gen = ++generation;
      running = true;
      setTrainStatus("training");
      api.setStatus("busy");
      try {
        let k = api.knobs.get();
        if (!sameRun(k) || trainStatus === "done" || ["done", "diverged"].includes(data.runEnd)) {
          await newSession(k);
          data.runEnd = "";
          lastContinuation = 0;
        }
        const t0 = performance.now();
        const stepsBefore = losses.length;
        while (running && gen === generation) {
          k = api.knobs.get();
          const wantText = performance.now() - lastContinuation > CONTINUATION_EVERY_MS;
          const c0 = performance.now();
          const r = await api.call("step", {session: session.id, n: chunk, prompt: k.prompt, complete: wantText});
          const ms = performance.now() - c0;
          if (gen !== generation) return;            // Reset or a knob change superseded this run
          losses.push(...r.losses);
          drawCurve();
          if (r.dist) { dist.draw(r.dist, wantText ? r.continuation : undefined); data.dist = JSON.stringify(r.dist); }
          if (wantText) lastContinuation = performance.now();
          stalledNote.hidden = !r.stalled;
          stalledNote.textContent = r.stalled || "";
          // Adapt the chunk so one call takes ~CHUNK_TARGET_MS: responsive, without paying per-call overhead each step.
          if (r.losses.length) chunk = Math.max(1, Math.min(CHUNK_MAX, Math.round(chunk * CHUNK_TARGET_MS / ms) || 1));
          data.chunk = String(chunk);
          const rate = (losses.length - stepsBefore) / ((performance.now() - t0) / 1000);
          showProgress(` · ${rate.toFixed(1)} steps/s`);
          data.stepsPerSecond = rate.toFixed(2);
          if (r.status === "diverged") {
            data.runEnd = "diverged";
            showDiverged(r.diverged);
            running = false;
            setTrainStatus("diverged");
            api.setStatus("error", `Training diverged at step ${r.diverged.step}: the loss rose above ` +
              `${(baselines.uniform + 1).toFixed(2)} nats. The explanation is below.`);
            api.announce(`Training diverged at step ${r.diverged.step}.`);
            return;
          }
          if (r.status === "done") {
            data.runEnd = "done";
            running = false;
            const p = await api.call("probs", {session: session.id, prompt: api.knobs.get().prompt, complete: true});
            if (gen === generation && p) dist.draw(p, p.continuation);
            setTrainStatus("done");
            api.setStatus("ready");
            api.announce(`Training finished: loss ${losses.at(-1).toFixed(3)} after ${losses.length} steps.`);
            return;
          }
        }
        if (gen === generation) {
          setTrainStatus("stopped");
          api.setStatus("ready");
          api.announce(`Stopped at step ${losses.length}.`);
        }
      } catch (e) {
        // The runtime shows a Python error ("Type: message"); the loop just ends.
        running = false;
        setTrainStatus("idle");
        pyOnly(e);
      } finally {
        if (gen === generation) running = false;
        setTrainStatus(trainStatus);
      }
    }

    function stop() {
      running = false;   // the loop sees this after the chunk in flight
      setTrainStatus(trainStatus);
    }

    function toggle() {
      if (running) stop();
      else trainLoop();
    }

    // ------------------------------------------------------------------ prompt changes (no training needed)
    const probsLatest = api.latest("probs");
    const startLatest = api.latest("start");
    async function refreshPrompt(k, source) {
      syncPrompt(k, source);
      if (running) return;                 // the next chunk reads the new prompt anyway
      try {
        if (session) {
          if (data.runEnd === "diverged") return;
          const r = await probsLatest({session: session.id, prompt: k.prompt, complete: true});
          if (r === STALE) return;
          dist.draw(r, r.continuation);
          data.dist = JSON.stringify(r);
        } else {
          const gen = generation;
          const r = await startLatest({lr: k.lr, steps: k.steps, seed: k.seed, prompt: k.prompt});
          if (r === STALE || gen !== generation) return;
          useSession(r, k);
          showProgress();
        }
      } catch (e) { pyOnly(e); }
    }

    function syncPrompt(k, source) {
      // Typing already shows its own text (and may be ahead of the debounced knob): don't overwrite it.
      if (source !== "typing" && promptInput.value !== k.prompt) promptInput.value = k.prompt ?? "";
      const i = presets.indexOf(k.prompt);
      presetSelect.select.value = JSON.stringify(i >= 0 ? k.prompt : null);
    }

    // A new lr / steps / seed is a different run: stop, forget the model, show the new untrained one.
    function runKnobsChanged() {
      generation++;
      running = false;
      session = null;
      data.runEnd = "";
      losses = [];
      showDiverged(null);
      setTrainStatus("idle");
      api.setStatus("ready");
      drawCurve();
    }

    let presets = [];
    const runKey = (k) => JSON.stringify([k.lr, k.steps, k.seed]);
    let lastRunKnobs = null;
    api.knobs.on((k, source) => {
      showLr(k);
      const runKnobs = runKey(k);
      if (runKnobs !== lastRunKnobs) {
        lastRunKnobs = runKnobs;
        runKnobsChanged();
      }
      refreshPrompt(k, source);
      refreshSnapshot(k);
    });
    api.onReset(() => {
      generation++;
      running = false;
      if (session) api.call("close", {session: session.id}).catch(() => {});
      session = null;
      lastRunKnobs = null;   // the "reset" knob event then starts a fresh untrained model
    });

    // ------------------------------------------------------------------ snapshots
    const snapLatest = api.latest("snapshot");   // only the newest scrub position is computed
    async function refreshSnapshot(k) {
      if (!snapList.length) return;
      let i = snapList.findIndex((s) => s.step === k.snapshot);
      if (i < 0) i = snapList.length - 1;
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
          `its checkpoints are part of this site. Drag through them: the same prompt, read by the model at each stage.`;
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
            caption: "All ten probabilities",
            columns: ["Character", "Probability"],
            rows: d.top.map((t) => [t.name, pct(t.p)]),
          });
        },
      };
    }

    // ------------------------------------------------------------------ start
    const k0 = api.knobs.get();
    showLr(k0);
    setTrainStatus("idle");
    showProgress();
    api.call("info").then((r) => {
      presets = r.prompts;
      baselines = r.baselines;
      presetSelect.setOptions([{value: null, label: "Custom"}, ...presets.map((p) => ({value: p, label: `“${p}”`}))]);
      syncPrompt(api.knobs.get());
    }, () => {});
    lastRunKnobs = runKey(k0);
    refreshPrompt(k0);
    chartReady.catch(() => {});
    loadSnapshots();
  },
});
