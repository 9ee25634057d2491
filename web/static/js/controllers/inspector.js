/**
 * The glass box (issue 16), wired: what the student clicks or hovers, and what the inspector
 * shows for it.
 *
 * - A neuron clicked (it opens the neuron dialog): its equation at the picked point, computed in
 *   the browser from the frame's weights (views/inspector_math.js), redrawn with every frame;
 *   clicking the enlarged picture (or the output map) picks the point. While the job is paused
 *   its weights and bias are number fields: a change is sent (POST /weights) and the next frame
 *   shows the new boundary.
 * - A link clicked: its weight, editable while paused, in the inspector panel.
 * - A point of the output map clicked: the forward pass of the nearest sample (or of the point
 *   itself), from the server (POST /inspect), with the gradient arrow on the map; refreshed at
 *   most once a second while it trains.
 * - A neuron hovered: its heatmap on the big output map.
 * - Image data: the misclassified test images as a gallery (GET /misclassified); one clicked
 *   shows its forward pass and feature maps.
 */

import { api } from "../api.js";
import { t } from "../i18n/index.js";
import { $, session, store, views } from "../session.js";
import { InspectorPanel, renderEquation } from "../views/inspector.js";
import { fmt, forwardAt, shownOutput } from "../views/inspector_math.js";
import { entry } from "./data.js";

const MAX_EQUATION_ROWS = 16;
const REFRESH_MS = 1000;
const GALLERY_SIZE = 48;

const state = {
  point: [0, 0],    // the point of the plane the equation is computed at
  neuron: null,     // {column, unit}: the neuron in the dialog
  link: null,       // {layer, row, col, label}
  sample: null,     // the inspect request on the panel
  lastInspect: 0,
  inFlight: false,
  frame: null,
  jobId: null,
};
let panel = null;

const paused = () => session.job?.status === "paused";

/** Make the panel and hook the views (main.js calls it once the network view exists). */
export function bindInspector() {
  panel = new InspectorPanel($("inspector"), {
    onEdit: (link, value) => edit(link.layer, link.param, link.index, value),
    onGallery: loadGallery,
    onPickImage: (index) => inspectSample({ split: "test", index }),
    onClose: () => { state.link = null; state.sample = null; views.output.setMarks({}); },
  });
  Object.assign(views.network.callbacks, {
    onNeuron: (column, unit) => { state.neuron = { column, unit }; renderNeuron(); },
    onLink: (link) => { state.link = { ...link, param: "weight", index: [link.row, link.col] }; renderLink(); },
    onHoverNeuron: (canvas, label) => {
      views.output.setOverlay(canvas);
      const note = $("output-overlay");
      note.hidden = !canvas;
      note.textContent = canvas ? t("inspector.showing", { label }) : "";
    },
    onFrame,
  });
  $("neuron-zoom").addEventListener("close", () => { state.neuron = null; });
  $("neuron-zoom-canvas").addEventListener("click", (e) => {
    state.point = planeOf(e, $("neuron-zoom-canvas"));
    views.output.setMarks({ point: state.point });
    renderNeuron();
  });
  $("output-map").addEventListener("click", onMapClick);
  $("output-map").addEventListener("keydown", onMapKey);
  $("output-map").tabIndex = 0;
  $("output-map").setAttribute("aria-keyshortcuts", "ArrowLeft ArrowRight ArrowUp ArrowDown Enter");
  // Paused or not decides whether the numbers are fields: follow the play button.
  new MutationObserver(() => { renderNeuron(); renderLink(); })
    .observe($("play"), { attributes: true, attributeFilter: ["aria-pressed"] });
  store.subscribe(() => showGalleryFor());
  showGalleryFor();
}

/** The point of the plane under a click on `canvas` (which covers the plane's extent). */
function planeOf(e, canvas) {
  const r = canvas.getBoundingClientRect();
  const ext = views.output.extent();
  const fx = (e.clientX - r.left) / r.width; const fy = (e.clientY - r.top) / r.height;
  return [ext.x[0] + fx * (ext.x[1] - ext.x[0]), ext.y[1] - fy * (ext.y[1] - ext.y[0])];
}

function onFrame(frame) {
  if (session.job?.id !== state.jobId) { state.jobId = session.job?.id ?? null; state.sample = null; panel.clear(); }
  state.frame = frame;
  if (state.neuron) renderNeuron();
  if (state.link) renderLink();
  if (state.sample && !state.inFlight && performance.now() - state.lastInspect > REFRESH_MS) inspectSample(state.sample, { quiet: true });
}

/** The layer specs of the drawn network, the appended (linear) output layer last. */
function layerSpecs() {
  const spec = views.network.spec;
  return [...spec.layers, { units: spec.outputs, activation: "linear" }];
}

function neuronLabel(layer, k) {
  return layer === 0 ? views.network.spec.active[k] : t("network.neuron", { layer, n: k + 1 });
}

function renderNeuron() {
  const root = $("neuron-equation");
  if (!state.neuron || !root) return;
  const { column, unit } = state.neuron;
  markZoom();
  const frame = state.frame || views.network.lastFrame;
  if (!frame) { renderEquation(root, { note: t("inspector.no_frame") }); return; }
  const layers = layerSpecs();
  const pass = forwardAt(frame, views.network.spec.active, layers, state.point[0], state.point[1]);
  if (!pass) { renderEquation(root, { note: t("inspector.no_weights") }); return; }
  const layer = column - 1;
  const L = pass[layer];
  const fanIn = L.input.length;
  let rows = L.input.map((value, k) => ({ index: k, name: neuronLabel(layer, k), value }));
  if (rows.length > MAX_EQUATION_ROWS) {
    rows = rows.sort((a, b) => Math.abs(b.value * L.weight.data[unit * fanIn + b.index]) - Math.abs(a.value * L.weight.data[unit * fanIn + a.index]))
      .slice(0, MAX_EQUATION_ROWS);
  }
  const isOutput = column === layers.length;
  const transform = frame.header.output_transform;
  let shown = null;
  if (isOutput && transform && transform !== "identity") {
    const value = shownOutput(L.a, transform)[unit];
    shown = t("inspector.shown", { transform, value: fmt(value) });
  }
  renderEquation(root, {
    point: state.point, unit, inputs: rows,
    weights: rows.map((r) => L.weight.data[unit * fanIn + r.index]),
    bias: L.bias ? L.bias.data[unit] : null, z: L.z[unit], output: L.a[unit],
    activation: layers[layer].activation || "relu", shown, editable: paused(),
    onEdit: (param, index, value) => edit(layer, param, index, value),
  });
  if (fanIn > MAX_EQUATION_ROWS) root.append(Object.assign(document.createElement("p"), { className: "muted small", textContent: t("inspector.largest", { n: MAX_EQUATION_ROWS, total: fanIn }) }));
}

/** The enlarged picture again, with the picked point on it. */
function markZoom() {
  const canvas = $("neuron-zoom-canvas");
  if (!views.network.zoomed) return;
  views.network.paintZoom();
  const ext = views.output.extent();
  const cx = (state.point[0] - ext.x[0]) / (ext.x[1] - ext.x[0]) * canvas.width;
  const cy = (ext.y[1] - state.point[1]) / (ext.y[1] - ext.y[0]) * canvas.height;
  const ctx = canvas.getContext("2d");
  ctx.save();
  ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(cx, cy, 7, 0, 2 * Math.PI);
  ctx.moveTo(cx - 13, cy); ctx.lineTo(cx - 7, cy); ctx.moveTo(cx + 7, cy); ctx.lineTo(cx + 13, cy);
  ctx.moveTo(cx, cy - 13); ctx.lineTo(cx, cy - 7); ctx.moveTo(cx, cy + 7); ctx.lineTo(cx, cy + 13);
  ctx.stroke();
  ctx.restore();
}

function renderLink() {
  if (!state.link || !panel) return;
  const { layer, row, col } = state.link;
  const w = (state.frame || views.network.lastFrame)?.arrays[`layer${layer}.weight`];
  const value = w ? w.data[row * w.shape[1] + col] : null;
  panel.showLink({ ...state.link, value }, { editable: paused() && value !== null });
}

async function edit(layer, param, index, value) {
  const job = session.job;
  if (!job) return;
  try {
    await api.editWeight(job.id, { layer, param, index, value }, job.token);
    document.activeElement?.blur?.();  // a frame that came meanwhile was not drawn over the field
    renderNeuron();
    renderLink();
  } catch (err) {
    panel.sampleNote(err.message, true);
  }
}

function onMapClick(e) {
  const canvas = $("output-map");
  if (!session.job || !views.output.data) return;
  const r = canvas.getBoundingClientRect();
  const px = (e.clientX - r.left) * canvas.width / r.width;
  const py = (e.clientY - r.top) * canvas.height / r.height;
  const hit = views.output.nearestPoint(px, py);
  state.point = hit ? pointOf(hit) : views.output.planeAt(px, py);
  views.output.setMarks({ point: state.point });
  inspectSample(hit ? { split: hit.split, index: hit.index } : { point: state.point });
}

/** Keyboard: the arrows move the picked point (an eighth of a unit with Shift), Enter or the
 * space bar shows its forward pass. */
function onMapKey(e) {
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
  if (moves[e.key]) {
    e.preventDefault();
    const ext = views.output.extent();
    const step = e.shiftKey ? 0.125 : 0.5;
    const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
    state.point = [clamp(state.point[0] + moves[e.key][0] * step, ext.x), clamp(state.point[1] + moves[e.key][1] * step, ext.y)];
    views.output.setMarks({ point: state.point });
  } else if ((e.key === "Enter" || e.key === " ") && session.job && views.output.data) {
    e.preventDefault();
    e.stopPropagation();  // the space bar also plays and pauses elsewhere on the page
    inspectSample({ point: state.point });
  }
}

function pointOf({ split, index }) {
  const d = views.output.data;
  const p = (split === "test" ? d.points_test : d.points_train)[index];
  return [p[0], p[1] ?? 0];
}

async function inspectSample(request, { quiet = false } = {}) {
  const job = session.job;
  if (!job) { panel.sampleNote(t("inspector.no_job")); return; }
  state.sample = request;
  state.inFlight = true;
  state.lastInspect = performance.now();
  if (!quiet) panel.sampleNote(t("inspector.loading"));
  try {
    const r = await api.inspect(job.id, request, job.token);
    if (state.sample !== request) return;  // another sample was picked meanwhile
    const e = entry();
    panel.showSample(r, { classNames: e?.class_names || [], task: e?.task || "classification" });
    if (r.point) {
      const g = r.point_gradient;
      views.output.setMarks({ point: r.point, arrow: g ? [-g[0], -g[1]] : null });
    }
  } catch (err) {
    if (!quiet) panel.sampleNote(err.message, true);
  } finally {
    state.inFlight = false;
  }
}

/** The gallery's button for image data; nothing for the other kinds. */
function showGalleryFor() {
  if (!panel) return;
  if (entry()?.kind === "image") {
    if (!panel.galleryBox.childElementCount) panel.showGalleryButton();
    panel.show();
  } else if (panel.galleryBox.childElementCount) {
    panel.galleryBox.textContent = "";
    if (!state.sample && !state.link) panel.clear();
  }
}

async function loadGallery() {
  const job = session.job;
  if (!job) { panel.sampleNote(t("inspector.no_job")); return; }
  try {
    panel.showGallery(await api.misclassified(job.id, GALLERY_SIZE, job.token));
  } catch (err) {
    panel.sampleNote(err.message, true);
  }
}
