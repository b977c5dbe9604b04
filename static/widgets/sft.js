// SFT widget UI: drag the loss-mask boundary over a real templated conversation, then fine-tune the small
// pretrained model live with that mask and watch what it learned (held-out accuracy, end-of-turn rate, replies)
// beside the correct mask's figures. Every number comes from widgets/sft.py; this file only draws and sends knobs.
//
// The chunked Train/Stop loop: static/runtime.js has no shared training-loop helper yet (checked at the time of
// writing), so the loop below is the minimal one: step chunks sized to ~CHUNK_TARGET_MS, an evaluation every
// `eval_every` steps, a generation counter so that Stop / Reset / knob changes take effect within one chunk.
import {PyError, registerWidget, STALE} from "../runtime.js";

const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };
const CHUNK_TARGET_MS = 300;
const RESULTS = {path: "/data/results/01_sft.json", url: "results/01_sft.json"};
const pct = (p) => `${Math.round(100 * p)}%`;
const signed = (v) => (v > 0 ? `+${v}` : v < 0 ? `−${-v}` : "0");
const KIND_TEXT = {counted: "counts in the loss", ignored: "not counted", leaked: "prompt token counted (leak)",
  cut: "reply token not counted (cut)"};

registerWidget("sft", {
  title: "Drag the mask boundary",
  mount(root, api) {
    const {el} = api;
    const body = api.body;
    body.classList.add("w-sft");
    const data = root.dataset;   // what tests read: exactly what Python returned

    body.append(el("p", {class: "w-note", text:
      "A training conversation in the chat template, one box per token. Coloured tokens are the ones the " +
      "fine-tuning loss counts. Move the boundary or switch the mask, then press Train to fine-tune a small " +
      "pretrained model with it, right here in your browser."}));

    const controls = el("div", {class: "w-controls"});
    const view = el("section", {class: "w-tokens-panel", "aria-label": "The conversation, token by token"});
    const effect = el("p", {class: "w-effect"});
    const legend = el("ul", {class: "w-legend", "aria-label": "Legend"},
      ...["counted", "ignored", "leaked", "cut"].map((k) =>
        el("li", {}, el("span", {class: `w-tok w-${k}`, "aria-hidden": "true", text: "a"}), KIND_TEXT[k])));
    const tokenList = el("div", {class: "w-tokens", "aria-hidden": "true"});
    view.append(legend, tokenList, effect);
    const actions = el("div", {class: "w-actions"});
    const diverged = el("div", {class: "w-diverged", hidden: true});
    const diagnosis = el("div", {class: "w-diagnosis", hidden: true, role: "note"});
    const panels = el("div", {class: "w-panels"});
    const lossPanel = el("section", {class: "w-panel", "aria-label": "Training loss"});
    const evalPanel = el("section", {class: "w-panel w-evals", "aria-label": "Held-out scores"});
    panels.append(evalPanel, lossPanel);
    body.append(controls, view, actions, diverged, diagnosis, panels);

    let info = null;
    let reference = null;
    let session = null;
    let losses = [];
    let lastEval = null;
    let running = false;
    let chunk = 2;
    let generation = 0;

    // ------------------------------------------------------------------ the token view
    const tokensLatest = api.latest("tokens");
    async function refreshTokens(k) {
      try {
        const r = await tokensLatest({conversation: k.conversation, mask: k.mask, shift: k.shift});
        if (r === STALE) return;
        drawTokens(r);
      } catch (e) { pyOnly(e); }
    }

    function drawTokens(r) {
      data.tokens = JSON.stringify(r);
      tokenList.replaceChildren(...r.tokens.map((t) => el("span", {
        class: `w-tok w-${t.kind} w-role-${t.role || "none"}` + (t.special ? " w-special" : ""),
        title: `${t.name}: ${KIND_TEXT[t.kind]}`, text: t.label})));
      effect.textContent = r.effect.text;
      effect.className = "w-effect" + (r.effect.kind ? " w-warn" : "");
      const counted = r.tokens.filter((t) => t.counts).map((t) => t.special ? `<|${t.label}|>` : t.text).join("");
      api.textAlternative(view, {
        summary: `${r.counted} of ${r.total} tokens count in the loss` +
          (r.leaked ? `, ${r.leaked} of them from the prompt` : "") +
          (r.cut ? `; ${r.cut} reply tokens are left out` : "") + `. Counted, in order: “${counted}”.`,
        caption: "Every token",
        columns: ["#", "Token", "Turn", "In the loss"],
        rows: r.tokens.map((t, i) => [String(i), t.special ? `<|${t.label}|>` : t.name, t.role || "", KIND_TEXT[t.kind]]),
      });
    }

    // ------------------------------------------------------------------ scores
    const scoreTable = el("table", {class: "w-scores"});
    const samples = el("ul", {class: "w-samples"});
    const evalNote = el("p", {class: "w-note", text: "Press Train: the model is scored on held-out questions as it learns."});
    evalPanel.append(el("h3", {text: "Held-out questions (greedy replies)"}), evalNote, scoreTable,
      el("h3", {text: "Sample replies"}), samples);
    const ROWS = [["accuracy", "exact answer"], ["ends_turn", "ends its turn"],
      ["asks_question", "writes a “?” or a user turn"], ["p_user_after_end", "p(<|user|> after its <|end|>)"],
      ["p_own_assistant", "p(<|assistant|> after the user's <|end|>)"]];

    function drawScores() {
      const m = lastEval?.metrics;
      const ref = reference?.after;
      scoreTable.replaceChildren(
        el("thead", {}, el("tr", {}, el("th", {scope: "col", text: "Measure"}),
          el("th", {scope: "col", text: lastEval ? `This mask, step ${lastEval.step}` : "This mask"}),
          el("th", {scope: "col", text: reference ? `Correct mask, ${reference.steps} steps` : "Correct mask"}))),
        el("tbody", {}, ...ROWS.map(([key, label]) => el("tr", {"data-metric": key},
          el("th", {scope: "row", text: label}),
          el("td", {text: m ? pct(m[key]) : "—"}),
          el("td", {text: ref && ref[key] !== undefined ? pct(ref[key]) : "—"})))));
      samples.replaceChildren(...(lastEval?.samples || []).map((s) => el("li", {},
        el("span", {class: "w-q", text: s.prompt}), " → ",
        el("mark", {class: s.correct ? "w-right" : "w-wrong", text: s.text || "(nothing)"}),
        el("span", {class: "w-end", text: s.ended ? " <|end|>" : " … (never ended)"}),
        s.correct ? "" : el("span", {class: "w-expected", text: ` (expected “${s.expected}”)`}))));
    }

    function showDiagnosis(d) {
      data.diagnosis = d ? JSON.stringify(d) : "";
      if (!d || d.status === "ok") { diagnosis.hidden = true; diagnosis.replaceChildren(); return; }
      diagnosis.hidden = false;
      diagnosis.className = `w-diagnosis w-${d.status}`;
      diagnosis.replaceChildren(
        el("p", {}, el("strong", {text: d.status === "broken" ? "This mask broke the chat model. " :
          "This mask is not the correct one. "}), d.effect.text),
        ...d.symptoms.map((s) => el("p", {}, el("strong", {text: "Measured: "}), s.text)),
        d.try ? el("p", {class: "w-try", text: d.try}) : "");
    }

    function showDiverged(d) {
      if (!d) { diverged.hidden = true; diverged.replaceChildren(); return; }
      diverged.hidden = false;
      diverged.replaceChildren(
        el("p", {}, el("strong", {text: "Training diverged. "}), d.what),
        el("p", {}, el("strong", {text: "Why: "}), d.why),
        el("p", {}, el("strong", {text: "Try: "}), d.try));
    }

    // ------------------------------------------------------------------ loss chart
    let chart = null;
    api.lineChart(lossPanel, {
      title: "Training loss on the counted tokens (nats)", xLabel: "step", height: 180,
      series: [{label: "train loss"}],
      summary: ([xs, ys]) => xs.length
        ? `Loss after ${xs.length} steps: ${ys.at(-1).toFixed(3)} (it started at ${ys[0].toFixed(3)}).`
        : "No training yet: press Train.",
    }).then((c) => { chart = c; drawCurve(); }).catch(() => {});

    function drawCurve() {
      data.losses = JSON.stringify(losses);
      if (chart) chart.update([losses.map((_, i) => i + 1), losses.map((v) => (Number.isFinite(v) ? v : null))]);
    }

    // ------------------------------------------------------------------ training
    const progress = el("span", {class: "w-progressline", role: "status"});
    let trainButton = null;

    function setTrain(s) {
      data.train = s;
      if (trainButton) {
        trainButton.textContent = running ? "Stop" : (s === "stopped" ? "Resume" : "Train");
        trainButton.setAttribute("aria-pressed", String(running));
      }
    }

    function forget() {
      generation++;
      running = false;
      if (session) api.call("close", {session: session.id}).catch(() => {});
      session = null;
      losses = [];
      lastEval = null;
      data.metrics = "";
      data.evalStep = "";
      showDiverged(null);
      showDiagnosis(null);
      drawCurve();
      drawScores();
      evalNote.hidden = false;
      progress.textContent = "";
      setTrain("idle");
    }

    async function evaluate(gen) {
      let r = null;
      for (let offset = 0; !r || !r.done; offset += info.eval_chunk) {
        r = await api.call("evaluate", {session: session.id, offset, count: info.eval_chunk});
        if (gen !== generation) return;
      }
      lastEval = r;
      session.evalStep = r.step;
      data.metrics = JSON.stringify(r.metrics);
      data.evalStep = String(r.step);
      evalNote.hidden = true;
      drawScores();
      showDiagnosis(r.diagnosis);
    }

    async function trainLoop() {
      if (session && session.ended) forget();
      const gen = ++generation;
      running = true;
      setTrain("training");
      api.setStatus("busy");
      try {
        const k = api.knobs.get();
        if (!session) {
          const path = "/data/" + info.checkpoint;
          const s = await api.call("start", {path, mask: k.mask, shift: k.shift, lr: k.lr, steps: k.steps, seed: k.seed},
            {files: {[path]: info.checkpoint}});
          if (gen !== generation) return;
          session = {id: s.session, steps: s.steps, evalStep: 0, ended: false};
          data.session = String(s.session);
        }
        const t0 = performance.now();
        const before = losses.length;
        while (running && gen === generation) {
          const c0 = performance.now();
          const r = await api.call("step", {session: session.id, n: chunk});
          const ms = performance.now() - c0;
          if (gen !== generation) return;
          losses.push(...r.losses);
          drawCurve();
          if (r.losses.length) chunk = Math.max(1, Math.min(info.max_chunk, Math.round(chunk * CHUNK_TARGET_MS / ms) || 1));
          const rate = (losses.length - before) / ((performance.now() - t0) / 1000);
          data.stepsPerSecond = rate.toFixed(2);
          progress.textContent = `Step ${r.step} of ${r.steps} · loss ${Number(losses.at(-1)).toFixed(3)} · ` +
            `${rate.toFixed(1)} steps/s`;
          if (r.status === "diverged") {
            session.ended = true;
            running = false;
            showDiverged(r.diverged);
            setTrain("diverged");
            api.setStatus("error", `Training diverged at step ${r.diverged.step}. The explanation is below.`);
            return;
          }
          if (r.step - session.evalStep >= info.eval_every || r.status === "done") await evaluate(gen);
          if (gen !== generation) return;
          if (r.status === "done") {
            session.ended = true;
            running = false;
            setTrain("done");
            api.setStatus("ready");
            api.announce(`Training finished after ${r.step} steps: accuracy ${pct(lastEval.metrics.accuracy)}, ` +
              `ends its turn ${pct(lastEval.metrics.ends_turn)}.`);
            return;
          }
        }
        if (gen === generation) {
          setTrain("stopped");
          api.setStatus("ready");
          api.announce(`Stopped at step ${losses.length}.`);
        }
      } catch (e) {
        running = false;
        setTrain("idle");
        pyOnly(e);
      }
    }

    // ------------------------------------------------------------------ knobs
    const runKey = (k) => JSON.stringify([k.mask, k.shift, k.lr, k.steps, k.seed]);
    let lastRun = runKey(api.knobs.get());
    api.knobs.on((k) => {
      refreshTokens(k);
      if (runKey(k) !== lastRun) {
        lastRun = runKey(k);
        forget();
        api.setStatus("ready");
      }
    });
    api.onReset(() => { forget(); lastRun = null; });

    function build(r) {
      info = r;
      data.info = "1";
      api.ui.select(controls, {knob: "conversation", label: "Conversation",
        options: r.presets.map((p) => ({value: p.value, label: p.label}))});
      api.ui.select(controls, {knob: "mask", label: "Mask", options: r.masks});
      api.ui.range(controls, {knob: "shift", label: "Mask boundary (shift)", min: r.shift_range[0],
        max: r.shift_range[1], step: 1, format: (v) => signed(Number(v)),
        help: "− leaks prompt tokens into the loss, + cuts the start of each reply."});
      api.ui.select(controls, {knob: "lr", label: "Learning rate",
        options: r.lr_ladder.map((v) => ({value: v, label: v === r.lesson_lr ? `${v} (default)` : String(v)}))});
      api.ui.range(controls, {knob: "steps", label: "Training steps", min: r.steps_range[0], max: r.steps_range[1],
        step: 50, help: `Batches of ${r.batch_size} conversations.`});
      trainButton = api.ui.button(actions, {label: "Train", kind: "w-primary w-train",
        onClick: () => { if (running) { running = false; generation++; setTrain("stopped"); api.setStatus("ready"); } else trainLoop(); }});
      actions.append(progress);
      setTrain("idle");
      drawScores();
    }

    api.call("info").then((r) => {
      build(r);
      refreshTokens(api.knobs.get());
      return api.call("reference", {path: RESULTS.path}, {files: {[RESULTS.path]: RESULTS.url}}).then((ref) => {
        reference = ref;
        data.reference = JSON.stringify(ref);
        drawScores();
      }, () => {
        data.reference = "missing";
        api.setStatus("ready");
      });
    }).catch(pyOnly);
  },
});
