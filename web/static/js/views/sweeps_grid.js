/**
 * The sweep's small multiples: one tile per variant with its live decision boundary (the
 * output view of the main page at thumbnail size; other kinds of data show their loss curve
 * only), its loss curve, a label with its values on the axes, and its status, epoch and metric.
 * Tiles can be sorted by a metric; a tile's click opens the variant as a run (`onOpen(job)`).
 * Whether a tile is on screen is reported through `onVisible(job, visible)` (an
 * IntersectionObserver), so that the controller pauses the pictures of the tiles out of view.
 *
 * Drawing is batched: a tile's curve is redrawn at most once per animation frame. Never fetches.
 */

import { t } from "../i18n/index.js";
import { drawSparkline, thinned } from "./charts.js";
import { OutputView } from "./output.js";
import { shortNumber } from "./sweeps_dialog.js";

/** The pixel size of a tile's boundary canvas (its CSS size is set in sweeps.css). */
const MAP_PX = 112;

const SPLITS = { train: "chart.training", test: "chart.test", validation: "chart.validation" };
const NAMES = ["loss", "accuracy", "precision", "recall", "f1", "auc", "mae", "mse", "r2"];

/** "test_loss" as the reader's words ("test loss", "测试损失"); unknown names as they are. */
export function metricLabel(field) {
  const m = /^(train|test|validation)_(.+)$/.exec(field);
  if (!m) return field.replace(/_/g, " ");
  const name = NAMES.includes(m[2]) ? t(`sweeps.metric_name.${m[2]}`) : m[2].replace(/_/g, " ");
  return t("sweeps.metric", { split: t(SPLITS[m[1]]).toLowerCase(), name });
}

/** Lower is better for losses and errors; higher for the rest (accuracy, r2...). */
export const lowerIsBetter = (field) => /loss|error|mse|mae/.test(field);

/** "learning rate 0.01 · units 4": a variant's values on the axes. */
export function valuesLabel(axes, values) {
  return axes.map((a) => `${a.label} ${shortNumber(values?.[a.path])}`).join(" \u00b7 ");
}

class Tile {
  constructor(variant, index, axes, onOpen) {
    this.job = variant.job;
    this.index = index;
    this.values = variant.values || {};
    this.records = [];
    this.last = variant.metrics || {};
    this.status = variant.status;
    this.epoch = variant.epoch ?? 0;
    this.root = document.createElement("article");
    this.root.className = "sweep-tile";
    this.root.dataset.job = this.job;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "tile-open";
    const label = valuesLabel(axes, this.values);
    open.setAttribute("aria-label", t("sweeps.open_variant", { label }));
    open.title = t("sweeps.open_variant", { label });
    this.map = document.createElement("canvas");
    this.map.className = "tile-map";
    this.map.width = MAP_PX; this.map.height = MAP_PX;
    this.loss = document.createElement("canvas");
    this.loss.className = "tile-loss";
    this.loss.width = MAP_PX; this.loss.height = 40;
    open.append(this.map, this.loss);
    open.addEventListener("click", () => onOpen(this.job));
    this.label = document.createElement("div");
    this.label.className = "tile-label";
    this.label.textContent = label;
    this.info = document.createElement("div");
    this.info.className = "tile-info";
    this.root.append(open, this.label, this.info);
    this.output = new OutputView(this.map, { pointRadius: 1.4 });
    this.dirty = true;
    this.drewFrame = false;
  }

  hello(msg) {
    this.kind = msg.kind;
    this.records = [...(msg.metrics || [])];
    if (this.records.length) this.last = this.records[this.records.length - 1];
    if (msg.status?.status) this.status = msg.status.status;
    if (msg.kind === "points2d") {
      this.output.setData(msg.data || {}, { task: msg.task, numClasses: msg.num_classes });
    } else {
      this.map.hidden = true;
      this.loss.height = 80;
    }
    this.dirty = true;
  }

  metrics(points) {
    if (!points.length) return;
    this.records.push(...points);
    this.records = thinned(this.records, 2000);
    this.last = points[points.length - 1];
    this.epoch = this.last.epoch ?? this.epoch;
    this.dirty = true;
  }

  draw(frame) {
    if (frame.header.kind === "points2d" && !this.drewFrame) this.root.dataset.drawn = "true";
    if (frame.header.kind === "points2d") { this.output.draw(frame); this.drewFrame = true; }
    if (frame.header.epoch !== undefined) this.epoch = frame.header.epoch;
  }

  /** The variant's latest value of `field` (from its stream, else from the sweep's answer). */
  metric(field) {
    const v = this.last?.[field];
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }

  render(metricField) {
    if (this.dirty) { drawSparkline(this.loss, this.records, t("sweeps.no_epoch")); this.dirty = false; }
    const v = this.metric(metricField);
    const parts = [t("sweeps.epoch", { epoch: this.epoch ?? 0 })];
    if (v !== null) parts.push(`${metricLabel(metricField)} ${v.toFixed(3)}`);
    if (this.status && this.status !== "running") parts.push(t(`sweeps.status.${this.status}`));
    this.info.textContent = parts.join(" \u00b7 ");
    this.root.dataset.status = this.status || "";
  }
}

export class SweepGrid {
  constructor(root, { onOpen, onVisible }) {
    this.root = root;
    this.onOpen = onOpen;
    this.onVisible = onVisible;
    this.tiles = new Map();
    this.axes = [];
    this.metricField = "test_loss";
    this.order = "metric";
    this.pending = false;
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) this.onVisible(e.target.dataset.job, e.isIntersecting);
    }, { rootMargin: "80px" });
  }

  /** Start over with the sweep's variants ([{job, values, status, epoch, metrics}]). */
  reset(axes, variants) {
    this.observer.disconnect();
    this.root.textContent = "";
    this.tiles.clear();
    this.axes = axes;
    variants.forEach((v, k) => {
      const tile = new Tile(v, k, axes, this.onOpen);
      this.tiles.set(v.job, tile);
      this.root.append(tile.root);
      this.observer.observe(tile.root);
    });
    this.schedule();
  }

  tile(job) { return this.tiles.get(job); }

  /** Newer statuses and metrics from GET /api/sweeps/{id}. */
  update(variants) {
    for (const v of variants) {
      const tile = this.tiles.get(v.job);
      if (!tile) continue;
      if (v.status) tile.status = v.status;
      if (Number.isInteger(v.epoch) && v.epoch >= (tile.epoch ?? 0)) {
        tile.epoch = v.epoch;
        if (v.metrics && Object.keys(v.metrics).length) tile.last = { ...tile.last, ...v.metrics };
      }
    }
    this.schedule();
  }

  /** Sort by `field` ("order": the sweep's own order). */
  sortBy(field) {
    this.order = field;
    if (field !== "order") this.metricField = field;
    this.schedule();
  }

  /** The tiles in the shown order. */
  sorted() {
    const tiles = [...this.tiles.values()];
    if (this.order === "order") return tiles.sort((a, b) => a.index - b.index);
    const f = this.order;
    const sign = lowerIsBetter(f) ? 1 : -1;
    return tiles.sort((a, b) => {
      const x = a.metric(f); const y = b.metric(f);
      if (x === null || y === null) return (x === null) - (y === null) || a.index - b.index;
      return sign * (x - y) || a.index - b.index;
    });
  }

  /** The metric fields the variants have (test_loss, test_accuracy, ...), test ones first. */
  fields() {
    const names = new Set();
    for (const tile of this.tiles.values()) {
      for (const [k, v] of Object.entries(tile.last || {})) if (typeof v === "number" && /^(test|train|validation)_/.test(k)) names.add(k);
    }
    return [...names].sort((a, b) => (a.startsWith("test_") ? 0 : 1) - (b.startsWith("test_") ? 0 : 1) || a.localeCompare(b));
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const order = this.sorted();
      order.forEach((tile, k) => {
        tile.render(this.metricField);
        if (this.root.children[k] !== tile.root) this.root.insertBefore(tile.root, this.root.children[k] || null);
      });
      this.onRendered?.();
    });
  }

  destroy() {
    this.observer.disconnect();
    this.root.textContent = "";
    this.tiles.clear();
  }
}
