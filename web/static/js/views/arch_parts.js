/**
 * The pieces every architecture drawing is made of (views/arch*.js): a `Drawing` that collects
 * SVG shapes (outlines, arrows, words), the live painters of its canvas and the hover areas of
 * its layers; the words of a layer (name, shape, parameter count); the colours of live values;
 * and a dense layer drawn as a compact column (or row) of units coloured by their outputs.
 *
 * Coordinates are CSS pixels of the drawing. Nothing here fetches or knows the page.
 */

import { nameOf, t } from "../i18n/index.js";
import { colourOf } from "./heatmap.js";

const SVG = "http://www.w3.org/2000/svg";
export const INK = "#3d4449";
export const EDGE = "#6b7478";
export const MUTED = "#7a8287";
export const FILL = "#eef2f5";

/** An SVG element with attributes (and text). */
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "1,216" in the page's language. */
export const fmtCount = (n) => (Number.isFinite(n) ? n.toLocaleString("en-US") : "?");

/** A shape as its users write it: images H×W×C, sequences T×F, vectors N. */
export function fmtShape(shape, tokens) {
  if (!Array.isArray(shape)) return "";
  if (shape.length === 3) return `${shape[1]}\u00d7${shape[2]}\u00d7${shape[0]}`;
  if (shape.length === 1 && tokens) return t("arch.tokens_shape", { time: shape[0] });
  return shape.join("\u00d7");
}

/** The lines of a layer's label: name, shape, parameters, then the extra ones. */
export function labelLines(row, { tokens = false, extra = null } = {}) {
  const params = row.parameters ? t("arch.params", { count: fmtCount(row.parameters) }) : t("arch.no_params");
  const more = Array.isArray(extra) ? extra : extra ? [extra] : [];
  return [layerName(row), fmtShape(row.output_shape, tokens && row.type === "input"), params, ...more];
}

/** About how wide `words` are at 10 px (wide characters count whole). */
export function textWidth(words, size = 10) {
  let w = 0;
  for (const ch of words) w += ch.charCodeAt(0) > 0x2e80 ? size : size * 0.6;
  return w;
}

/** A layer's name in the drawing ("conv2d", "LSTM", "output"...). */
export function layerName(row) {
  if (row.appended) return t("arch.output");
  if (row.type === "input") return t("arch.input");
  return nameOf("layer", row.type, row.type);
}

/** The explanation key of a layer's hover area (explain.<lang>.js). */
export function explainKey(type, appended) {
  if (appended) return "tip.arch.output";
  const own = { conv2d: "conv", maxpool2d: "pool", avgpool2d: "pool", rnn: "rnn", lstm: "lstm", gru: "gru",
    attention: "attention", embedding: "embedding", dropout: "dropout", batchnorm: "batchnorm", layernorm: "layernorm" };
  if (own[type]) return `panel.${own[type]}.body`;
  return { flatten: "tip.arch.flatten", pool_sequence: "tip.arch.pool_sequence", activation: "tip.arch.activation",
    input: "tip.arch.input" }[type] || "tip.arch.dense";
}

/** A colour for a value in [-1, 1] as CSS. */
export function cssOf(v) {
  const [r, g, b] = colourOf(v);
  return `rgb(${r},${g},${b})`;
}

/** The largest |value| of data[from, to), at least a tiny number. */
export function absMax(data, from, to) {
  let m = 1e-9;
  for (let k = from; k < to; k++) { const v = Math.abs(data[k]); if (v > m) m = v; }
  return m;
}

/** Probabilities (or values) from an output layer's raw outputs, as the header's transform says. */
export function transformed(raw, how) {
  const v = Array.from(raw);
  if (how === "sigmoid") return v.map((x) => 1 / (1 + Math.exp(-x)));
  if (how === "softmax") {
    const top = Math.max(...v);
    const e = v.map((x) => Math.exp(x - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / sum);
  }
  return v;
}

/**
 * One drawing: `group` holds its SVG shapes; `painters` draw its live values on the canvas
 * under it, `(ctx, live) => void`, where live = {arrays, sample, transform, data}; `hits` are
 * the hover and focus areas of its layers ({x, y, w, h, key, label}); `blocks` the one-line
 * summaries of the layers for the figure's aria-label.
 */
export class Drawing {
  constructor(width) {
    this.width = width;
    this.height = 0;
    this.group = svg("g");
    this.painters = [];
    this.hits = [];
    this.blocks = [];
  }

  add(node) { this.group.append(node); return node; }

  rect(x, y, w, h, attrs = {}) {
    return this.add(svg("rect", { x, y, width: Math.max(0, w), height: Math.max(0, h), fill: "none", stroke: EDGE, "stroke-width": 1, ...attrs }));
  }

  line(x1, y1, x2, y2, attrs = {}) {
    return this.add(svg("line", { x1, y1, x2, y2, stroke: EDGE, "stroke-width": 1, ...attrs }));
  }

  /** A line with an arrow head at (x2, y2). */
  arrow(x1, y1, x2, y2, attrs = {}) {
    const g = this.add(svg("g", { class: "arch-arrow" }));
    g.append(svg("line", { x1, y1, x2, y2, stroke: EDGE, "stroke-width": 1, ...attrs }));
    const a = Math.atan2(y2 - y1, x2 - x1);
    const s = 4;
    const p = (da) => `${x2 - s * Math.cos(a + da)},${y2 - s * Math.sin(a + da)}`;
    g.append(svg("polygon", { points: `${x2},${y2} ${p(0.5)} ${p(-0.5)}`, fill: attrs.stroke || EDGE }));
    return g;
  }

  path(d, attrs = {}) { return this.add(svg("path", { d, fill: "none", stroke: EDGE, "stroke-width": 1, ...attrs })); }

  circle(cx, cy, r, attrs = {}) { return this.add(svg("circle", { cx, cy, r, fill: "none", stroke: EDGE, "stroke-width": 1, ...attrs })); }

  text(x, y, words, attrs = {}) {
    return this.add(svg("text", { x, y, "font-size": 10, fill: INK, "text-anchor": "middle", ...attrs }, words));
  }

  /** Three lines under (or beside) a layer: its name (bold), shape and parameter count, and
   * any extra lines (a window, the gates). */
  label(x, y, row, { anchor = "middle", tokens = false, extra = null } = {}) {
    const [name, shape, params, ...more] = labelLines(row, { tokens, extra });
    this.text(x, y, name, { "font-weight": 600, "text-anchor": anchor, class: "arch-name" });
    this.text(x, y + 12, shape, { "text-anchor": anchor, class: "arch-shape" });
    this.text(x, y + 24, params, { "text-anchor": anchor, fill: MUTED, class: "arch-params", "data-params": row.parameters ?? 0 });
    more.forEach((line, k) => this.text(x, y + 36 + 12 * k, line, { "text-anchor": anchor, fill: MUTED, class: "arch-extra" }));
  }

  /** The hover and focus area of layer `row` and its line in the summary. */
  hit(x, y, w, h, row, { tokens = false, extra = "" } = {}) {
    const parts = [layerName(row), fmtShape(row.output_shape, tokens && row.type === "input")];
    if (row.parameters) parts.push(t("arch.params", { count: fmtCount(row.parameters) }));
    if (extra) parts.push(...(Array.isArray(extra) ? extra : [extra]));
    const label = parts.filter(Boolean).join(", ");
    this.hits.push({ x, y, w, h, key: explainKey(row.type, row.appended), label, index: row.index });
    this.blocks.push(label);
  }

  paint(fn) { this.painters.push(fn); }
}

/**
 * A flat layer as units in a line: a column (vertical) in the flow drawings, a row in the
 * time drawings; at most `fit` drawn (the rest as an ellipsis). Live: each unit coloured by its
 * output for the shown sample (`layer{i}.units`), or, for the output layer, by the prediction
 * with its value written beside it when there are few.
 */
export function drawUnits(d, { x, y, length, units, index, vertical = true, output = false, names = [], gap = 12 }) {
  const fit = Math.max(2, Math.floor(length / gap));
  const shown = units <= fit ? units : fit - 1;
  const pos = (k) => (vertical ? [x, y + gap / 2 + k * gap] : [x + gap / 2 + k * gap, y]);
  const spots = [];
  for (let k = 0; k < shown; k++) {
    const [cx, cy] = pos(k);
    d.circle(cx, cy, 4.2, { stroke: EDGE, "stroke-width": 0.8 });
    spots.push([cx, cy]);
  }
  if (shown < units) {
    const [cx, cy] = pos(shown);
    d.text(cx, cy + 3, vertical ? "\u22ee" : "\u2026", { "font-size": 11, fill: MUTED });
  }
  const values = [];
  if (output && units <= 10 && (vertical || gap >= 30)) {
    spots.forEach(([cx, cy], k) => {
      const words = names[k] ?? String(k);
      const at = vertical ? { x: cx + 8, y: cy + 3.5, "text-anchor": "start" } : { x: cx, y: cy + 16 };
      values.push(d.text(at.x, at.y, words, { "text-anchor": at["text-anchor"] || "middle", "font-size": 9, fill: MUTED, class: "arch-out" }));
    });
  }
  d.paint((ctx, live) => {
    const arr = live.arrays[`layer${index}.units`];
    if (!arr) return;
    const [samples, sent] = arr.shape;
    const s = Math.min(live.sample, samples - 1);
    const row = arr.data.subarray(s * sent, (s + 1) * sent);
    const probs = output ? transformed(row, live.transform) : null;
    const scale = output && live.transform !== "identity" ? 1 : absMax(row, 0, row.length);
    spots.forEach(([cx, cy], k) => {
      if (k >= sent) return;
      ctx.fillStyle = cssOf((probs ? probs[k] : row[k]) / scale);
      ctx.beginPath(); ctx.arc(cx, cy, 3.8, 0, 2 * Math.PI); ctx.fill();
    });
    if (probs && values.length) {
      const best = probs.indexOf(Math.max(...probs));
      values.forEach((node, k) => {
        const p = probs[k];
        const head = names[k] ?? String(k);
        node.textContent = live.transform === "identity" ? `${head} ${p.toFixed(2)}` : `${head} ${(100 * p).toFixed(0)}%`;
        node.setAttribute("font-weight", k === best ? 700 : 400);
        node.setAttribute("fill", k === best ? INK : MUTED);
      });
    }
  });
  return { spots, first: pos(0), last: pos(Math.max(0, Math.min(shown, units - 1))) };
}
