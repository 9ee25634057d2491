/**
 * The architecture drawing above the layer cards, for every network that is not a dense network
 * on 2-D points (those are drawn neuron by neuron, views/network.js): a CNN as the volumes of its
 * feature maps (views/arch_cnn.js, also tables' dense layers as columns of units), a sequence
 * model over time with its recurrent cells unrolled and its attention heads
 * (views/arch_rnn.js, views/arch_attention.js). Every layer shows its shape and its parameter
 * count, from the model check's report (POST /api/models/check, the server's own counts), and
 * the whole figure says the total. Live values come from each snapshot (`layer{i}.feature_maps`,
 * `layer{i}.units`, `layer{i}.hidden`, `layer{i}.attention`; docs/STREAM.md).
 *
 * The figure is an SVG (outlines, arrows, words; role=img with a summary as its label) over one
 * canvas (the live pictures, repainted per frame) and, on top, one focusable area per layer
 * that carries the layer's explanation (explain.js) and its words. Never fetches.
 */

import { classLabel, t } from "../i18n/index.js";
import { explain } from "../explain.js";
import { flowDrawing } from "./arch_cnn.js";
import { fmtCount, svg } from "./arch_parts.js";
import { timeDrawing } from "./arch_rnn.js";

/** Output unit names: the classes, the positive class of a single sigmoid unit, or "value". */
function outputNames(report, task, classNames) {
  const last = report.layers[report.layers.length - 1];
  const units = last?.output_shape?.[last.output_shape.length - 1] ?? 1;
  if (task !== "classification") return Array.from({ length: units }, () => t("arch.value"));
  if (units === 1) return [classNames[1] ?? "1"];
  return Array.from({ length: units }, (_, k) => classNames[k] ?? String(k));
}

export class ArchView {
  /** @param {HTMLElement} root  @param {{sample: () => number}} options (the chosen image sample) */
  constructor(root, { sample = () => 0 } = {}) {
    this.root = root;
    this.sample = sample;
    this.data = null;
    this.names = {};
    this.args = null;
    this.drawing = null;
    this.lastFrame = null;
    this.width = 0;
    // The drawing's own share of each frame's draw time (ms), for the browser tests.
    this.stats = { count: 0, total: 0, max: 0, get mean() { return this.count ? this.total / this.count : 0; } };
    window.__archStats = this.stats;
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        const w = this.root.clientWidth;
        if (this.args && !this.root.hidden && Math.abs(w - this.width) > 8) this.render(this.args);
      }).observe(root);
    }
  }

  /** hello's `data` (the shown samples) and the class and token names of the job. */
  setData(data, { classNames, tokenNames } = {}) {
    this.data = data || null;
    this.names = { classNames, tokenNames };
    this.lastFrame = null;
    if (this.args) this.render(this.args);
  }

  /** Hide the drawing (a dense network on 2-D points, or no model report). */
  hide() {
    this.root.hidden = true;
    this.root.textContent = "";
    this.drawing = null;
  }

  /**
   * Draw the network of `layers` from the model check's `report` for data of `kind`; `entry`
   * is the data set's catalogue entry (task, class names).
   */
  render(args) {
    const { report, layers, kind, entry } = args;
    this.args = args;
    const hidden = report?.layers?.filter((r) => !r.appended) || [];
    if (!report || kind === "points2d" && layers.every((l) => l.type === "dense") || hidden.length !== layers.length) {
      this.hide();
      return;
    }
    this.root.hidden = false;
    this.width = this.root.clientWidth || 480;
    const rows = [{ type: "input", index: -1, output_shape: report.input_shape, parameters: 0 }, ...report.layers];
    const classNames = this.names.classNames?.length ? this.names.classNames : (entry?.class_names || []).map(classLabel);
    const info = {
      layers, data: this.data, tokens: report.input_tokens != null, time: report.input_shape[0],
      tokenNames: this.names.tokenNames, outputNames: outputNames(report, entry?.task, classNames),
    };
    const d = kind === "sequence" ? timeDrawing(this.width, rows, info) : flowDrawing(this.width, rows, info);
    this.drawing = d;
    this.build(d, report);
    this.paint(this.lastFrame);
  }

  build(d, report) {
    this.root.textContent = "";
    const fig = document.createElement("figure");
    fig.className = "arch-figure";
    const stage = document.createElement("div");
    stage.className = "arch-stage";
    const box = document.createElement("div");
    box.className = "arch-box";
    box.style.width = `${d.width}px`;
    box.style.height = `${d.height}px`;
    const canvas = document.createElement("canvas");
    canvas.setAttribute("aria-hidden", "true");
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(d.width * dpr);
    canvas.height = Math.round(d.height * dpr);
    canvas.style.width = `${d.width}px`;
    canvas.style.height = `${d.height}px`;
    this.canvas = canvas;
    this.dpr = dpr;
    const total = t("arch.total", { count: fmtCount(report.total_parameters) });
    const picture = svg("svg", { width: d.width, height: d.height, viewBox: `0 0 ${d.width} ${d.height}`, role: "img",
      "aria-label": t("arch.summary", { layers: d.blocks.join("; "), total }), class: "arch-svg" });
    picture.append(d.group);
    box.append(canvas, picture);
    for (const h of d.hits) {
      const area = document.createElement("div");
      area.className = "arch-hit";
      area.dataset.index = String(h.index);
      area.style.left = `${h.x}px`; area.style.top = `${h.y}px`;
      area.style.width = `${h.w}px`; area.style.height = `${h.h}px`;
      area.setAttribute("role", "img");
      area.setAttribute("aria-label", h.label);
      explain(area, h.key);
      box.append(area);
    }
    stage.append(box);
    const caption = document.createElement("figcaption");
    caption.className = "arch-caption";
    caption.textContent = total;
    fig.append(stage, caption);
    this.root.append(fig);
  }

  /** Paint the live values of `frame` (or the drawing's resting colours without one). */
  paint(frame) {
    const d = this.drawing;
    if (!d || !this.canvas) return;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, d.width, d.height);
    const kind = frame?.header?.kind;
    const live = {
      arrays: frame?.arrays || {}, sample: kind === "image" ? this.sample() : 0,
      transform: frame?.header?.output_transform || "identity", data: this.data,
    };
    for (const p of d.painters) p(ctx, live);
  }

  /** A snapshot: repaint the live values. */
  draw(frame) {
    this.lastFrame = frame;
    if (this.root.hidden) return;
    const t0 = performance.now();
    this.paint(frame);
    const dt = performance.now() - t0;
    this.stats.count += 1; this.stats.total += dt; this.stats.max = Math.max(this.stats.max, dt);
  }
}
