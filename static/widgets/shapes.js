// Shapes widget UI: knobs in, the traced shapes and parameter counts out. All numbers come from
// widgets/shapes.py (the real forward, traced); this file only draws them.
import {registerWidget, STALE} from "../runtime.js";

const KNOBS = [
  // min 0 on purpose: a zero-sized dimension is one of the configurations that cannot run, and the widget explains it.
  {knob: "B", label: "B — batch (sequences)", min: 0, max: 512},
  {knob: "T", label: "T — sequence length", min: 0, max: 2048},
  {knob: "block_size", label: "block_size — longest T", min: 0, max: 2048},
  {knob: "n_embd", label: "d — n_embd (channels C)", min: 0, max: 2048},
  {knob: "n_head", label: "h — n_head (heads)", min: 0, max: 32},
  {knob: "n_layer", label: "L — n_layer (blocks)", min: 0, max: 48},
  {knob: "vocab_size", label: "V — vocab_size", min: 0, max: 65536},
];

const mb = (x) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x >= 0.01 ? x.toFixed(2) : x.toPrecision(2)) + " MB";
const tuple = (xs) => `(${xs.join(", ")})`;

registerWidget("shapes", {
  title: "Every shape in one forward pass",
  mount(root, api) {
    const {el, formatInt} = api;
    const body = api.body;
    body.classList.add("w-shapes");

    body.append(el("details", {class: "w-about"},
      el("summary", {text: "How these shapes are computed"}),
      el("p", {text:
        "Shapes don't depend on values (like jax.eval_shape). So the widget runs the real gpt_mini forward() " +
        "with a trace callback, on a batch of zero sequences, idx of shape (0, T), with every weight a zero-stride " +
        "view of a single number: no memory, no arithmetic, the same code. Each activation's leading 0 is then " +
        "reported as your B. Parameter counts come from param_shapes(config), the function that creates the real weights."})));

    // ------------------------------------------------------------------ controls
    const controls = el("div", {class: "w-controls"});
    body.append(controls);
    let presets = [];
    const presetSelect = api.ui.select(controls, {
      label: "Preset", options: [{value: null, label: "Custom"}],
      onChange: (i) => { if (i !== null && presets[i]) api.knobs.set(presets[i].knobs, {source: "preset"}); },
    });
    const fields = {};
    for (const spec of KNOBS) fields[spec.knob] = api.ui.range(controls, {...spec, format: (v) =>
      typeof v === "number" ? formatInt(v) : JSON.stringify(v)});

    const syncPreset = (knobs) => {
      const i = presets.findIndex((p) => Object.entries(p.knobs).every(([k, v]) => knobs[k] === v));
      presetSelect.select.value = JSON.stringify(i >= 0 ? i : null);
    };

    // ------------------------------------------------------------------ outputs
    const derived = el("p", {class: "w-derived"});
    const paramsBox = el("section", {class: "w-params", "aria-label": "Parameter count"});
    const shapesBox = el("section", {class: "w-shapes-table", "aria-label": "Intermediate shapes"});
    const timing = el("p", {class: "w-timing"});
    body.append(derived, paramsBox, shapesBox, timing);

    function drawParams(r) {
      const p = r.params;
      const rows = p.components.map((c) => el("tr", {},
        el("th", {scope: "row"}, c.label, el("span", {class: "w-what", text: c.what})),
        el("td", {class: "num", text: formatInt(c.count)}),
        el("td", {class: "w-barcell"},
          el("span", {class: `w-barfill w-${c.key}`, style: `width:${(100 * c.share).toFixed(1)}%`}),
          el("span", {class: "w-share", text: `${(100 * c.share).toFixed(1)}%`})),
        el("td", {class: "num w-mb", text: mb(c.mb_f32)})));
      paramsBox.replaceChildren(
        el("p", {class: "w-total"}, el("strong", {text: formatInt(p.total)}), " parameters = ",
          el("strong", {text: mb(p.mb_f32)}), " at float32 (4 bytes each)."),
        el("div", {class: "w-table-wrap"}, el("table", {class: "w-param-table"},
          el("caption", {text: "Parameters per component (the bar is its share of the total)"}),
          el("thead", {}, el("tr", {}, ["Component", "Parameters", "Share", "float32"].map((h) =>
            el("th", {scope: "col", text: h})))),
          el("tbody", {}, rows),
          el("tfoot", {}, el("tr", {}, el("th", {scope: "row", text: "Total"}),
            el("td", {class: "num", text: formatInt(p.total)}), el("td", {text: "100%"}),
            el("td", {class: "num w-mb", text: mb(p.mb_f32)}))))),
        el("details", {}, el("summary", {text: "Every parameter tensor (blocks 1…L−1 repeat block 0)"}),
          el("div", {class: "w-table-wrap"}, el("table", {},
            el("thead", {}, el("tr", {}, ["Name", "Shape", "Count"].map((h) => el("th", {scope: "col", text: h})))),
            el("tbody", {}, p.tensors.map((t) => el("tr", {},
              el("th", {scope: "row"}, el("code", {text: t.name})), el("td", {text: tuple(t.shape)}),
              el("td", {class: "num", text: formatInt(t.count) + (t.per_block ? ` ×${r.symbols.L}` : "")}))))))));
    }

    function drawShapes(r) {
      const s = r.symbols;
      const bodies = r.groups.map((g) => {
        const title = g.key === "block"
          ? `Block 0 — each of the L = ${g.repeat} blocks has exactly these shapes (×${g.repeat})`
          : g.title;
        return el("tbody", {"data-group": g.key},
          el("tr", {class: "w-group"}, el("th", {colspan: 5, scope: "colgroup", text: title})),
          g.rows.map((row) => el("tr", {"data-name": row.name},
            el("th", {scope: "row"}, el("code", {text: row.key})),
            el("td", {class: "w-shape", text: tuple(row.shape)}),
            el("td", {class: "w-sym", text: tuple(row.symbolic)}),
            el("td", {class: "num w-mb", title: row.dtype}, mb(row.mb),
              row.dtype !== "float32" ? el("span", {class: "w-dtype", text: ` ${row.dtype}`}) : null),
            el("td", {class: "w-meaning", text: row.meaning}))));
      });
      shapesBox.replaceChildren(el("div", {class: "w-table-wrap"}, el("table", {class: "w-shape-table"},
        el("caption", {text: `One forward pass: B = ${s.B}, T = ${s.T}, C = ${s.C}, nh = ${s.nh}, hs = ${s.hs}, ` +
          `V = ${formatInt(s.V)}`}),
        el("thead", {}, el("tr", {}, ["Tensor", "Shape", "Symbolic", "Memory", "What it is"].map((h) =>
          el("th", {scope: "col", text: h})))),
        bodies)));
    }

    // ------------------------------------------------------------------ update loop
    const compute = api.latest("compute");

    async function update(knobs, announce = true) {
      syncPreset(knobs);
      await api.ready;                 // time the update, not the boot
      const t0 = performance.now();
      let r;
      try {
        r = await compute(knobs);
      } catch (e) {
        // The runtime already shows "Type: message" and stays usable; record it for tests and the next try.
        root.dataset.result = JSON.stringify({ok: false, error: {type: e.type || e.name, message: e.message}});
        return;
      }
      if (r === STALE) return;
      for (const f of Object.values(fields)) f.row.classList.remove("w-bad");
      if (!r.ok) {
        for (const k of r.problem.knobs) fields[k]?.row.classList.add("w-bad");
        body.classList.add("w-broken");
        api.setStatus("error", `This configuration cannot run: ${r.problem.message}. ${r.problem.hint}`.trim());
      } else {
        body.classList.remove("w-broken");
        derived.textContent = `Head size hs = C / nh = ${r.symbols.C} / ${r.symbols.nh} = ${r.symbols.hs}; ` +
          `3C = ${r.symbols["3C"]}, 4C = ${r.symbols["4C"]}.`;
        drawParams(r);
        drawShapes(r);
        const ms = performance.now() - t0;
        timing.textContent = `Traced ${r.traced} tensors of the real forward in ${r.ms.toFixed(1)} ms of Python; ` +
          `updated in ${ms.toFixed(0)} ms.`;
        root.dataset.updateMs = ms.toFixed(1);
        api.setStatus("ready");
        if (announce) api.announce(`${formatInt(r.params.total)} parameters, ${mb(r.params.mb_f32)}; logits ${tuple(r.groups[2].rows.at(-1).shape)}.`);
      }
      root.dataset.result = JSON.stringify(r);   // exactly what Python returned: tests compare it natively
    }

    api.knobs.on((knobs) => update(knobs));
    update(api.knobs.get(), false);   // first result: the runtime announces "ready"
    api.call("presets").then((list) => {
      presets = list;
      presetSelect.setOptions([{value: null, label: "Custom"}, ...list.map((p, i) => ({value: i, label: p.name}))]);
      syncPreset(api.knobs.get());
    }, () => {});
  },
});
