// Attention widget UI: the pretrained lesson model's attention weights on the reader's prompt, every layer and
// head. All numbers come from widgets/attention.py (the real forward of checkpoints/00_pretrain.npz, traced);
// this file only draws them: a thumbnail per head, and the chosen head large with the characters on both axes.
// Below them, the configuration that breaks training: a small model trained live with the causal mask off (or on),
// its training loss against the honest loss of the same weights (leak_* in widgets/attention.py).
import {registerWidget, STALE, chartColors} from "../runtime.js";

const pct = (x) => `${Math.round(100 * x)}%`;
const PATTERNS = [["previous", "previous char"], ["self", "itself"], ["word_start", "word start"], ["first", "first char"]];

function dominant(p) {
  return PATTERNS.reduce((best, [k, label]) => (p[k] > best.v ? {k, label, v: p[k]} : best), {v: -1});
}

/** Draw a (T, T) weight matrix into a canvas of css size `px`; with `labels`, characters along both axes. */
function heatmap(canvas, w, tokens, px, colors, labels) {
  const T = w.length;
  const margin = labels ? 16 : 0;
  const dpr = window.devicePixelRatio || 1;
  const size = px + margin;
  canvas.width = Math.round(size * dpr);
  canvas.height = Math.round(size * dpr);
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = colors.bg;
  g.fillRect(0, 0, size, size);
  const c = px / T;
  g.fillStyle = colors.accent;
  for (let q = 0; q < T; q++) {
    for (let k = 0; k <= q; k++) {
      const a = w[q][k];
      if (a <= 0) continue;
      g.globalAlpha = Math.min(1, Math.sqrt(a));     // sqrt: small weights stay visible
      g.fillRect(margin + k * c, margin + q * c, Math.max(c, 0.5), Math.max(c, 0.5));
    }
  }
  g.globalAlpha = 1;
  g.strokeStyle = colors.border;
  g.strokeRect(margin + 0.5, margin + 0.5, px - 1, px - 1);
  if (labels) {
    g.fillStyle = colors.fg;
    g.font = `${Math.min(11, Math.max(7, c * 0.9))}px ui-monospace, monospace`;
    g.textAlign = "center";
    g.textBaseline = "middle";
    tokens.forEach((t, i) => {
      g.fillText(t, margin + (i + 0.5) * c, margin / 2);   // keys along the top
      g.fillText(t, margin / 2, margin + (i + 0.5) * c);   // queries down the side
    });
  }
}

registerWidget("attention", {
  title: "What each attention head looks at",
  mount(root, api) {
    const {el, body} = api;
    body.classList.add("w-attention");
    let info = null;

    body.append(el("p", {class: "w-note", text:
      "The trained lesson model (checkpoints/00_pretrain.npz) reads your prompt as the start of a document. Each " +
      "square is one head's attention: row = the character asking (query), column = the character looked at " +
      "(key), darker = more weight. The empty upper triangle is the causal mask."}));

    // ------------------------------------------------------------------ controls
    const promptRow = el("div", {class: "w-prompt-row"});
    body.append(promptRow);
    const presetSelect = api.ui.select(promptRow, {
      label: "Prompt preset", options: [{value: null, label: "Custom"}],
      onChange: (p) => { if (p !== null) api.knobs.set({prompt: p}); },
    });
    const promptId = "w-attention-prompt-" + Math.random().toString(36).slice(2, 8);
    const promptInput = el("input", {type: "text", id: promptId, name: "prompt", spellcheck: "false",
      autocomplete: "off", autocapitalize: "off", maxlength: 200});
    promptRow.append(el("div", {class: "w-field w-field-text", "data-knob": "prompt"},
      el("label", {for: promptId, text: "Prompt (type your own)"}), promptInput));
    promptInput.addEventListener("input", api.debounce(() => api.knobs.set({prompt: promptInput.value}, {source: "typing"}), 250));

    // ------------------------------------------------------------------ outputs
    const grid = el("div", {class: "w-heads", role: "group", "aria-label": "Every layer's heads: choose one"});
    const big = el("figure", {class: "w-bigmap"});
    const bigCanvas = el("canvas", {"aria-hidden": "true"});
    const bigCaption = el("figcaption");
    big.append(bigCaption, el("div", {class: "w-bigmap-scroll"}, bigCanvas));
    const next = el("p", {class: "w-next"});
    const alt = el("div");
    body.append(grid, big, next, alt);

    let last = null;
    const colors = () => chartColors(root);

    function drawBig(r, k) {
      const L = r.weights.length, H = r.weights[0].length;
      const layer = Math.min(Math.max(0, k.layer | 0), L - 1), head = Math.min(Math.max(0, k.head | 0), H - 1);
      const w = r.weights[layer][head];
      const p = r.patterns[layer][head];
      const px = Math.max(200, Math.min(520, 12 * w.length));
      heatmap(bigCanvas, w, r.tokens, px, colors(), true);
      bigCaption.textContent = `Layer ${layer}, head ${head}. Mean weight on the previous character ${pct(p.previous)}, ` +
        `on itself ${pct(p.self)}, on its word's first character ${pct(p.word_start)}, on the document's first ` +
        `character ${pct(p.first)}.`;
      grid.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed",
        String(b.dataset.layer === String(layer) && b.dataset.head === String(head))));
    }

    function draw(r, k) {
      const c = colors();
      grid.replaceChildren(...r.weights.map((heads, l) => el("div", {class: "w-layer"},
        el("span", {class: "w-layer-label", text: `Layer ${l}`}),
        ...heads.map((w, h) => {
          const canvas = el("canvas", {"aria-hidden": "true"});
          heatmap(canvas, w, r.tokens, 72, c, false);
          const d = dominant(r.patterns[l][h]);
          const b = el("button", {type: "button", class: "w-head", "data-layer": l, "data-head": h,
            "aria-label": `layer ${l} head ${h}: most weight on ${d.label} (${pct(d.v)})`},
            canvas, el("span", {text: `H${h} · ${d.label}`}));
          b.addEventListener("click", () => api.knobs.set({layer: l, head: h}));
          return b;
        }))));
      drawBig(r, k);
      next.textContent = "Next character: " + r.next.map((n) => `${n.token} ${pct(n.p)}`).join(", ") +
        (r.truncated ? ` (the first ${r.truncated} characters were cut: the model reads at most ${r.model.block_size})` : "");
      api.textAlternative(alt, {
        summary: `${r.weights.length} layers of ${r.weights[0].length} heads on ${r.tokens.length} characters; ` +
          "per head, the mean attention weight on four positions.",
        caption: "Where each head looks",
        columns: ["head", "previous", "itself", "word start", "first"],
        rows: r.patterns.flatMap((heads, l) => heads.map((p, h) =>
          [`layer ${l} head ${h}`, pct(p.previous), pct(p.self), pct(p.word_start), pct(p.first)])),
      });
    }

    // ------------------------------------------------------------------ update loop
    const attend = api.latest("attend");
    async function update(k) {
      if (promptInput.value !== k.prompt && document.activeElement !== promptInput) promptInput.value = k.prompt;
      if (info) presetSelect.select.value = JSON.stringify(info.prompts.includes(k.prompt) ? k.prompt : null);
      if (last && last.prompt === k.prompt && last.r.ok) { drawBig(last.r, k); return; }   // a head click: no Python
      api.setStatus("busy");            // held from now until drawn, so "ready" never shows an empty widget
      await api.ready;
      let r;
      try {
        if (!info) {
          info = await api.call("info", {});
          presetSelect.setOptions([{value: null, label: "Custom"}, ...info.prompts.map((p) => ({value: p, label: p}))]);
          presetSelect.select.value = JSON.stringify(info.prompts.includes(k.prompt) ? k.prompt : null);
        }
        r = await attend({path: info.path, prompt: k.prompt}, {files: {[info.path]: info.checkpoint}});
      } catch (e) {
        root.dataset.result = JSON.stringify({ok: false, error: {type: e.type || e.name, message: e.message}});
        last = null;
        if (!e.restarted) api.setStatus("error", `${e.type || e.name}: ${e.message}`);
        return;
      }
      if (r === STALE) return;                    // a newer prompt's call is on its way
      root.dataset.result = JSON.stringify(r);    // exactly what Python returned: tests compare it natively
      if (!r.ok) {
        last = null;                              // the maps on screen no longer answer the prompt shown
        api.setStatus("error", `${r.problem.message}. ${r.problem.hint}`.trim());
        return;
      }
      last = {prompt: k.prompt, r};
      draw(r, k);
      api.setStatus("ready");
    }
    // ------------------------------------------------------------------ break it: train without the mask
    const leakBox = el("section", {class: "w-leak", "aria-label": "Train without the causal mask"});
    body.append(leakBox);
    leakBox.append(el("h3", {text: "Break it: train without the causal mask"}));
    const leakNote = el("p", {class: "w-note", text: "A small model (the lesson 02 widget's size) trains here from " +
      "scratch, with the causal mask off: every position can see the character it is asked to predict."});
    leakBox.append(leakNote);
    const leakControls = el("div", {class: "w-actions"});
    leakBox.append(leakControls);
    api.ui.select(leakControls, {knob: "mask", label: "Causal mask",
      options: [{value: "off", label: "off (broken)"}, {value: "on", label: "on (honest)"}]});
    let leakInfo = null;
    let steps = [], losses = [], honest = [];
    const chart = api.lineChart(leakBox, {title: "Loss while training (nats per character)", xLabel: "step",
      series: [{label: "training loss, as trained"}, {label: "validation loss, mask on (per chunk)"}, {label: "entropy floor"}],
      summary: (d) => {
        const n = d[0].length;
        if (!n) return "No training yet: press Train.";
        const lastHonest = [...d[2]].reverse().find((v) => v != null);
        return `After ${d[0][n - 1]} steps the training loss is ${d[1][n - 1].toFixed(3)} nats and the honest ` +
          `validation loss ${lastHonest?.toFixed(3)}; the text's entropy floor is ${d[3][0].toFixed(3)}.`;
      }});
    const leakVerdict = el("p", {class: "w-leak-verdict", "aria-live": "polite"});
    leakBox.append(leakVerdict);
    const drawLeak = async () => {
      const floor = leakInfo ? leakInfo.floor : null;
      (await chart).update([steps, losses, honest, steps.map(() => floor)]);
    };
    let lastText = 0;
    const leakLoop = api.trainLoop({
      button: leakControls,
      runKnobs: ["mask"],
      start: async (k) => {
        if (!leakInfo) leakInfo = await api.call("leak_info", {});
        return api.call("leak_start", {mask: k.mask, steps: leakInfo.steps});
      },
      step: (sess, n) => {
        const want = performance.now() - lastText > 3000;
        if (want) lastText = performance.now();
        return api.call("leak_step", {session: sess.session, n: Math.min(n, leakInfo?.max_chunk ?? n), complete_text: want});
      },
      close: (sess) => api.call("leak_close", {session: sess.session}),
      onChunk: (r) => {
        const first = r.step - r.losses.length + 1;
        // the honest loss is measured once per chunk, at its end: drawn level across the chunk's steps
        r.losses.forEach((l, i) => { steps.push(first + i); losses.push(l); honest.push(r.honest_loss); });
        drawLeak();
        const floor = leakInfo.floor;
        leakVerdict.textContent = `Step ${r.step} of ${r.steps}: validation loss as trained ${r.as_trained_loss.toFixed(3)} ` +
          `nats, honest (mask on) ${r.honest_loss.toFixed(3)}; the floor no honest model can beat is ${floor.toFixed(3)}.` +
          (r.continuation != null ? ` Greedy continuation of "${leakInfo.prompt}": "${r.continuation}".` : "") +
          (r.mask === "off" && r.as_trained_loss < floor ? " The loss is below the floor: the model is reading the answer." : "");
        root.dataset.leak = JSON.stringify(r);
      },
      onClear: () => { steps = []; losses = []; honest = []; leakVerdict.textContent = ""; drawLeak(); },
    });

    api.knobs.on((k) => update(k));
    api.onRestart(() => { last = null; });
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { if (last) draw(last.r, api.knobs.get()); });
    update(api.knobs.get());
  },
});
