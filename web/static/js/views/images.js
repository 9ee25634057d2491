/**
 * Image data: the first layer's filters, the feature maps of every layer with an image-shaped
 * output for one sample, and sample predictions with their probabilities. Draws `filters`,
 * `layer{i}.feature_maps` and `predictions` of a snapshot, with `data.samples` and
 * `data.test_grid` of `hello` (docs/STREAM.md). Never fetches.
 */

import { t } from "../i18n/index.js";
import { drawFloatGrid, drawGreyImage, GridPainter, lookupTable } from "./heatmap.js";

const flat = (nested) => Float32Array.from(nested.flat(Infinity));

function section(root, title, className) {
  const box = document.createElement("section");
  box.className = className;
  const h = document.createElement("h3");
  h.textContent = title;
  const body = document.createElement("div");
  body.className = "grid";
  box.append(h, body);
  root.append(box);
  return body;
}

function imageCanvas(values, offset, channels, h, w) {
  const canvas = document.createElement("canvas");
  if (channels === 3) {
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    let lo = Infinity; let hi = -Infinity;
    for (let k = 0; k < 3 * h * w; k++) { const v = values[offset + k]; lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const span = hi - lo || 1;
    for (let k = 0; k < h * w; k++) {
      for (let c = 0; c < 3; c++) img.data[4 * k + c] = 255 * (values[offset + c * h * w + k] - lo) / span;
      img.data[4 * k + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  } else {
    drawGreyImage(canvas, values, offset, h, w);
  }
  return canvas;
}

export class ImagesView {
  constructor(root) {
    this.root = root;
    this.sample = 0;
  }

  /** The `data` of hello and the class names. */
  setData(data, classNames) {
    this.root.textContent = "";
    this.classNames = classNames || [];
    this.samples = data.samples;
    this.testGrid = data.test_grid;
    this.filterBody = section(this.root, t("page.filters"), "filters");
    const mapsHead = section(this.root, t("page.feature_maps"), "feature-maps");
    this.sampleRow = document.createElement("div");
    this.sampleRow.className = "sample-picker";
    this.sampleRow.setAttribute("role", "radiogroup");
    this.sampleRow.setAttribute("aria-label", t("page.feature_sample"));
    mapsHead.before(this.sampleRow);
    if (this.samples?.images?.length) {
      const n = this.samples.images.length;
      const shape = [n, this.samples.images[0].length, this.samples.images[0][0].length, this.samples.images[0][0][0].length];
      const values = flat(this.samples.images);
      const size = shape[1] * shape[2] * shape[3];
      for (let s = 0; s < n; s++) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "sample";
        b.setAttribute("aria-label", `Show the feature maps of sample ${s + 1}`);
        b.setAttribute("aria-pressed", String(s === this.sample));
        b.append(imageCanvas(values, s * size, shape[1], shape[2], shape[3]));
        b.addEventListener("click", () => {
          this.sample = s;
          this.sampleRow.querySelectorAll("button").forEach((x, i) => x.setAttribute("aria-pressed", String(i === s)));
          if (this.lastFrame) this.draw(this.lastFrame);
        });
        this.sampleRow.append(b);
      }
    }
    this.mapsBody = mapsHead;
    this.layerRows = new Map();
    this.predBody = section(this.root, t("page.predictions_images"), "predictions");
    this.predItems = [];
    if (this.testGrid?.images?.length) {
      const imgs = this.testGrid.images;
      const c = imgs[0].length; const h = imgs[0][0].length; const w = imgs[0][0][0].length;
      const values = flat(imgs);
      imgs.forEach((_, k) => {
        const fig = document.createElement("figure");
        fig.className = "prediction";
        const cap = document.createElement("figcaption");
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.append(document.createElement("span"));
        fig.append(imageCanvas(values, k * c * h * w, c, h, w), cap, bar);
        this.predBody.append(fig);
        this.predItems.push({ fig, cap, bar: bar.firstChild, label: this.testGrid.labels?.[k] });
      });
    }
    this.onData?.(data, { classNames: this.classNames });  // the architecture drawing (views/arch.js)
  }

  draw(frame) {
    this.lastFrame = frame;
    const { arrays } = frame;
    if (arrays.filters) this.drawFilters(arrays.filters);
    const names = Object.keys(arrays).filter((n) => n.endsWith(".feature_maps"))
      .sort((a, b) => parseInt(a.slice(5), 10) - parseInt(b.slice(5), 10));
    for (const name of names) this.drawMaps(name, arrays[name]);
    if (arrays.predictions) this.drawPredictions(arrays.predictions);
    this.onFrame?.(frame);  // the architecture drawing's live values (views/arch.js)
  }

  drawFilters(array) {
    const [n, c, kh, kw] = array.shape;
    if (this.filterBody.childElementCount !== n) {
      this.filterBody.textContent = "";
      for (let k = 0; k < n; k++) {
        const canvas = document.createElement("canvas");
        canvas.className = "filter";
        canvas.title = t("page.filter_n", { n: k + 1 });
        this.filterBody.append(canvas);
      }
    }
    let scale = 1e-9;
    for (const v of array.data) scale = Math.max(scale, Math.abs(v));
    // The first input channel of each filter: blue positive, orange negative.
    [...this.filterBody.children].forEach((canvas, k) => drawFloatGrid(canvas, array.data, k * c * kh * kw, kh, kw, scale));
  }

  drawMaps(name, array) {
    const [channels, samples, h, w] = array.shape;
    let row = this.layerRows.get(name);
    if (!row || row.painters.length !== channels) {
      row?.el.remove();
      const el = document.createElement("div");
      el.className = "map-row";
      const label = document.createElement("span");
      label.className = "map-label";
      label.textContent = t("page.layer_n", { n: parseInt(name.slice(5), 10) + 1 });
      el.append(label);
      const painters = [];
      for (let ch = 0; ch < channels; ch++) {
        const canvas = document.createElement("canvas");
        canvas.className = "feature-map";
        canvas.title = t("page.channel_n", { layer: label.textContent, n: ch + 1 });
        el.append(canvas);
        painters.push(new GridPainter(canvas));
      }
      this.mapsBody.append(el);
      row = { el, painters, lut: new Uint32Array(256) };
      this.layerRows.set(name, row);
    }
    const s = Math.min(this.sample, samples - 1);
    for (let ch = 0; ch < channels; ch++) {
      const lo = array.meta.min[ch]; const hi = array.meta.max[ch];
      const scale = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
      lookupTable(lo, hi, { scale: (v) => v / scale, out: row.lut });
      row.painters[ch].draw(array.data, (ch * samples + s) * h * w, h, w, row.lut);
    }
  }

  drawPredictions(array) {
    const [n, outputs] = array.shape;
    for (let k = 0; k < Math.min(n, this.predItems.length); k++) {
      const item = this.predItems[k];
      let best = 0;
      for (let c = 1; c < outputs; c++) if (array.data[k * outputs + c] > array.data[k * outputs + best]) best = c;
      let p = array.data[k * outputs + best];
      if (outputs === 1) { p = array.data[k]; best = p >= 0.5 ? 1 : 0; p = best ? p : 1 - p; }
      const name = this.classNames[best] ?? String(best);
      const ok = item.label === undefined ? null : item.label === best;
      item.cap.textContent = `${name} ${(100 * p).toFixed(0)}%`;
      item.fig.classList.toggle("wrong", ok === false);
      item.fig.classList.toggle("right", ok === true);
      item.fig.title = t("page.image_title", { truth: this.classNames[item.label] ?? item.label, name, p: p.toFixed(3) });
      item.bar.style.width = `${(100 * p).toFixed(1)}%`;
    }
  }
}
