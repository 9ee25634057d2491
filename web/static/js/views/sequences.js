/**
 * Sequence (and tabular) data: the model's predictions against the targets for four fixed
 * samples, the attention weights of every attention layer per head, and the hidden states of
 * recurrent layers over time. Draws `predictions`, `layer{i}.attention` and `layer{i}.hidden` of
 * a snapshot with `data.samples` of `hello` (docs/STREAM.md). Never fetches.
 */

import { t } from "../i18n/index.js";
import { colourOf, drawFloatGrid } from "./heatmap.js";

const PLOT_W = 220;
const PLOT_H = 70;

function heading(root, text) {
  const h = document.createElement("h3");
  h.textContent = text;
  root.append(h);
}

export class SequencesView {
  constructor(root) {
    this.root = root;
  }

  /** `kind`: "sequence" (inputs over time, or token ids when `tokens`) or "tabular" (rows). */
  setData(data, { task, classNames, kind = "sequence", tokens = false, tokenNames = null }) {
    this.root.textContent = "";
    this.tokenNames = tokenNames;
    this.task = task;
    this.classNames = classNames || [];
    this.samples = data.samples || { inputs: [], targets: [] };
    heading(this.root, t("page.predictions_sequences"));
    this.rows = this.samples.inputs.map((input, k) => {
      const row = document.createElement("div");
      row.className = "seq-row";
      const canvas = document.createElement("canvas");
      canvas.width = PLOT_W; canvas.height = PLOT_H;
      canvas.className = "seq-plot";
      const text = document.createElement("div");
      text.className = "seq-text";
      row.append(canvas, text);
      this.root.append(row);
      const series = input.map((step) => (Array.isArray(step) ? step[0] : step));
      // Token ids are names and a table row is not a curve: no line for them, only the bars.
      const item = { canvas, text, series, target: this.samples.targets[k], tokens, row: kind === "tabular" };
      this.plot(item, null);
      return item;
    });
    this.attentionRoot = document.createElement("div");
    this.attentionRoot.className = "attention";
    this.hiddenRoot = document.createElement("div");
    this.hiddenRoot.className = "hidden-states";
    this.root.append(this.attentionRoot, this.hiddenRoot);
    this.attention = new Map();
    this.hidden = new Map();
    this.onData?.(data, { classNames: this.classNames, tokenNames });  // the architecture drawing (views/arch.js)
  }

  /** The input series (scaled to the box), the target and the prediction after it. */
  plot(item, prediction) {
    const ctx = item.canvas.getContext("2d");
    ctx.clearRect(0, 0, PLOT_W, PLOT_H);
    const regression = this.task === "regression";
    const target = Array.isArray(item.target) ? item.target : [item.target];
    const pred = prediction ? Array.from(prediction) : [];
    const values = [...item.series, ...(regression ? [...target, ...pred] : [])];
    const lo = Math.min(...values); const hi = Math.max(...values);
    const span = hi - lo || 1;
    const n = item.series.length + (regression ? target.length : 0);
    const x = (i) => 4 + (i / Math.max(1, n - 1)) * (PLOT_W - 8);
    const y = (v) => PLOT_H - 6 - ((v - lo) / span) * (PLOT_H - 12);
    if (!item.tokens && !item.row) {
      ctx.strokeStyle = "#999"; ctx.lineWidth = 1.2;
      ctx.beginPath();
      item.series.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
      ctx.stroke();
    }
    if (regression) {
      const start = item.series.length;
      ctx.fillStyle = "#0877bd";
      target.forEach((v, j) => { ctx.beginPath(); ctx.arc(x(start + j), y(v), 3.5, 0, 7); ctx.fill(); });
      ctx.strokeStyle = "#f59322"; ctx.lineWidth = 2;
      pred.forEach((v, j) => {
        const cx = x(start + j); const cy = y(v);
        ctx.beginPath(); ctx.moveTo(cx - 4, cy - 4); ctx.lineTo(cx + 4, cy + 4); ctx.moveTo(cx + 4, cy - 4); ctx.lineTo(cx - 4, cy + 4); ctx.stroke();
      });
      const values = (list) => list.map((v) => v.toFixed(3)).join(", ");
      item.text.textContent = pred.length ? t("page.seq_values", { target: values(target), predicted: values(pred) })
        : t("page.seq_values_untrained", { target: values(target) });
    } else {
      const name = (c) => this.classNames[c] ?? String(c);
      let text = t("page.seq_class", { target: name(target[0]) });
      if (pred.length) {
        const probs = pred.length === 1 ? [1 - pred[0], pred[0]] : pred;
        let best = 0;
        probs.forEach((p, c) => { if (p > probs[best]) best = c; });
        text = t("page.seq_class_predicted", { target: name(target[0]), predicted: name(best), p: (100 * probs[best]).toFixed(0) });
        item.text.classList.toggle("wrong", best !== target[0]);
        // probability bars under the series
        const bw = (PLOT_W - 8) / probs.length;
        const barH = item.tokens || item.row ? PLOT_H - 16 : 18;
        probs.forEach((p, c) => {
          const [r, g, b] = colourOf(c === target[0] ? 1 : -1);
          ctx.fillStyle = `rgba(${r},${g},${b},0.8)`;
          ctx.fillRect(4 + c * bw, PLOT_H - 2 - p * barH, Math.max(1, bw - 2), p * barH);
          if ((item.tokens || item.row) && bw > 12) { ctx.fillStyle = "#666"; ctx.font = "9px sans-serif"; ctx.fillText(name(c), 4 + c * bw, 10); }
        });
      } else {
        text += "; press play";
      }
      const more = item.series.length > 8 ? " \u2026" : "";
      const token = (id) => this.tokenNames?.[id] ?? String(id);
      if (item.tokens) text = `tokens ${item.series.slice(0, 12).map(token).join(" ")}${more}; ${text}`;
      else if (item.row) text = `inputs ${item.series.slice(0, 8).map((v) => v.toFixed(2)).join(", ")}${more}; ${text}`;
      item.text.textContent = text;
    }
  }

  draw(frame) {
    const { arrays } = frame;
    const predictions = arrays.predictions;
    if (predictions && this.rows) {
      const [n, outputs] = predictions.shape;
      for (let k = 0; k < Math.min(n, this.rows.length); k++) {
        this.plot(this.rows[k], predictions.data.subarray(k * outputs, (k + 1) * outputs));
      }
    }
    for (const [name, array] of Object.entries(arrays)) {
      if (name.endsWith(".attention")) this.drawAttention(name, array);
      else if (name.endsWith(".hidden")) this.drawHidden(name, array);
    }
    this.onFrame?.(frame);  // the architecture drawing's live values (views/arch.js)
  }

  drawAttention(name, array) {
    const [heads, t1, t2] = array.shape;
    let entry = this.attention.get(name);
    if (!entry || entry.canvases.length !== heads) {
      entry?.el.remove();
      const el = document.createElement("figure");
      el.className = "attention-layer";
      const cap = document.createElement("figcaption");
      cap.textContent = t("page.attention_caption", { n: parseInt(name.slice(5), 10) + 1 });
      el.append(cap);
      const canvases = [];
      for (let h = 0; h < heads; h++) {
        const wrap = document.createElement("div");
        wrap.className = "head";
        const canvas = document.createElement("canvas");
        canvas.className = "attention-map";
        canvas.setAttribute("aria-label", t("page.head_n", { n: h + 1 }));
        const label = document.createElement("span");
        label.textContent = t("page.head_n", { n: h + 1 });
        wrap.append(canvas, label);
        el.append(wrap);
        canvases.push(canvas);
      }
      this.attentionRoot.append(el);
      entry = { el, canvases };
      this.attention.set(name, entry);
    }
    // Weights are in [0, 1]: white to blue, scaled to each head's largest weight so that a
    // head spread over many keys still shows where it looks most.
    const n = t1 * t2;
    for (let h = 0; h < heads; h++) {
      let top = 1e-9;
      for (let k = h * n; k < (h + 1) * n; k++) top = Math.max(top, array.data[k]);
      drawFloatGrid(entry.canvases[h], array.data, h * n, t1, t2, top);
      entry.canvases[h].title = t("page.head_title", { n: h + 1, w: top.toFixed(2) });
    }
  }

  drawHidden(name, array) {
    const [time, units] = array.shape;
    let canvas = this.hidden.get(name);
    if (!canvas) {
      const fig = document.createElement("figure");
      const cap = document.createElement("figcaption");
      cap.textContent = t("page.hidden_state_caption", { n: parseInt(name.slice(5), 10) + 1 });
      canvas = document.createElement("canvas");
      canvas.className = "hidden-map";
      fig.append(cap, canvas);
      this.hiddenRoot.append(fig);
      this.hidden.set(name, canvas);
    }
    // (time, units) drawn with time across: transpose into (units, time).
    const grid = new Float32Array(time * units);
    let scale = 1e-9;
    for (let i = 0; i < time; i++) for (let u = 0; u < units; u++) {
      const v = array.data[i * units + u];
      grid[u * time + i] = v;
      scale = Math.max(scale, Math.abs(v));
    }
    drawFloatGrid(canvas, grid, 0, units, time, scale);
  }
}
