/**
 * The decision boundary's frame: tick labels along both axes (the plane's coordinates x1 and x2)
 * and a colour legend under the map: the scale from the negative to the positive colour with
 * what its ends mean (the probability of class 1, or the predicted value), or one swatch per
 * class. Built inside a `figure.output-map` around its canvas; the colours come from the palette
 * of views/heatmap.js (`repaint()` after a palette change). Texts from the message tables.
 */

import { t } from "../i18n/index.js";
import { CLASS_COLOURS, colourOf } from "./heatmap.js";

const BAR_WIDTH = 120;

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(lo, hi, count = 6) {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

const fmt = (v) => (Math.abs(v) < 1e-12 ? "0" : String(Number(v.toPrecision(3))));

export class OutputLegend {
  constructor(figure) {
    this.figure = figure;
    figure.classList.add("with-axes");
    const canvas = figure.querySelector("canvas");
    this.yAxis = div("axis axis-y");
    this.xAxis = div("axis axis-x");
    for (const axis of [this.yAxis, this.xAxis]) axis.setAttribute("aria-hidden", "true");
    canvas.before(this.yAxis);
    canvas.after(this.xAxis);
    this.caption = figure.querySelector("figcaption") || figure.appendChild(document.createElement("figcaption"));
    this.caption.classList.add("legend");
    this.bar = document.createElement("canvas");
    this.bar.width = BAR_WIDTH; this.bar.height = 10;
    this.bar.className = "legend-bar";
    this.bar.setAttribute("aria-hidden", "true");
    this.spec = null;
  }

  /** The ticks of `extent` ({x, y}) and the legend of a task. */
  render(extent, { task, numClasses, valueScale = 1 }) {
    this.spec = { task, numClasses, valueScale };
    this.ticks(this.xAxis, extent.x, false);
    this.ticks(this.yAxis, extent.y, true);
    this.repaint();
  }

  ticks(axis, [lo, hi], vertical) {
    axis.textContent = "";
    for (const v of niceTicks(lo, hi)) {
      const tick = document.createElement("span");
      const at = ((v - lo) / (hi - lo)) * 100;
      if (vertical) tick.style.top = `${100 - at}%`; else tick.style.left = `${at}%`;
      tick.textContent = fmt(v);
      axis.append(tick);
    }
  }

  /** Redraw the legend in the palette in use. */
  repaint() {
    const spec = this.spec;
    const cap = this.caption;
    cap.textContent = "";
    if (!spec) return;
    const classes = spec.numClasses || 0;
    if (spec.task !== "regression" && classes > 2) {
      const title = span("legend-title", t("access.legend_classes"));
      cap.append(title);
      for (let c = 0; c < classes; c++) {
        const [r, g, b] = CLASS_COLOURS[c % CLASS_COLOURS.length];
        const item = span("legend-class", t("access.legend_class", { n: c }));
        const swatch = span("swatch", "");
        swatch.style.background = `rgb(${r},${g},${b})`;
        item.prepend(swatch);
        cap.append(item);
      }
      return;
    }
    const ctx = this.bar.getContext("2d");
    for (let x = 0; x < BAR_WIDTH; x++) {
      const [r, g, b] = colourOf((2 * x) / (BAR_WIDTH - 1) - 1);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(x, 0, 1, 10);
    }
    const regression = spec.task === "regression";
    const s = spec.valueScale;
    const [lo, mid, hi] = regression ? [fmt(-s), "0", fmt(s)] : ["0", "0.5", "1"];
    cap.append(span("legend-title", t(regression ? "access.legend_value" : "access.legend_probability")));
    const scale = span("legend-scale", "");
    const labels = span("legend-labels", "");
    labels.append(span("", lo), span("", mid), span("", hi));
    scale.append(this.bar, labels);
    cap.append(scale);
  }
}

function div(cls) {
  const el = document.createElement("div");
  el.className = cls;
  return el;
}

function span(cls, text) {
  const el = document.createElement("span");
  if (cls) el.className = cls;
  el.textContent = text;
  return el;
}
