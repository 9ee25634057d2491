/**
 * The neuron diagram of a dense network on two-dimensional data (as TF Playground draws it):
 * a column of input features, one column per dense layer, the output; every neuron shows its
 * heatmap over the input plane, every weight is a link whose width is its magnitude and whose
 * colour is its sign. Hover a link or a neuron for its value; click a neuron to enlarge it.
 * The glass box's hooks (controllers/inspector.js): `onNeuron(column, unit)` when a neuron is
 * enlarged, `onLink({layer, row, col, value, label})` when a link is clicked,
 * `onHoverNeuron(canvas | null, label)` while the pointer is on a neuron, `onFrame(frame)` after
 * each drawn frame.
 *
 * A layer of more than DRAW_ALL_UP_TO neurons is drawn compactly: its first SAMPLE neurons and a
 * summary block (how many more, the layer's units and parameters), with links only between drawn
 * neurons, so that any width the server accepts (up to its max_units) keeps the page small and
 * the frames cheap.
 *
 * The view owns its DOM and draws what it is given; it never fetches. Callbacks tell the page
 * what the student asked for (toggle a feature, add or remove neurons).
 */

import { t } from "../i18n/index.js";
import { GridPainter, cssColourOf, lookupTable } from "./heatmap.js";

const LINK_MAX_WIDTH = 8;  // px, for |w| >= LINK_SATURATION
const LINK_SATURATION = 3;
export const DRAW_ALL_UP_TO = 16;  // neurons; a wider layer is drawn as a sample and a summary
export const SAMPLE = 8;           // neurons drawn of a wider layer

/** A unit count as the view uses it: a non-negative integer (anything else draws nothing). */
function countOf(units) {
  const n = Math.floor(Number(units));
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** How many of `units` neurons are drawn. */
export function drawnCount(units) {
  const n = countOf(units);
  return n > DRAW_ALL_UP_TO ? SAMPLE : n;
}

/** Parameters of a dense layer of `units` on `fanIn` inputs (weights, plus biases unless off). */
function denseParameters(fanIn, layer) {
  const units = countOf(layer.units);
  return fanIn * units + (layer.bias === false ? 0 : units);
}

/** Whether this network is drawn as neurons: 2-D point data and only dense layers. */
export function drawsNeurons(kind, layers) {
  return kind === "points2d" && layers.every((l) => l.type === "dense");
}

export class NetworkView {
  /**
   * @param {HTMLElement} root the container (emptied)
   * @param {{onToggleFeature, onUnits, onZoom, tooltip}} callbacks
   */
  constructor(root, callbacks) {
    this.root = root;
    this.callbacks = callbacks;
    this.columns = [];   // [{nodes: [{el, canvas, painter, label}], kind}]
    this.links = [];     // per layer: {from: [x,y][], to: [x,y][], weights: Float32Array|null}
    this.luts = [];
    this.lastFrame = null;
    this.resizeObserver = new ResizeObserver(() => this.layout());
  }

  /**
   * Build the diagram. `features`: every feature the data offers; `active`: those fed in;
   * `layers`: the hidden layer specs; `outputs`: units of the appended output layer.
   */
  render({ features, active, layers, outputs }) {
    this.resizeObserver.disconnect();
    this.root.textContent = "";
    this.root.classList.add("neurons");
    this.spec = { features, active, layers, outputs };
    this.columns = [];
    this.lastFrame = null;

    this.linkCanvas = document.createElement("canvas");
    this.linkCanvas.className = "links";
    this.root.append(this.linkCanvas);
    const grid = document.createElement("div");
    grid.className = "neuron-columns";
    this.root.append(grid);

    // Input features: all offered, the inactive ones dimmed; clicking toggles.
    const inputs = this.column(grid, t("network.features"),
      t("network.features_fed", { active: active.length, total: features.length }));
    inputs.units = active.length;
    for (const name of features) {
      const on = active.includes(name);
      const node = this.node(inputs.body, t("network.feature", { name }), on ? "input" : "input off");
      node.el.setAttribute("role", "switch");
      node.el.setAttribute("aria-checked", String(on));
      node.el.setAttribute("aria-label", t(on ? "network.feature_on" : "network.feature_off", { name }));
      node.el.addEventListener("click", () => this.callbacks.onToggleFeature?.(name));
      node.el.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); e.stopPropagation(); this.callbacks.onToggleFeature?.(name); }
      });
      const label = document.createElement("span");
      label.className = "feature-name";
      label.textContent = name;
      node.el.append(label);
      inputs.nodes.push({ ...node, name, active: on });
    }
    this.columns.push(inputs);

    let fanIn = active.length;
    layers.forEach((layer, i) => {
      const units = countOf(layer.units);
      const col = this.column(grid, t("network.layer", { n: i + 1 }), t("network.neurons", { n: units }), i);
      col.units = units;
      const drawn = drawnCount(units);
      for (let u = 0; u < drawn; u++) {
        const node = this.node(col.body, t("network.neuron", { layer: i + 1, n: u + 1 }), "hidden");
        const at = col.nodes.length;
        node.unit = u;
        node.el.addEventListener("click", () => this.zoom(i + 1, at));
        node.el.addEventListener("keydown", (e) => { if (e.key === "Enter") this.zoom(i + 1, at); });
        col.nodes.push(node);
      }
      if (drawn < units) col.body.append(summary(units - drawn, units, denseParameters(fanIn, layer)));
      fanIn = units;
      this.columns.push(col);
    });

    const outUnits = countOf(outputs);
    const out = this.column(grid, t("network.output"), t("network.units", { n: outUnits }));
    out.units = outUnits;
    for (let u = 0; u < drawnCount(outUnits); u++) {
      const node = this.node(out.body, t("network.output_unit", { n: u + 1 }), "hidden output");
      node.unit = u;
      node.el.addEventListener("click", () => this.zoom(layers.length + 1, u));
      out.nodes.push(node);
    }
    if (out.nodes.length < outUnits) {
      out.body.append(summary(outUnits - out.nodes.length, outUnits, denseParameters(fanIn, { units: outUnits })));
    }
    this.columns.push(out);

    this.luts = this.columns.map((c) => c.nodes.map(() => new Uint32Array(256)));
    this.bindHover();
    this.resizeObserver.observe(this.root);
    this.layout();
  }

  column(grid, title, subtitle, layerIndex) {
    const el = document.createElement("div");
    el.className = "neuron-column";
    const head = document.createElement("div");
    head.className = "column-head";
    if (layerIndex !== undefined) {
      const minus = button("\u2212", t("network.remove_neuron", { layer: layerIndex + 1 }), () => this.callbacks.onUnits?.(layerIndex, -1));
      const plus = button("+", t("network.add_neuron", { layer: layerIndex + 1 }), () => this.callbacks.onUnits?.(layerIndex, +1));
      const row = document.createElement("div");
      row.className = "unit-buttons";
      row.append(minus, plus);
      head.append(row);
    }
    const caption = document.createElement("div");
    caption.className = "column-title";
    caption.innerHTML = `<strong></strong><span></span>`;
    caption.firstChild.textContent = title;
    caption.lastChild.textContent = subtitle;
    head.append(caption);
    const body = document.createElement("div");
    body.className = "column-body";
    el.append(head, body);
    grid.append(el);
    return { el, body, nodes: [] };
  }

  node(parent, label, cls) {
    const el = document.createElement("div");
    el.className = `neuron ${cls}`;
    el.tabIndex = 0;
    el.setAttribute("aria-label", label);
    el.dataset.label = label;
    const canvas = document.createElement("canvas");
    canvas.width = 20; canvas.height = 20;
    el.append(canvas);
    parent.append(el);
    return { el, canvas, painter: new GridPainter(canvas), label };
  }

  /** Positions of every neuron's left and right edge centre, relative to the root. */
  layout() {
    if (!this.linkCanvas) return;
    const box = this.root.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.linkCanvas.width = Math.max(1, Math.round(box.width * dpr));
    this.linkCanvas.height = Math.max(1, Math.round(box.height * dpr));
    this.linkCanvas.style.width = `${box.width}px`;
    this.linkCanvas.style.height = `${box.height}px`;
    this.dpr = dpr;
    for (const col of this.columns) {
      for (const n of col.nodes) {
        const r = n.el.getBoundingClientRect();
        n.left = [r.left - box.left, r.top - box.top + r.height / 2];
        n.right = [r.right - box.left, r.top - box.top + r.height / 2];
      }
    }
    this.drawLinks(this.lastFrame);
  }

  /** The active input nodes in the order the model sees them (the spec's feature order). */
  activeInputs() {
    const byName = new Map(this.columns[0].nodes.map((n) => [n.name, n]));
    return this.spec.active.map((name) => byName.get(name)).filter(Boolean);
  }

  /** Draw one snapshot (decoded frame: {header, arrays}). */
  draw(frame) {
    this.lastFrame = frame;
    const { arrays } = frame;
    const input = arrays["input.heatmap"];
    if (input) this.paintColumn(this.activeInputs(), input, 0);
    for (let c = 1; c < this.columns.length; c++) {
      const hm = arrays[`layer${c - 1}.heatmap`];
      if (hm) this.paintColumn(this.columns[c].nodes, hm, c);
    }
    this.drawLinks(frame);
    if (this.zoomed) this.paintZoom();
    this.callbacks.onFrame?.(frame);
  }

  /** Paint the drawn `nodes` of column `c` from its maps (one per unit, drawn or not). */
  paintColumn(nodes, array, c) {
    const [units, h, w] = array.shape;
    const expected = c === 0 ? nodes.length : this.columns[c].units;
    if (units !== expected) {
      throw new Error(`network view: ${array.meta.name} has ${units} maps but the column has ${expected} neurons`);
    }
    const { min, max } = array.meta;
    nodes.forEach((node, i) => {
      const u = c === 0 ? i : node.unit;
      const lut = lookupTable(min[u], max[u], { out: this.luts[c][i] });
      node.painter.draw(array.data, u * h * w, h, w, lut);
    });
  }

  drawLinks(frame) {
    const ctx = this.linkCanvas.getContext("2d");
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.linkCanvas.width, this.linkCanvas.height);
    this.segments = [];
    const inputs = this.activeInputs();
    for (let c = 1; c < this.columns.length; c++) {
      // Links join drawn neurons only; a weight is looked up by the units' real indices.
      const from = c === 1 ? inputs : this.columns[c - 1].nodes;
      const fromUnits = c === 1 ? inputs.length : this.columns[c - 1].units;
      const to = this.columns[c].nodes;
      const toUnits = this.columns[c].units;
      const weight = frame?.arrays[`layer${c - 1}.weight`];
      const bias = frame?.arrays[`layer${c - 1}.bias`];
      if (weight && (weight.shape[0] !== toUnits || weight.shape[1] !== fromUnits)) {
        throw new Error(`network view: layer${c - 1}.weight has shape ${weight.shape} but the layer has ${toUnits}x${fromUnits} weights`);
      }
      for (let o = 0; o < to.length; o++) {
        const row = to[o].unit;
        to[o].bias = bias ? bias.data[row] : null;
        for (let k = 0; k < from.length; k++) {
          const w = weight ? weight.data[row * fromUnits + (c === 1 ? k : from[k].unit)] : null;
          const [x1, y1] = from[k].right; const [x2, y2] = to[o].left;
          ctx.beginPath();
          ctx.moveTo(x1, y1);
          const mx = (x1 + x2) / 2;
          ctx.bezierCurveTo(mx, y1, mx, y2, x2, y2);
          if (w === null) {
            ctx.strokeStyle = "rgba(160,160,160,0.35)"; ctx.lineWidth = 1;
          } else {
            ctx.strokeStyle = cssColourOf(w, 0.85);
            ctx.lineWidth = 0.5 + (LINK_MAX_WIDTH - 0.5) * Math.min(1, Math.abs(w) / LINK_SATURATION);
          }
          ctx.stroke();
          this.segments.push({ x1, y1, x2, y2, w, label: `${from[k].label} \u2192 ${to[o].label}`,
            layer: c - 1, row, col: c === 1 ? k : from[k].unit });
        }
      }
    }
  }

  /** The link nearest to (clientX, clientY), within 5 px, or null. */
  linkAt(clientX, clientY) {
    const box = this.root.getBoundingClientRect();
    const x = clientX - box.left; const y = clientY - box.top;
    let best = null; let bestD = 5;
    for (const s of this.segments || []) {
      const d = curveDistance(s, x, y);
      if (d < bestD) { bestD = d; best = s; }
    }
    return best;
  }

  bindHover() {
    const tip = this.callbacks.tooltip;
    this.root.onclick = (e) => {
      if (e.target.closest?.(".neuron, button")) return;
      const s = this.linkAt(e.clientX, e.clientY);
      if (!s) return;
      tip?.hide();  // its number would go stale once the weight is edited
      this.callbacks.onLink?.({ layer: s.layer, row: s.row, col: s.col, value: s.w, label: s.label });
    };
    this.root.onmousemove = (e) => {
      const hovered = e.target.closest?.(".neuron");
      const over = hovered ? this.columns.flatMap((c) => c.nodes).find((m) => m.el === hovered) : null;
      const shows = over && over.active !== false && this.lastFrame ? over.canvas : null;
      if (shows !== (this.hovered ?? null)) {
        this.hovered = shows;
        this.callbacks.onHoverNeuron?.(this.hovered, over?.label);
      }
      if (!tip) return;
      const box = this.root.getBoundingClientRect();
      const x = e.clientX - box.left; const y = e.clientY - box.top;
      const neuron = hovered;
      if (neuron) {
        const n = over;
        const bias = n?.bias;
        tip.show(e.clientX, e.clientY, bias != null
          ? t("network.tip_bias", { label: neuron.dataset.label, bias: bias.toFixed(3) }) : neuron.dataset.label);
        return;
      }
      let best = null; let bestD = 5;
      for (const s of this.segments || []) {
        const d = curveDistance(s, x, y);
        if (d < bestD) { bestD = d; best = s; }
      }
      if (best) {
        tip.show(e.clientX, e.clientY, best.w === null ? t("network.tip_no_weight", { label: best.label })
          : t("network.tip_weight", { label: best.label, weight: best.w.toFixed(3) }));
      }
      else tip.hide();
    };
    this.root.onmouseleave = () => {
      tip?.hide();
      if (this.hovered) { this.hovered = null; this.callbacks.onHoverNeuron?.(null); }
    };
  }

  zoom(column, unit) {
    this.zoomed = { column, unit };
    this.paintZoom();
    this.callbacks.onNeuron?.(column, this.columns[column].nodes[unit].unit);
    this.callbacks.onZoom?.(this.columns[column].nodes[unit].label, () => { this.zoomed = null; });
  }

  paintZoom() {
    const { column, unit } = this.zoomed;
    const src = this.columns[column]?.nodes[unit]?.canvas;
    const dst = this.callbacks.zoomCanvas;
    if (!src || !dst) return;
    const ctx = dst.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.clearRect(0, 0, dst.width, dst.height);
    ctx.drawImage(src, 0, 0, dst.width, dst.height);
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.root.textContent = "";
    this.root.classList.remove("neurons");
    this.root.onmousemove = null;
    this.root.onclick = null;
    if (this.hovered) { this.hovered = null; this.callbacks.onHoverNeuron?.(null); }
    this.columns = [];
    this.linkCanvas = null;
  }
}

/** The block under a layer's drawn sample: how many neurons are not drawn, units, parameters. */
function summary(hidden, units, parameters) {
  const el = document.createElement("div");
  el.className = "neuron-summary";
  for (const [cls, text] of [["more", t("network.more", { n: hidden })],
    ["units", t("network.summary_units", { n: units })],
    ["params", t("network.summary_parameters", { n: parameters })]]) {
    const line = document.createElement("span");
    line.className = cls;
    line.textContent = text;
    el.append(line);
  }
  el.title = t("network.summary_title", { drawn: units - hidden, units: units.toLocaleString() });
  return el;
}

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "round tiny";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.title = label;
  b.addEventListener("click", onClick);
  return b;
}

/** Distance from (x, y) to the link's curve, sampled at a few points (good enough for hover). */
function curveDistance(s, x, y) {
  if (x < Math.min(s.x1, s.x2) - 5 || x > Math.max(s.x1, s.x2) + 5) return Infinity;
  let best = Infinity;
  const mx = (s.x1 + s.x2) / 2;
  let px = s.x1; let py = s.y1;
  for (let i = 1; i <= 12; i++) {
    const t = i / 12; const u = 1 - t;
    const qx = u * u * u * s.x1 + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * s.x2;
    const qy = u * u * u * s.y1 + 3 * u * u * t * s.y1 + 3 * u * t * t * s.y2 + t * t * t * s.y2;
    best = Math.min(best, segmentDistance(px, py, qx, qy, x, y));
    px = qx; py = qy;
  }
  return best;
}

function segmentDistance(ax, ay, bx, by, x, y) {
  const dx = bx - ax; const dy = by - ay;
  const len = dx * dx + dy * dy || 1;
  const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len));
  return Math.hypot(ax + t * dx - x, ay + t * dy - y);
}
