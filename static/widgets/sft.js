// SFT widget UI: drag the loss-mask boundary over a real templated conversation, then fine-tune the small
// pretrained model live with that mask and watch what it learned (held-out accuracy, end-of-turn rate, replies)
// beside the correct mask's figures. Every number comes from widgets/sft.py; this file only draws and sends knobs.
// The Train / Stop / Reset loop is the runtime's (api.trainLoop); this widget adds a held-out evaluation every
// info().eval_every steps and once at the end.
import {PyError, registerWidget, STALE} from "../runtime.js";

const pyOnly = (e) => { if (!(e instanceof PyError)) throw e; };
const RESULTS = {path: "/data/results/01_sft.json", url: "results/01_sft.json"};
const pct = (p) => `${Math.round(100 * p)}%`;
const signed = (v) => (v > 0 ? `+${v}` : v < 0 ? `−${-v}` : "0");
const KIND_TEXT = {counted: "counts in the loss", ignored: "not counted", leaked: "prompt token counted (leak)",
  cut: "reply token not counted (cut)"};

registerWidget("sft", {
  title: "Drag the mask boundary",
  mount(root, api) {
    const {el, body} = api;
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
    const diagnosis = el("div", {class: "w-diagnosis", hidden: true, role: "note"});
    const panels = el("div", {class: "w-panels"});
    const lossPanel = el("section", {class: "w-panel", "aria-label": "Training loss"});
    const evalPanel = el("section", {class: "w-panel w-evals", "aria-label": "Held-out scores"});
    panels.append(evalPanel, lossPanel);
    body.append(controls, view, actions);
    const diverged = api.ui.explanation(body);     // Python's what / why / try for a run that blew up
    body.append(diagnosis, panels);

    let info = null;             // widgets/sft.py info(): masks, ranges, presets, eval_every, eval_chunk, max_chunk
    let reference = null;
    let losses = [];
    let lastEval = null;

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
          el("th", {scope: "col", text: reference
            ? `Correct mask, ${reference.steps} steps of ${reference.batch_size}, trained natively` : "Correct mask"}))),
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

    // ------------------------------------------------------------------ training: the runtime's loop
    const infoReady = api.call("info");        // start needs the checkpoint's path; Train may come first
    const progress = el("span", {class: "w-progressline", role: "status"});
    const loop = api.trainLoop({
      button: actions,
      runKnobs: ["mask", "shift", "lr", "steps", "seed"],       // a new mask / boundary / lr / length is a new run
      start: async (k) => {
        const {checkpoint} = await infoReady;
        const path = "/data/" + checkpoint;
        const s = await api.call("start", {path, mask: k.mask, shift: k.shift, lr: k.lr, steps: k.steps,
                                           seed: k.seed}, {files: {[path]: checkpoint}});
        return {...s, evalStep: 0};                   // s.step: where training is; evalStep: the last evaluation's
      },
      // An evaluation is due every eval_every steps, exactly (chunks stop there: the steps widgets/sft.py's thresholds
      // were measured at). It runs before the next chunk, a few short calls, and gives way to Stop or Reset between
      // them (the next chunk after Resume evaluates again).
      step: async (s, n) => {
        if (s.step - s.evalStep >= info.eval_every && !(await evaluate(s, () => loop.running))) {
          return {status: "training", losses: [], step: s.step, steps: s.steps};     // stopped mid-evaluation
        }
        const due = s.evalStep + info.eval_every - s.step;
        const r = await api.call("step", {session: s.session, n: Math.min(n, info.max_chunk, due)});
        s.step = r.step;
        return r;
      },
      close: (s) => api.call("close", {session: s.session}),
      onSession: (s) => { data.session = String(s.session); },
      onChunk: (r, {stepsPerSecond}) => {
        if (!r.losses.length) return;
        losses.push(...r.losses);
        drawCurve();
        progress.textContent = `Step ${r.step} of ${r.steps} · loss ${Number(losses.at(-1)).toFixed(3)} · ` +
          `${stepsPerSecond.toFixed(1)} steps/s`;
      },
      onEnd: async (kind, r) => {
        if (kind === "diverged") {
          diverged.show(r.diverged);
          return `Training diverged at step ${r.diverged.step}. The explanation is below.`;
        }
        if (kind === "done" && await evaluate(loop.session)) {
          return `Training finished after ${r.step} steps: accuracy ${pct(lastEval.metrics.accuracy)}, ` +
            `ends its turn ${pct(lastEval.metrics.ends_turn)}.`;
        }
        return undefined;                              // stopped: the loop's own words
      },
      onClear: () => {                                 // Reset, a run knob changed, or Python restarted
        losses = [];
        lastEval = null;
        data.metrics = "";
        data.evalStep = "";
        diverged.show(null);
        showDiagnosis(null);
        drawCurve();
        drawScores();
        evalNote.hidden = false;
        progress.textContent = "";
      },
    });
    actions.append(progress);

    /** Score session `s` on the eval slice, info.eval_chunk prompts per call; resolves to false (nothing shown) if
     *  the run was forgotten or `going()` turned false before the last call. */
    async function evaluate(s, going = () => true) {
      let r = null;
      for (let offset = 0; !r?.done; offset += info.eval_chunk) {
        if (loop.session !== s || !going()) return false;
        r = await api.call("evaluate", {session: s.session, offset, count: info.eval_chunk});
      }
      if (loop.session !== s) return false;
      s.evalStep = r.step;
      lastEval = r;
      data.metrics = JSON.stringify(r.metrics);
      data.evalStep = String(r.step);
      evalNote.hidden = true;
      drawScores();
      showDiagnosis(r.diagnosis);
      return true;
    }

    // ------------------------------------------------------------------ knobs and constants
    api.knobs.on((k) => refreshTokens(k));

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
      drawScores();
    }

    infoReady.then((r) => {
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
