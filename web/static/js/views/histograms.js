/**
 * Weight histograms: for every layer with parameters, the distribution of its weights (and of
 * their last gradients) as small bar charts over the bins' range. Draws `layer{i}.weight_hist`
 * and `layer{i}.grad_hist` (int32 counts over 32 bins, header `range`) of a snapshot.
 */

import { t } from "../i18n/index.js";
const W = 150;
const H = 46;

export class HistogramView {
  constructor(root) {
    this.root = root;
    this.items = new Map();
    this.title = document.createElement("h3");
    this.title.textContent = t("page.histograms");
  }

  reset() {
    this.root.textContent = "";
    this.items.clear();
  }

  item(name, label) {
    let it = this.items.get(name);
    if (it) return it;
    if (!this.items.size) this.root.append(this.title);
    const fig = document.createElement("figure");
    fig.className = "histogram";
    const canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    const cap = document.createElement("figcaption");
    fig.append(canvas, cap);
    this.root.append(fig);
    it = { canvas, cap, label };
    this.items.set(name, it);
    return it;
  }

  draw(frame) {
    const names = Object.keys(frame.arrays).filter((n) => n.endsWith(".weight_hist")).sort(
      (a, b) => parseInt(a.slice(5), 10) - parseInt(b.slice(5), 10));
    for (const name of names) {
      const layer = name.split(".")[0];
      const it = this.item(name, t("page.layer_n", { n: parseInt(layer.slice(5), 10) + 1 }));
      const weights = frame.arrays[name];
      const grads = frame.arrays[`${layer}.grad_hist`];
      const ctx = it.canvas.getContext("2d");
      ctx.clearRect(0, 0, W, H);
      bars(ctx, weights.data, "#0877bd", H - 12);
      if (grads) bars(ctx, grads.data, "rgba(245,147,34,0.6)", H - 12, true);
      const [lo, hi] = weights.meta.range || [0, 0];
      ctx.fillStyle = "#555";
      ctx.font = "9px sans-serif";
      ctx.fillText(lo.toFixed(2), 0, H - 1);
      const top = hi.toFixed(2);
      ctx.fillText(top, W - ctx.measureText(top).width, H - 1);
      it.cap.textContent = grads ? t("page.histogram_gradients", { label: it.label }) : it.label;
    }
  }
}

function bars(ctx, counts, colour, height, outline = false) {
  let max = 1;
  for (const c of counts) if (c > max) max = c;
  const bw = W / counts.length;
  ctx.fillStyle = colour;
  ctx.strokeStyle = colour;
  for (let i = 0; i < counts.length; i++) {
    const h = (counts[i] / max) * height;
    if (outline) ctx.strokeRect(i * bw + 1, height - h, bw - 2, h);
    else ctx.fillRect(i * bw + 0.5, height - h, bw - 1, h);
  }
}
