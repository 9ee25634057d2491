/**
 * The sweep's summary chart: the latest value of a metric against the swept values. One axis:
 * a line over the axis values (a log axis when they span a factor of 20 or more); two axes: a
 * heatmap with one cell per pair of values, its number written in it; more axes: parallel
 * coordinates, one vertical axis per swept field and a last one for the metric. Colours go from
 * orange (worst) to blue (best), as on the rest of the page.
 *
 * `draw(axes, rows, field)`: axes [{path, label}], rows [{values: {path: value}, metric}]. The
 * canvas carries data-chart (line | heatmap | parallel) and data-drawn (variants with a value)
 * for the browser tests. Also `buildSweepPanel`: the sweep panel's heading, sort list, buttons,
 * tile grid and this chart's canvas. Never fetches.
 */

import { t } from "../i18n/index.js";
import { colourOf } from "./heatmap.js";
import { lowerIsBetter, metricLabel } from "./sweeps_grid.js";
import { shortNumber } from "./sweeps_dialog.js";

/** f in [0, 1] (1 = best) as the page's diverging colour: orange, light grey, blue. */
function shade(f) {
  const c = colourOf(2 * f - 1);
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Dark text on the light middle of the scale, white on its ends. */
const inkOn = (f) => (Math.abs(2 * f - 1) < 0.55 ? "#333" : "#fff");

/** The distinct values of an axis, in order (numbers ascending, others as first seen). */
function distinct(rows, path) {
  const seen = [];
  for (const r of rows) if (!seen.some((v) => v === r.values[path])) seen.push(r.values[path]);
  return seen.every((v) => typeof v === "number") ? seen.sort((a, b) => a - b) : seen;
}

/** A position in [0, 1] for each of `values`: log spacing for wide positive numbers, else by rank or value. */
function scaleOf(values) {
  const numeric = values.length > 1 && values.every((v) => typeof v === "number");
  if (!numeric) return (v) => (values.length > 1 ? values.indexOf(v) / (values.length - 1) : 0.5);
  const lo = values[0]; const hi = values[values.length - 1];
  const log = lo > 0 && hi / lo >= 20;
  const f = log ? Math.log : (x) => x;
  return (v) => (hi === lo ? 0.5 : (f(v) - f(lo)) / (f(hi) - f(lo)));
}

export class SweepChart {
  constructor(canvas, caption) {
    this.canvas = canvas;
    this.caption = caption;
    this.ctx = canvas.getContext("2d");
  }

  draw(axes, rows, field) {
    const { ctx, canvas } = this;
    const W = canvas.width; const H = canvas.height;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    const have = rows.filter((r) => typeof r.metric === "number" && Number.isFinite(r.metric));
    const kind = axes.length === 1 ? "line" : axes.length === 2 ? "heatmap" : "parallel";
    canvas.dataset.chart = kind;
    canvas.dataset.drawn = String(have.length);
    const name = metricLabel(field);
    this.caption.textContent = t(`sweeps.chart_${kind}`, { metric: name });
    if (!have.length) {
      ctx.fillStyle = "#999";
      ctx.textAlign = "center";
      ctx.fillText(t("sweeps.chart_waiting"), W / 2, H / 2);
      return;
    }
    const ms = have.map((r) => r.metric);
    const lo = Math.min(...ms); const hi = Math.max(...ms);
    const lower = lowerIsBetter(field);
    const goodness = (m) => (hi === lo ? 1 : lower ? (hi - m) / (hi - lo) : (m - lo) / (hi - lo));
    if (kind === "line") this.line(axes[0], have, lo, hi, name);
    else if (kind === "heatmap") this.heatmap(axes, rows, goodness);
    else this.parallel(axes, have, lo, hi, goodness, name);
  }

  line(axis, rows, lo, hi, name) {
    const { ctx, canvas } = this;
    const L = 52; const R = 12; const T = 14; const B = 34;
    const w = canvas.width - L - R; const h = canvas.height - T - B;
    const xs = distinct(rows, axis.path);
    const sx = scaleOf(xs);
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    const y0 = lo - pad; const y1 = hi + pad;
    const X = (v) => L + 10 + sx(v) * (w - 20);
    const Y = (m) => T + (1 - (m - y0) / (y1 - y0)) * h;
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(L, T, w, h);
    ctx.fillStyle = "#555";
    ctx.textAlign = "right";
    for (const m of [y0 + pad, (y0 + y1) / 2, y1 - pad]) ctx.fillText(shortNumber(m), L - 4, Y(m) + 4);
    ctx.textAlign = "center";
    for (const v of xs) ctx.fillText(shortNumber(v), X(v), T + h + 14);
    ctx.fillText(axis.label, L + w / 2, T + h + 28);
    ctx.save();
    ctx.translate(12, T + h / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(name, 0, 0);
    ctx.restore();
    // Several variants at one value (a random sweep, or seeds): the line joins their mean.
    const means = xs.map((v) => {
      const at = rows.filter((r) => r.values[axis.path] === v).map((r) => r.metric);
      return at.length ? at.reduce((a, b) => a + b, 0) / at.length : null;
    });
    ctx.strokeStyle = "#0877bd";
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    xs.forEach((v, k) => {
      if (means[k] === null) return;
      if (started) ctx.lineTo(X(v), Y(means[k])); else ctx.moveTo(X(v), Y(means[k]));
      started = true;
    });
    ctx.stroke();
    ctx.fillStyle = "#0877bd";
    for (const r of rows) { ctx.beginPath(); ctx.arc(X(r.values[axis.path]), Y(r.metric), 3.5, 0, 2 * Math.PI); ctx.fill(); }
  }

  heatmap(axes, rows, goodness) {
    const { ctx, canvas } = this;
    const [ax, ay] = axes;
    const xs = distinct(rows, ax.path); const ys = distinct(rows, ay.path);
    const L = 64; const R = 8; const T = 8; const B = 34;
    const cw = (canvas.width - L - R) / xs.length; const ch = (canvas.height - T - B) / ys.length;
    ctx.textAlign = "center";
    xs.forEach((x, i) => {
      ys.forEach((y, j) => {
        const at = rows.filter((r) => r.values[ax.path] === x && r.values[ay.path] === y && typeof r.metric === "number");
        const cx = L + i * cw; const cy = T + (ys.length - 1 - j) * ch;
        if (!at.length) {
          ctx.fillStyle = "#eee";
          ctx.fillRect(cx + 1, cy + 1, cw - 2, ch - 2);
          return;
        }
        const m = at.reduce((a, r) => a + r.metric, 0) / at.length;
        ctx.fillStyle = shade(goodness(m));
        ctx.fillRect(cx + 1, cy + 1, cw - 2, ch - 2);
        if (cw > 30 && ch > 14) { ctx.fillStyle = inkOn(goodness(m)); ctx.fillText(m.toFixed(3), cx + cw / 2, cy + ch / 2 + 4); }
      });
    });
    ctx.fillStyle = "#555";
    xs.forEach((x, i) => ctx.fillText(shortNumber(x), L + (i + 0.5) * cw, canvas.height - B + 14));
    ctx.fillText(ax.label, L + (canvas.width - L - R) / 2, canvas.height - 6);
    ctx.textAlign = "right";
    ys.forEach((y, j) => ctx.fillText(shortNumber(y), L - 4, T + (ys.length - 1 - j + 0.5) * ch + 4));
    ctx.save();
    ctx.translate(12, T + (canvas.height - T - B) / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center";
    ctx.fillText(ay.label, 0, 0);
    ctx.restore();
  }

  parallel(axes, rows, lo, hi, goodness, name) {
    const { ctx, canvas } = this;
    const T = 34; const B = 22; const L = 30; const R = 40;
    const n = axes.length + 1;
    const gap = (canvas.width - L - R) / (n - 1);
    const h = canvas.height - T - B;
    const scales = axes.map((a) => scaleOf(distinct(rows, a.path)));
    const ym = (m) => (hi === lo ? 0.5 : (m - lo) / (hi - lo));
    ctx.lineWidth = 1.5;
    for (const r of [...rows].sort((a, b) => goodness(a.metric) - goodness(b.metric))) {
      ctx.strokeStyle = shade(goodness(r.metric));
      ctx.beginPath();
      axes.forEach((a, k) => {
        const y = T + (1 - scales[k](r.values[a.path])) * h;
        if (k) ctx.lineTo(L + k * gap, y); else ctx.moveTo(L, y);
      });
      ctx.lineTo(L + axes.length * gap, T + (1 - ym(r.metric)) * h);
      ctx.stroke();
    }
    ctx.strokeStyle = "#888";
    ctx.fillStyle = "#555";
    ctx.textAlign = "center";
    [...axes.map((a) => a.label), name].forEach((label, k) => {
      const x = L + k * gap;
      ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, T + h); ctx.stroke();
      // Kept inside the canvas: the first and last labels would be cut at its edges.
      const half = Math.min(ctx.measureText(label).width, gap) / 2;
      ctx.fillText(label, Math.max(half + 2, Math.min(canvas.width - half - 2, x)), 14, gap);
    });
    axes.forEach((a, k) => {
      const vs = distinct(rows, a.path);
      ctx.fillText(shortNumber(vs[0]), L + k * gap, T + h + 14);
      ctx.fillText(shortNumber(vs[vs.length - 1]), L + k * gap, T - 4);
    });
    ctx.fillText(shortNumber(lo), L + axes.length * gap, T + h + 14);
    ctx.fillText(shortNumber(hi), L + axes.length * gap, T - 4);
  }
}

/**
 * Fill the sweep panel: heading, summary, "sort by", the pause / resume / stop / delete / close
 * buttons (`actions` by name), the error slot, the tiles' grid and the chart. Returns the
 * elements the controller feeds: {tiles, canvas, caption}.
 */
export function buildSweepPanel(panel, { onSort, actions }) {
  const make = (tag, props = {}) => Object.assign(document.createElement(tag), props);
  const head = make("div", { className: "sweeps-head" });
  const sort = make("select", { id: "sweep-sort" });
  sort.addEventListener("change", () => onSort(sort.value));
  const buttons = make("span", { className: "sweep-actions" });
  for (const name of ["pause", "resume", "stop", "delete", "hide"]) {
    const b = make("button", { type: "button", id: `sweep-${name}`, textContent: t(`sweeps.${name}`) });
    b.addEventListener("click", actions[name]);
    buttons.append(b);
  }
  head.append(
    make("h2", { id: "sweeps-heading", textContent: t("sweeps.heading") }),
    make("span", { id: "sweep-summary", className: "muted" }),
    make("label", { htmlFor: "sweep-sort", textContent: t("sweeps.sort_by") }), sort, buttons,
  );
  const error = make("span", { className: "error" });
  error.dataset.errorFor = "sweep";
  const tiles = make("div", { id: "sweep-tiles", className: "sweep-tiles" });
  const canvas = make("canvas", { id: "sweep-chart", width: 380, height: 260 });
  const caption = make("figcaption");
  const figure = make("figure", { className: "sweep-chart" });
  figure.append(canvas, caption);
  const body = make("div", { className: "sweep-body" });
  body.append(tiles, figure);
  panel.textContent = "";
  panel.setAttribute("aria-labelledby", "sweeps-heading");
  panel.append(head, error, body);
  return { tiles, canvas, caption };
}
