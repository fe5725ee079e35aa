// cnnkit explorer: plain JavaScript, no build step. Talks to the JSON API documented in the README.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { model: null, input: null, layerMaps: {}, selected: null, observer: null, timing: {} };
window.cnnkit = state;                      // for the curious (and the browser tests)

// ---------------------------------------------------------------- helpers
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

async function api(path, options = {}) {
  const r = await fetch(path, options);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function decode(arr) {                       // {shape, data: base64 float32} → Float32Array
  const bin = atob(arr.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

const fmt = (v, d = 4) => (v === null || v === undefined) ? "pad" : (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)) ? v.toExponential(2) : v.toFixed(d);
const short = (v) => (v === null || v === undefined) ? "pad" : Math.abs(v) >= 999.5 ? v.toExponential(0) : (Math.abs(v) < 0.005 ? 0 : v).toFixed(2);
const human = (n) => n >= 1e9 ? (n / 1e9).toFixed(2) + " G" : n >= 1e6 ? (n / 1e6).toFixed(2) + " M" : n >= 1e3 ? (n / 1e3).toFixed(1) + " K" : String(n);

function diverging(v, scale) {               // blue (−) → white (0) → red (+), as CNN Explainer
  const t = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
  if (t >= 0) return [255 - 63 * t, 255 - 198 * t, 255 - 212 * t];
  const s = -t;
  return [255 - 209 * s, 255 - 155 * s, 255 - 72 * s];
}

// Draw an (h, w) map (or an RGB/grey picture) into a canvas scaled to `size` pixels on its longer side.
function drawMap(canvas, values, h, w, scale, opts = {}) {
  canvas.width = w; canvas.height = h;
  const cx = canvas.getContext("2d");
  const img = cx.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    let rgb;
    if (Number.isNaN(values[i])) rgb = [214, 218, 226];            // off the image (a patch at the border)
    else if (opts.rgb) rgb = [values[i] * 255, values[h * w + i] * 255, values[2 * h * w + i] * 255];
    else if (opts.grey) { const g = Math.max(0, Math.min(1, values[i])) * 255; rgb = [g, g, g]; }
    else if (opts.heat) { const t = scale > 0 ? Math.max(0, Math.min(1, values[i] / scale)) : 0; rgb = [255 * Math.min(1, 2 * t), 255 * Math.max(0, 2 * t - 1), 40 * (1 - t)]; }
    else rgb = diverging(values[i], scale);
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
  }
  cx.putImageData(img, 0, 0);
  if (opts.size) {
    const f = opts.size / Math.max(h, w);
    canvas.style.width = `${Math.round(w * f)}px`; canvas.style.height = `${Math.round(h * f)}px`;
  }
}

function message(text, where = "#message") {
  const m = $(where);
  if (!text) { m.hidden = true; m.textContent = ""; return; }
  m.textContent = text; m.hidden = false;
}

function kindOf(type) {
  if (/Conv/.test(type)) return "conv";
  if (/Pool/.test(type)) return "pool";
  if (/Linear/.test(type)) return "fc";
  if (/Norm/.test(type)) return "norm";
  return "act";
}

// ---------------------------------------------------------------- the model and the strip
async function loadModel() {
  const m = await api("/api/model");
  state.model = m;
  $("#title").textContent = m.title;
  const badge = $("#badge");
  badge.textContent = m.trained ? `trained on ${m.data || "its data"}` : "untrained";
  badge.className = "badge " + (m.trained ? "trained" : "untrained");
  $("#totals").textContent = `input ${m.input_volume} · ${m.layers.length} layers · ${m.total.params.toLocaleString()} parameters · ${human(m.total.macs)} MACs per image · ${m.classes.length} classes`;
  if (!m.trained) {
    const b = $("#banner");
    b.textContent = `This ${m.name} is untrained: its weights are random, so its predictions mean nothing. ` +
      "The shapes, numbers and arithmetic are real. Serve a run of `cnnkit train` to explore a trained network.";
    b.hidden = false;
  }
  const strip = $("#strip");
  strip.replaceChildren();
  const maxVol = Math.max(...m.layers.map((r) => r.activations || 1));
  strip.append(el("div", { class: "layer-box kind-input", title: "the input" },
    el("div", { class: "n", text: "input" }), el("div", { class: "t", text: m.digit ? "MNIST-style digit" : "image" }),
    el("div", { class: "vol", text: m.input_volume })));
  for (const r of m.layers) {
    const bar = el("div", { class: "bar" });
    bar.style.width = `${Math.max(6, 100 * Math.log1p(r.activations) / Math.log1p(maxVol))}%`;
    const box = el("div", { class: `layer-box kind-${kindOf(r.type)}`, dataset: { layer: r.name }, title: `${r.name}: click for its derivation; the bar: its output volume, log scale`, onclick: () => selectLayer(r.name) },
      el("div", { class: "n", text: r.name }), el("div", { class: "t", text: r.type + (r.kernel ? " " + r.kernel : "") }),
      el("div", { class: "vol", text: r.output_volume }),
      el("div", { class: "small", text: `${r.params.toLocaleString()} params` }),
      el("div", { class: "small muted", text: `${human(r.macs)} MACs` }), bar);
    strip.append(box);
  }
  const convs = m.layers.filter((r) => r.filters);
  for (const sel of [$("#filter-layer"), $("#patch-layer")]) {
    sel.replaceChildren(...(sel.id === "patch-layer" ? m.layers.filter((r) => r.output.length === 3) : convs)
      .map((r) => el("option", { value: r.name, text: `${r.name} (${r.output_volume})` })));
  }
  if (convs.length) showFilters(convs[0].name);
  const first = await loadSamples();
  if (first) await pickSample(first);        // a real example on the page from the start
}

async function selectLayer(name, openExplain = true) {
  const r = state.model.layers.find((x) => x.name === name);
  document.querySelectorAll(".layer-box").forEach((b) => b.classList.toggle("selected", b.dataset.layer === name));
  $("#inspect-title").textContent = `${r.name} · ${r.type}`;
  const info = $("#layer-info");
  info.dataset.layer = r.name; info.dataset.volume = r.output_volume; info.dataset.params = r.params;
  const parts = [["", `${r.input_volume} → ${r.output_volume}`], ["filter", r.kernel], ["params", r.params.toLocaleString()],
    ["MACs", r.macs.toLocaleString()], ["receptive field", r.receptive_field.length ? r.receptive_field.join("×") : ""]];
  info.replaceChildren(...parts.filter(([, v]) => v).map(([k, v]) =>
    el("span", { class: "kv" }, k ? el("span", { class: "muted", text: k + " " }) : null, el("span", { class: "mono", text: v }))));
  const ex = $("#explain");
  $("#explain-box").hidden = false; $("#explain-box").open = openExplain;
  if (openExplain) { $("#zoom-box").hidden = true; $("#derivation").replaceChildren(el("p", { class: "muted", text: "Click one of this layer's maps below, then any of its values." })); }
  $("#explain-name").textContent = name; ex.textContent = "…";
  try { ex.textContent = (await api(`/api/layers/${encodeURIComponent(name)}/explain`)).text; }
  catch (e) { ex.textContent = e.message; }
  const row = document.querySelector(`.layer-row[data-layer="${CSS.escape(name)}"]`);
  if (row && openExplain) row.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// ---------------------------------------------------------------- inputs: canvas, upload, samples
function setupCanvas() {
  const c = $("#draw"), cx = c.getContext("2d");
  const clear = () => { cx.fillStyle = "#fff"; cx.fillRect(0, 0, c.width, c.height); };
  clear();
  let drawing = false, last = null, timer = null;
  const pos = (e) => { const b = c.getBoundingClientRect(); return [(e.clientX - b.left) * c.width / b.width, (e.clientY - b.top) * c.height / b.height]; };
  c.addEventListener("pointerdown", (e) => { drawing = true; last = pos(e); c.setPointerCapture(e.pointerId); clearTimeout(timer); dot(last); });
  c.addEventListener("pointermove", (e) => { if (!drawing) return; const p = pos(e); line(last, p); last = p; });
  const end = () => { if (!drawing) return; drawing = false; clearTimeout(timer); timer = setTimeout(sendCanvas, 250); };
  c.addEventListener("pointerup", end); c.addEventListener("pointerleave", end);
  function line(a, b) { cx.strokeStyle = "#000"; cx.lineWidth = 20; cx.lineCap = "round"; cx.lineJoin = "round"; cx.beginPath(); cx.moveTo(...a); cx.lineTo(...b); cx.stroke(); }
  function dot(p) { cx.fillStyle = "#000"; cx.beginPath(); cx.arc(p[0], p[1], 10, 0, 2 * Math.PI); cx.fill(); }
  $("#clear").addEventListener("click", clear);
  $("#upload").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    const form = new FormData();
    form.append("image", f, f.name);
    await predict({ method: "POST", body: form }, `upload ${f.name}`);
    e.target.value = "";
  });
}

function sendCanvas() {
  $("#draw").toBlob((blob) => predict({ method: "POST", headers: { "Content-Type": "image/png" }, body: blob }, "drawing"), "image/png");
}

async function loadSamples() {
  const s = await api("/api/samples");
  const box = $("#samples");
  box.replaceChildren();
  if (!s.available) { $("#samples-title").textContent = `no data set to pick from: ${s.reason}`; return null; }
  $("#samples-title").textContent = `pick an image from the test set (${s.count.toLocaleString()} images; label in the tooltip)`;
  for (const it of s.items) {
    box.append(el("img", { src: `/api/samples/${it.index}.png`, alt: `sample ${it.index}: ${it.class}`, title: `test image ${it.index}: ${it.class}`,
      dataset: { index: it.index, label: it.class },
      onclick: () => pickSample(it) }));
  }
  return s.items[0] || null;
}

function pickSample(it) {
  return predict({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sample: it.index }) },
    `test image ${it.index} (label ${it.class})`);
}

async function predict(options, what) {
  const seq = state.seq = (state.seq || 0) + 1;  // only the latest request's answer is shown
  state.timing = { start: performance.now() };
  document.body.dataset.state = "predicting";
  $("#status").textContent = `running ${state.model.name} on the ${what}…`;
  let p;
  try {
    p = await api("/api/predict", options);
  } catch (e) {
    if (seq !== state.seq) return;
    message(e.message);
    $("#status").textContent = "";
    document.body.dataset.state = "error";
    return;
  }
  if (seq !== state.seq) return;
  state.timing.predicted = performance.now();
  message("");
  $("#seen-box").hidden = false;
  state.input = p;
  state.layerMaps = {};
  $("#seen-mark").hidden = true; $("#zoom-mark").hidden = true;
  $("#source").textContent = what;
  $("#status").textContent = `${p.layers.length} layers computed in ${p.seconds < 1 ? (1000 * p.seconds).toFixed(0) + " ms" : p.seconds.toFixed(2) + " s"} on the server` + (p.cached ? " (this picture was seen before: its activations were kept)" : "");
  showPrediction(p);
  await showSeen(p);
  buildLayers();
  document.body.dataset.state = "ready";
}

function showPrediction(p) {
  const pr = $("#prediction");
  pr.dataset.class = p.prediction.class; pr.dataset.index = p.prediction.index;
  pr.replaceChildren(...[el("span", { class: "cls", text: p.prediction.class }),
    el("span", { text: `${(100 * p.prediction.probability).toFixed(1)} %` }),
    p.label ? el("span", { class: p.label.index === p.prediction.index ? "check" : "bad", text: `  label ${p.label.class} ${p.label.index === p.prediction.index ? "✓" : "✗"}` }) : null,
    p.trained ? null : el("div", { class: "small muted", text: "random weights: a chance answer" })].filter(Boolean));
  const bars = $("#bars");
  bars.replaceChildren();
  const shown = p.classes.length <= 12 ? p.classes.map((c, i) => ({ index: i, class: c, probability: p.probabilities[i] })) : p.top;
  if (p.classes.length > 12) bars.append(el("div", { class: "small muted", text: `top 10 of ${p.classes.length}` }), el("div"), el("div"));
  for (const t of shown) {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${(100 * t.probability).toFixed(2)}%`;
    const best = t.index === p.prediction.index ? "best" : "";
    const lab = el("div", { class: "lab " + best, text: t.class });
    const track = el("div", { class: "track " + best, dataset: { class: t.class, p: t.probability }, title: "click: how the softmax makes this probability", onclick: () => showSoftmax(p, t.index) }, fill);
    bars.append(lab, track, el("div", { class: "pct", text: `${(100 * t.probability).toFixed(1)}%` }));
  }
}

async function showSeen(p) {
  const m = await api(`/api/inputs/${p.input_id}/maps/input?count=3`);
  const [c, h, w] = m.full_shape;
  drawMap($("#seen"), decode(m), h, w, 1, { grey: c === 1, rgb: c === 3, size: 112 });
  $("#seen-size").textContent = `(${w}×${h}×${c})`;
}

// ---------------------------------------------------------------- activation maps, one layer at a time
function buildLayers() {
  const box = $("#layers");
  box.replaceChildren();
  if (state.observer) state.observer.disconnect();
  state.observer = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) { state.observer.unobserve(e.target); loadRow(e.target, 0); }
  }, { rootMargin: "200px" });
  for (const r of state.model.layers) {
    const row = el("div", { class: "layer-row", dataset: { layer: r.name } },
      el("div", { class: "label" }, el("div", { class: "n", text: r.name }), el("div", { class: "muted", text: r.type }),
        el("div", { class: "mono", text: r.output_volume })),
      el("div", { class: "thumbs" }, el("span", { class: "muted small", text: "…" })));
    box.append(row);
    state.observer.observe(row);
  }
}

async function loadRow(row, start) {
  const name = row.dataset.layer, id = state.input.input_id;
  const r = state.model.layers.find((x) => x.name === name);
  const spatial = r.output.length === 3 && r.output[1] * r.output[2] > 1;
  // the first maps of a row: at most about 400,000 values (7 maps of VGG's 224×224), the rest on request
  const perMap = spatial ? r.output[1] * r.output[2] : 1;
  const count = start === 0 ? (spatial ? Math.max(1, Math.min(16, Math.floor(400000 / perMap))) : 64) : Math.max(1, Math.min(64, Math.floor(1600000 / perMap)));
  let m;
  try { m = await api(`/api/inputs/${id}/maps/${encodeURIComponent(name)}?start=${start}&count=${count}`); }
  catch (e) { row.querySelector(".thumbs").textContent = e.message; return; }
  if (!state.input || state.input.input_id !== id) return;       // a newer input replaced this one
  const thumbs = row.querySelector(".thumbs");
  if (start === 0) thumbs.replaceChildren();
  thumbs.querySelector(".more")?.remove();
  const vals = decode(m), scale = Math.max(Math.abs(m.layer_min), Math.abs(m.layer_max));
  if (spatial) {
    const [, h, w] = m.full_shape;
    const size = Math.round(Math.max(40, Math.min(64, h * 2.5)));
    for (let k = 0; k < m.count; k++) {
      const ch = start + k;
      const cv = el("canvas", { title: `${name} channel ${ch}`, dataset: { layer: name, channel: ch } });
      drawMap(cv, vals.subarray(k * h * w, (k + 1) * h * w), h, w, scale, { size });
      cv.addEventListener("click", () => openMap(name, ch, vals.slice(k * h * w, (k + 1) * h * w), h, w, scale, cv));
      thumbs.append(cv);
    }
    const total = m.full_shape[0];
    if (start + m.count < total) thumbs.append(el("button", { class: "more", text: `show ${Math.min(64, total - start - m.count)} more of ${total}`, onclick: () => loadRow(row, start + m.count) }));
  } else {
    const n = vals.length;                     // a vector (or C×1×1): one cell per value
    const cv = el("canvas", { title: `${name}: ${n} values; click one`, dataset: { layer: name } });
    const cols = Math.min(n, 60), rows = Math.ceil(n / cols);
    const grid = new Float32Array(rows * cols);
    grid.set(vals);
    drawMap(cv, grid, rows, cols, scale, {});
    const cell = Math.max(4, Math.min(14, Math.floor((thumbs.clientWidth || 560) / cols)));
    cv.style.width = `${cols * cell}px`; cv.style.height = `${rows * cell}px`;
    const cellAt = (e) => { const b = cv.getBoundingClientRect();
      return Math.floor((e.clientY - b.top) / b.height * rows) * cols + Math.floor((e.clientX - b.left) / b.width * cols); };
    const last = name === state.model.layers[state.model.layers.length - 1].name && n === state.model.classes.length;
    cv.addEventListener("mousemove", (e) => { const i = cellAt(e);
      cv.title = i < n ? `${name}[${i}] = ${fmt(vals[i])}${last ? ` (class ${state.model.classes[i]})` : ""}; click: where it comes from` : ""; });
    cv.addEventListener("click", (e) => {
      const i = cellAt(e);
      if (i < n) showValue(name, { c: i, ...(r.output.length === 3 ? { y: 0, x: 0 } : {}) });
    });
    thumbs.append(el("div", { class: "vector" }, cv), el("span", { class: "small muted", text: `${n} values · max ${short(m.layer_max)}` }));
  }
  if (start === 0 && !state.timing.firstMaps && name === state.model.layers[0].name) {
    state.timing.firstMaps = performance.now();
    document.body.dataset.firstMapsMs = (state.timing.firstMaps - state.timing.start).toFixed(1);
  }
}

// ---------------------------------------------------------------- the inspector: one map, one value
function openMap(layer, channel, values, h, w, scale, thumb) {
  document.querySelectorAll(".thumbs canvas.selected").forEach((c) => c.classList.remove("selected"));
  thumb.classList.add("selected");
  if ($("#layer-info").dataset.layer !== layer) selectLayer(layer, false);
  state.selected = { layer, channel, values, h, w };
  $("#zoom-box").hidden = false;
  $("#zoom-caption").textContent = `${layer}, channel ${channel}: ${w}×${h}; hover to read a value, click it to see where it comes from`;
  const z = $("#zoom");
  $("#zoom-mark").hidden = true;
  drawMap(z, values, h, w, scale, { size: 280 });
  z.dataset.layer = layer; z.dataset.channel = channel; z.dataset.h = h; z.dataset.w = w;
}

function zoomIndex(e) {
  const z = $("#zoom"), s = state.selected, b = z.getBoundingClientRect();
  const x = Math.floor((e.clientX - b.left) / b.width * s.w), y = Math.floor((e.clientY - b.top) / b.height * s.h);
  return (x >= 0 && y >= 0 && x < s.w && y < s.h) ? [y, x] : null;
}

function setupZoom() {
  const z = $("#zoom");
  z.addEventListener("mousemove", (e) => {
    const s = state.selected, ix = s && zoomIndex(e);
    $("#hover").textContent = ix ? `[${s.channel}, ${ix[0]}, ${ix[1]}] = ${fmt(s.values[ix[0] * s.w + ix[1]])}` : "\u00a0";
  });
  z.addEventListener("click", (e) => {
    const s = state.selected, ix = s && zoomIndex(e);
    if (ix) showValue(s.layer, { c: s.channel, y: ix[0], x: ix[1] });
  });
}

async function showValue(layer, q) {
  const box = $("#derivation");
  const qs = Object.entries(q).map(([k, v]) => `${k}=${v}`).join("&");
  let d;
  try { d = await api(`/api/inputs/${state.input.input_id}/value/${encodeURIComponent(layer)}?${qs}`); }
  catch (e) { box.textContent = e.message; return; }
  box.dataset.kind = d.kind; box.dataset.value = d.value;
  const s = state.selected;
  if (s && s.layer === layer && d.index.length === 3) mark("#zoom", "#zoom-mark", [d.index[1], d.index[1] + 1, d.index[2], d.index[2] + 1], s.h, s.w);
  if (d.receptive_box) mark("#seen", "#seen-mark", d.receptive_box, state.model.input_size[1], state.model.input_size[2]);
  else $("#seen-mark").hidden = true;
  const head = el("h3", { text: `${layer}[${d.index.join(", ")}] = ${fmt(d.value)}` });
  if (d.kind === "conv") box.replaceChildren(head, convView(d));
  else if (d.kind === "linear") box.replaceChildren(head, linearView(d));
  else if (d.kind === "maxpool" || d.kind === "avgpool") box.replaceChildren(head, poolView(d));
  else if (d.kind === "batchnorm") box.replaceChildren(head, bnView(d));
  else box.replaceChildren(head, el("p", { text: d.formula }));
}

// Outline rows top..bottom, columns left..right (half-open) of an h×w map drawn in `canvasSel`.
function mark(canvasSel, markSel, [top, bottom, left, right], h, w) {
  const c = $(canvasSel), m = $(markSel);
  const fx = c.clientWidth / w, fy = c.clientHeight / h;
  m.style.left = `${left * fx - 2}px`; m.style.top = `${top * fy - 2}px`;
  m.style.width = `${(right - left) * fx}px`; m.style.height = `${(bottom - top) * fy}px`;
  m.hidden = false;
}

// The softmax of the last layer's outputs, written out for class k (exponentials relative to the largest z).
function showSoftmax(p, k) {
  const z = p.logits, zmax = Math.max(...z), e = z.map((v) => Math.exp(v - zmax)), sum = e.reduce((a, b) => a + b, 0);
  const order = z.map((_, i) => i).sort((a, b) => z[b] - z[a]).slice(0, 12);
  if (!order.includes(k)) order.push(k);
  const rows = order.map((i) => el("tr", { class: i === k ? "on" : "" }, el("td", { text: p.classes[i] }), el("td", { text: fmt(z[i]) }),
    el("td", { text: fmt(e[i], 6) }), el("td", { text: fmt(e[i] / sum, 6) })));
  $("#inspect-title").textContent = "softmax";
  $("#layer-info").replaceChildren(); $("#layer-info").dataset.layer = "";
  $("#explain-box").hidden = true; $("#zoom-box").hidden = true;
  const box = $("#derivation");
  box.dataset.kind = "softmax";
  box.replaceChildren(el("h3", { text: `P(${p.classes[k]}) = ${(100 * e[k] / sum).toFixed(2)} %` }),
    el("p", { class: "small muted", text: `The last layer's ${z.length} outputs z (logits) become probabilities: p = e^z / Σ e^z. ` +
      `Each e^z is computed as e^(z − ${fmt(zmax)}), the largest z, which leaves p unchanged and keeps e^z from overflowing.` }),
    el("div", { class: "terms-box" }, el("table", { class: "terms" }, el("tr", {}, el("th", { text: "class" }), el("th", { text: "z" }),
      el("th", { text: "e^(z − max)" }), el("th", { text: "p" })), ...rows)),
    el("div", { class: "eq" }, `Σ e^(z − max) over all ${z.length} classes = `, el("b", { text: fmt(sum, 6) }),
      el("div", {}, `p = ${fmt(e[k], 6)} / ${fmt(sum, 6)} = `, el("b", { id: "softmax-p", dataset: { value: e[k] / sum }, text: fmt(e[k] / sum, 6) }))));
}

function numGrid(rows, cls = () => "") {
  const g = el("div", { class: "grid" });
  g.style.gridTemplateColumns = `repeat(${rows[0].length}, auto)`;
  rows.forEach((row, a) => row.forEach((v, b) => g.append(el("div", { class: cls(a, b, v), text: short(v), title: fmt(v, 6) }))));
  return g;
}

function result(d, sumLabel) {
  const ok = Math.abs(d.result - d.value) <= 1e-4 * Math.max(1, Math.abs(d.value));
  return el("div", { class: "eq" },
    el("div", {}, `${sumLabel} = `, el("b", { id: "deriv-sum", dataset: { value: d.sum }, text: fmt(d.sum) })),
    d.bias !== undefined ? el("div", {}, "+ bias b = ", el("b", { id: "deriv-bias", dataset: { value: d.bias }, text: fmt(d.bias) })) : null,
    el("div", {}, "= ", el("b", { id: "deriv-result", dataset: { value: d.result }, text: fmt(d.result) }),
      el("span", { class: ok ? "check" : "bad", text: ok ? `  ✓ the layer's output is ${fmt(d.value)}` : `  ✗ the layer's output is ${fmt(d.value)}` })));
}

function convView(d) {
  const [F1, F2] = d.kernel_size;
  const out = el("div", {});
  const norm = d.normalize ? ` x is the picture normalised as in training, (pixel − ${d.normalize.mean[0].toFixed(3)}) / ${d.normalize.std[0].toFixed(3)}: black paper becomes ${(-d.normalize.mean[0] / d.normalize.std[0]).toFixed(2)}.` : "";
  const box = d.receptive_box ? ` It sees input pixels rows ${d.receptive_box[0]}–${d.receptive_box[1] - 1}, columns ${d.receptive_box[2]}–${d.receptive_box[3] - 1} of the picture (outlined).` : "";
  out.append(el("p", { class: "small muted", text: `filter ${d.filter} of ${d.groups > 1 ? `group ${d.group} (groups=${d.groups})` : "the layer"}: ${F2}×${F1}×${d.in_channels.length} weights, stride ${d.stride.join("×")}, padding ${d.padding.join("×")}. ` +
    `The window covers rows ${range(d.rows)} and columns ${range(d.cols)} of the layer's input (grey: zero padding).` + box + norm }));
  const detail = el("div", {});
  const pick = (ch) => {
    const c = d.channels.find((x) => x.channel === ch);
    chips.querySelectorAll(".chip").forEach((x) => x.classList.toggle("on", Number(x.dataset.channel) === ch));
    const pad = (a, b) => (d.rows[a] < 0 || d.cols[b] < 0) ? "pad" : "";
    detail.replaceChildren(el("div", { class: "grids" },
      el("div", {}, numGrid(c.patch, pad), el("div", { class: "grid-cap", text: `input patch x (channel ${ch})` })), el("span", { class: "op", text: "⊙" }),
      el("div", {}, numGrid(c.weight), el("div", { class: "grid-cap", text: `filter w (channel ${ch})` })), el("span", { class: "op", text: "=" }),
      el("div", {}, numGrid(c.products, pad), el("div", { class: "grid-cap", text: "w·x element by element" }))),
      el("div", { class: "small", text: `Σ over this channel's ${F1 * F2} products = ${fmt(c.sum)}` }));
  };
  const chips = el("div", { class: "chips" });
  d.channels.forEach((c) => chips.append(el("span", { class: "chip", dataset: { channel: c.channel }, text: `ch ${c.channel}: ${short(c.sum)}`, onclick: () => pick(c.channel) })));
  if (d.in_channels.length > 1) out.append(el("div", { class: "small", text: d.channels.length < d.in_channels.length ? `the ${d.channels.length} input channels that contribute most (of ${d.in_channels.length}); all are summed:` : `the sum per input channel (click one):` }), chips);
  out.append(detail, result(d, `Σ w·x over all ${d.terms.toLocaleString()} products`));
  pick(d.channels.reduce((a, b) => Math.abs(b.sum) > Math.abs(a.sum) ? b : a).channel);
  return out;
}

function bnView(d) {
  const ok = Math.abs(d.result - d.value) <= 1e-4 * Math.max(1, Math.abs(d.value));
  return el("div", {},
    el("p", { class: "small muted", text: `channel ${d.channel}, in evaluation: the running mean and variance learnt in training, then the learnt scale γ and shift β` }),
    el("div", { class: "eq" },
      el("div", { text: `x̂ = (x − μ) / √(σ² + ε) = (${fmt(d.x)} − ${fmt(d.mean)}) / √(${fmt(d.var)} + ${d.eps}) = ${fmt(d.normalized)}` }),
      el("div", {}, `y = γ·x̂ + β = ${fmt(d.gamma)} · ${fmt(d.normalized)} + ${fmt(d.beta)} = `,
        el("b", { id: "deriv-result", dataset: { value: d.result }, text: fmt(d.result) }),
        el("span", { class: ok ? "check" : "bad", text: ok ? `  ✓ the layer's output is ${fmt(d.value)}` : `  ✗ the layer's output is ${fmt(d.value)}` }))));
}

function range(a) { const v = a.filter((x) => x >= 0); return v.length ? `${v[0]}–${v[v.length - 1]}` : "none (all padding)"; }

function linearView(d) {
  const rows = d.inputs.map((i, k) => el("tr", {}, el("td", { text: i }), el("td", { text: fmt(d.x[k]) }), el("td", { text: fmt(d.weight[k]) }), el("td", { text: fmt(d.products[k]) })));
  return el("div", {},
    el("p", { class: "small muted", text: `neuron ${d.neuron}: ${d.terms} inputs, each times its weight` + (d.inputs.length < d.terms ? ` (the ${d.inputs.length} largest products listed; all are summed)` : "") }),
    el("div", { class: "terms-box" }, el("table", { class: "terms" }, el("tr", {}, el("th", { text: "i" }), el("th", { text: "xᵢ" }), el("th", { text: "wᵢ" }), el("th", { text: "wᵢ·xᵢ" })), ...rows)),
    result(d, `Σ wᵢ·xᵢ over ${d.terms} inputs`));
}

function poolView(d) {
  const isMax = d.kind === "maxpool";
  const win = (a, b) => (d.rows[a] < 0 || d.cols[b] < 0) ? "pad" : (isMax && a === d.argmax[0] && b === d.argmax[1]) ? "win" : "";
  const ok = Math.abs(d.result - d.value) <= 1e-6 * Math.max(1, Math.abs(d.value));
  return el("div", {},
    el("p", { class: "small muted", text: `channel ${d.channel}: a ${d.kernel_size.join("×")} window at stride ${d.stride.join("×")} over input rows ${range(d.rows)}, columns ${range(d.cols)}` }),
    el("div", { class: "grids" }, numGrid(d.window, win)),
    el("div", { class: "eq" }, isMax ? "max of the window = " : `mean = ${fmt(d.sum)} / ${d.count} = `,
      el("b", { id: "deriv-result", dataset: { value: d.result }, text: fmt(d.result) }),
      el("span", { class: ok ? "check" : "bad", text: ok ? `  ✓ the layer's output is ${fmt(d.value)}` : `  ✗ the layer's output is ${fmt(d.value)}` })));
}

// ---------------------------------------------------------------- filters, saliency, occlusion, top patches
async function showFilters(layer) {
  const box = $("#filters");
  let f;
  try { f = await api(`/api/layers/${encodeURIComponent(layer)}/filters?count=32`); } catch (e) { box.textContent = e.message; return; }
  const [n, c, h, w] = f.weight.shape, vals = decode(f.weight);
  const scale = Math.max(Math.abs(f.weight.min), Math.abs(f.weight.max));
  box.replaceChildren();
  for (let k = 0; k < n; k++) {
    const cv = el("canvas", { title: `${layer} filter ${f.start + k}` });
    const base = k * c * h * w;
    if (c === 3) {                                  // the first layer of a colour network: the filter as a colour patch
      const rgb = new Float32Array(3 * h * w);
      for (let i = 0; i < 3 * h * w; i++) rgb[i] = 0.5 + 0.5 * vals[base + i] / scale;
      drawMap(cv, rgb, h, w, 1, { rgb: true, size: 56 });
    } else drawMap(cv, vals.subarray(base, base + h * w), h, w, scale, { size: 56 });
    box.append(el("div", { class: "fig" }, cv, el("span", { text: String(f.start + k) })));
  }
  box.append(el("span", { class: "small muted", text: c === 3 || c === 1 ? `${f.filters} filters, ${w}×${h}×${c}` : `${f.filters} filters, ${w}×${h}×${c} (input channel 0 shown)` }));
}

async function showPixelMap(kind) {
  if (!state.input) { message("draw, upload or pick an image first", "#tool-message"); return; }
  message("computing…", "#tool-message");
  let r;
  try { r = await api(`/api/inputs/${state.input.input_id}/${kind}`); } catch (e) { message(e.message, "#tool-message"); return; }
  message("", "#tool-message");
  const [h, w] = r.map.shape.slice(-2), v = decode(r.map);
  const seen = el("canvas"), map = el("canvas");
  const m = await api(`/api/inputs/${state.input.input_id}/maps/input?count=3`);
  const [c, ih, iw] = m.full_shape;
  drawMap(seen, decode(m), ih, iw, 1, { grey: c === 1, rgb: c === 3, size: 168 });
  drawMap(map, v, h, w, r.map.max, { heat: kind === "saliency", grey: kind === "occlusion", size: 168 });
  $("#" + kind).replaceChildren(el("div", { class: "fig" }, seen, el("span", { text: "input" })),
    el("div", { class: "fig" }, map, el("span", { text: kind === "saliency" ? `saliency for class ${r.class} (bright: large gradient)` :
      `P(${r.class}) with the square at each place: white 1, black 0 (lowest ${r.map.min.toFixed(2)})` })));
}

async function showPatches() {
  const layer = $("#patch-layer").value, ch = Number($("#patch-channel").value);
  message("searching the data set…", "#tool-message");
  let r;
  try { r = await api(`/api/layers/${encodeURIComponent(layer)}/top-patches?channel=${ch}`); } catch (e) { message(e.message, "#tool-message"); return; }
  message("", "#tool-message");
  const box = $("#patches");
  box.replaceChildren();
  const vals = decode(r.patches), [n, c, h, w] = r.patches.shape;
  for (let k = 0; k < n; k++) {
    const cv = el("canvas");
    drawMap(cv, vals.subarray(k * c * h * w, (k + 1) * c * h * w), h, w, 1, { grey: c === 1, rgb: c === 3, size: 64 });
    box.append(el("div", { class: "fig", title: `test image ${r.image_index[k]} (label ${r.labels[k]}), rows ${r.boxes[k][0]}–${r.boxes[k][1] - 1}, columns ${r.boxes[k][2]}–${r.boxes[k][3] - 1}` },
      cv, el("span", { text: `${short(r.values[k])} · ${r.labels[k]}` })));
  }
  box.append(el("span", { class: "small muted", text: `${layer} channel ${ch}: the ${n} strongest of ${r.searched} test images, each cropped to the ${r.receptive_field.join("×")} receptive field (value · label)` }));
}

function setupTools() {
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((x) => x.classList.toggle("active", x === t));
    document.querySelectorAll(".tab-body").forEach((b) => { b.hidden = b.id !== `tab-${t.dataset.tab}`; });
  }));
  $("#filter-layer").addEventListener("change", (e) => showFilters(e.target.value));
  $("#saliency-run").addEventListener("click", () => showPixelMap("saliency"));
  $("#occlusion-run").addEventListener("click", () => showPixelMap("occlusion"));
  $("#patches-run").addEventListener("click", showPatches);
}

window.addEventListener("DOMContentLoaded", async () => {
  setupCanvas(); setupZoom(); setupTools();
  try { await loadModel(); document.body.dataset.loaded = "yes"; }
  catch (e) { message(`cannot load the model: ${e.message}`); }
});
