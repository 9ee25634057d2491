/**
 * Line charts over epochs (loss, accuracy, learning rate), drawn with the vendored uPlot.
 *
 * A chart takes its series once, then records: `append(records)` adds the metric records of a
 * `metrics` message (or the whole history of `hello`) and one redraw per animation frame draws
 * them. Records without a series' field leave a gap. Never fetches.
 *
 * A chart keeps at most MAX_CHART_POINTS points, evenly spread: past them every other point goes
 * (the first and the newest stay) and, from then on, a record closer than the points' spacing to
 * the one before the newest replaces the newest. A run left training for an hour (a lone job
 * trains thousands of epochs a second) would otherwise grow each chart by millions of points,
 * and every redraw with them. `thinned(records, max)` does the same to a plain list of records.
 *
 * Curve colours pass through the palette (views/heatmap.js paletteCss): `repaintCharts()`
 * redraws every live chart in the palette in use, with its data.
 */

import uPlot from "../../vendor/uplot-1.6.32/uPlot.esm.js";
import { t } from "../i18n/index.js";
import { paletteCss } from "./heatmap.js";

/** Points a chart keeps (two or three per pixel of the widest chart). */
export const MAX_CHART_POINTS = 4000;

/** `records` with every other one dropped (the first and the last kept) once there are more
 * than `max`; the list itself when there are not. */
export function thinned(records, max) {
  return records.length <= max ? records : everyOther(records);
}

/** Every other item of `list` from the first, and its last. */
function everyOther(list) {
  const last = list.length - 1;
  return list.filter((_, i) => i % 2 === 0 || i === last);
}

/** The charts on the page now (made and not destroyed). */
const LIVE = new Set();

/** Redraw every live chart in the palette in use (after setPalette). */
export function repaintCharts() {
  for (const chart of LIVE) chart.build();
}

/** The colours of the training, test and validation curves, on every page. */
export const CURVE_COLOURS = { training: "#555", test: "#0877bd", validation: "#f59322" };

/**
 * A small loss chart without axes (a card's thumbnail): the training and test loss over the
 * records' order, scaled to the canvas; `empty` is written in the middle while there is none.
 */
export function drawSparkline(canvas, records, empty) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const series = [["train_loss", CURVE_COLOURS.training], ["test_loss", CURVE_COLOURS.test]];
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const values = records.flatMap((r) => series.map(([k]) => r[k]).filter(finite));
  if (!values.length) {
    ctx.fillStyle = "#999";
    ctx.font = `${Math.max(10, w / 16)}px system-ui`;
    ctx.textAlign = "center";
    ctx.fillText(empty, w / 2, h / 2);
    return;
  }
  const top = Math.max(...values) * 1.05 || 1;
  const n = Math.max(records.length - 1, 1);
  for (const [key, colour] of series) {
    ctx.beginPath();
    let started = false;
    records.forEach((r, i) => {
      if (!finite(r[key])) return;
      const x = (i / n) * (w - 4) + 2;
      const y = h - 2 - (r[key] / top) * (h - 4);
      if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      started = true;
    });
    ctx.strokeStyle = paletteCss(colour);
    ctx.lineWidth = Math.max(1, w / 150);
    ctx.stroke();
  }
}

export class LineChart {
  /**
   * @param {HTMLElement} root
   * @param {{title: string, x?: string, series: {field: string, label: string, stroke: string, dash?: number[]}[], log?: boolean, spanGaps?: boolean}} options
   * `spanGaps: false` leaves a gap where a series has no value (runs compared side by side).
   */
  constructor(root, { title, x = "epoch", series, log = false, height = 130, spanGaps = true, legend = true, maxPoints = MAX_CHART_POINTS }) {
    this.root = root;
    this.xField = x;
    this.series = series;
    this.maxPoints = maxPoints;
    this.data = [[], ...series.map(() => [])];
    this.spacing = 0; // the x distance kept between points, once thinned
    this.provisional = false; // the newest point is closer than `spacing` to the one before
    this.pending = false;
    this.options = { title, x, log, height, spanGaps, legend };
    this.build();
    this.resizeObserver = new ResizeObserver(() => {
      const w = Math.max(200, this.root.clientWidth);
      if (Math.abs(w - this.plot.width) > 2) this.plot.setSize({ width: w, height });
    });
    this.resizeObserver.observe(root);
    LIVE.add(this);
  }

  /** (Re)make the plot with the data so far, its curves in the palette in use. */
  build() {
    const { title, x, log, height, spanGaps, legend } = this.options;
    const root = this.root;
    this.plot?.destroy();
    this.root.textContent = "";
    const width = Math.max(200, root.clientWidth || 300);
    this.plot = new uPlot({
      title,
      width,
      height,
      scales: { x: { time: false }, y: log ? { distr: 3 } : { auto: true } },
      axes: [{ label: x === "epoch" ? t("chart.epoch_axis") : x, size: 30, labelSize: 14 }, { size: 46 }],
      legend: { show: legend, live: false },
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [(u) => this.drawMarker(u)] }, // the timeline's epoch (controllers/timeline.js)
      series: [{ label: x }, ...this.series.map((s) => ({
        label: s.label, stroke: paletteCss(s.stroke), width: 1.5, dash: s.dash, spanGaps,
        value: (u, v) => (v == null ? "-" : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3)),
      }))],
    }, this.data, root);
  }

  /** Whether any record has one of this chart's fields. */
  static covers(records, fields) {
    return records.some((r) => fields.some((f) => r[f] !== undefined && r[f] !== null));
  }

  append(records) {
    for (const r of records) {
      const x = r[this.xField];
      if (x === undefined) continue;
      const xs = this.data[0]; // a new array after each thinning
      const last = xs.length - 1;
      // A record for the same x replaces the last one (a resumed job may repeat its last point),
      // and so does a newer one while the last is only standing in for the newest.
      const replace = last >= 0 && (xs[last] === x || (this.provisional && x > xs[last]));
      const at = replace ? last : xs.length;
      xs[at] = x;
      this.series.forEach((s, k) => {
        const v = r[s.field];
        this.data[k + 1][at] = typeof v === "number" && Number.isFinite(v) ? v : null;
      });
      this.provisional = at > 0 && x - xs[at - 1] < this.spacing;
      if (xs.length > this.maxPoints) this.thin();
    }
    this.schedule();
  }

  /** Drop every other point (the first and the newest stay); the spacing becomes theirs. */
  thin() {
    this.data = this.data.map(everyOther);
    const xs = this.data[0];
    this.spacing = xs.length > 1 ? (xs[xs.length - 1] - xs[0]) / (xs.length - 1) : 0;
    this.provisional = false;
  }

  clear() {
    this.data = [[], ...this.series.map(() => [])];
    this.spacing = 0;
    this.provisional = false;
    this.schedule();
  }

  /** A vertical line at x = `value` (the timeline's epoch), or none (null). */
  setMarker(value) {
    this.marker = Number.isFinite(value) ? value : null;
    this.plot.redraw(false);
  }

  drawMarker(u) {
    if (this.marker === null || this.marker === undefined) return;
    const x = Math.round(u.valToPos(this.marker, "x", true));
    const { top, height } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#d62728";
    ctx.lineWidth = Math.max(1, devicePixelRatio || 1);
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    ctx.restore();
  }

  get length() { return this.data[0].length; }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData(this.data);
    });
  }

  destroy() {
    LIVE.delete(this);
    this.resizeObserver.disconnect();
    this.plot.destroy();
  }
}
