/**
 * The output of a network on two-dimensional data: the decision boundary (classification) or
 * the regression surface over the plane, with the training points and, on demand, the test
 * points. "Discretize" shows only which side of the boundary each point of the plane is on.
 *
 * Draws `output.boundary` (outputs, n, n) of a snapshot (docs/STREAM.md) and `data` of `hello`.
 */

import { CLASS_COLOURS, colourOf, GridPainter, lookupTable } from "./heatmap.js";

export class OutputView {
  /** `pointRadius`: the data points' radius in canvas pixels (smaller on a thumbnail). */
  constructor(canvas, { pointRadius = 3.2 } = {}) {
    this.canvas = canvas;
    this.pointRadius = pointRadius;
    this.ctx = canvas.getContext("2d");
    this.grid = document.createElement("canvas");
    this.painter = new GridPainter(this.grid);
    this.points = document.createElement("canvas");
    this.points.width = canvas.width; this.points.height = canvas.height;
    this.lut = new Uint32Array(256);
    this.data = null;
    this.options = { showTest: false, discretize: false };
    this.hasFrame = false;
  }

  /** The data of `hello`: points, labels, grid extent; and the task. */
  /** `curve`: the input is one number x (the `line` set): also draw the prediction y(x). */
  setData(data, { task, numClasses, curve = false }) {
    this.data = data;
    this.curve = curve;
    this.curvePoints = null;
    this.task = task;
    this.numClasses = numClasses;
    const labels = [...(data.labels_train || []), ...(data.labels_test || [])];
    this.valueScale = task === "regression" ? Math.max(1e-9, ...labels.map((v) => Math.abs(Array.isArray(v) ? v[0] : v))) : 1;
    this.hasFrame = false;
    this.drawPoints();
    this.compose();
  }

  setOptions(options) {
    const pointsChanged = options.showTest !== this.options.showTest;
    this.options = { ...this.options, ...options };
    if (pointsChanged) this.drawPoints();
    if (this.lastFrame) this.draw(this.lastFrame);
    else this.compose();
  }

  pointColour(label) {
    const v = Array.isArray(label) ? label[0] : label;
    if (this.task === "regression") return colourOf(v / this.valueScale);
    if ((this.numClasses || 2) <= 2) return colourOf(v >= 1 ? 1 : -1);
    return CLASS_COLOURS[v % CLASS_COLOURS.length];
  }

  toCanvas(x, y) {
    const g = this.data.grid || { x: this.data.domain, y: this.data.domain };
    const [x0, x1] = g.x; const [y0, y1] = g.y;
    return [(x - x0) / (x1 - x0) * this.canvas.width, (1 - (y - y0) / (y1 - y0)) * this.canvas.height];
  }

  drawPoints() {
    const ctx = this.points.getContext("2d");
    ctx.clearRect(0, 0, this.points.width, this.points.height);
    if (!this.data) return;
    const sets = [[this.data.points_train, this.data.labels_train, "#ffffff"]];
    if (this.options.showTest) sets.push([this.data.points_test, this.data.labels_test, "#000000"]);
    for (const [pts, labels, stroke] of sets) {
      if (!pts) continue;
      ctx.lineWidth = 1;
      ctx.strokeStyle = stroke;
      for (let k = 0; k < pts.length; k++) {
        const [x, y] = this.toCanvas(pts[k][0], pts[k][1]);
        const [r, g, b] = this.pointColour(labels[k]);
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.beginPath();
        ctx.arc(x, y, this.pointRadius, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
  }

  /** Draw one snapshot's output map. */
  draw(frame) {
    this.lastFrame = frame;
    const map = frame.arrays["output.boundary"];
    if (!map) return;
    const [outputs, h, w] = map.shape;
    const { min, max } = map.meta;
    const transform = frame.header.output_transform;
    const discrete = this.options.discretize;
    if (outputs === 1) {
      const scale = transform === "sigmoid" ? (p) => 2 * p - 1 : (v) => v / this.valueScale;
      this.painter.draw(map.data, 0, h, w, lookupTable(min[0], max[0], { scale, discrete, out: this.lut }));
      if (this.curve) {
        // Every row is the same function of x: row 0 is the prediction along x.
        const span = (max[0] - min[0]) / 255;
        this.curvePoints = Array.from(map.data.subarray(0, w), (q) => min[0] + span * q);
      }
    } else {
      this.drawClasses(map, outputs, h, w, discrete);
    }
    this.hasFrame = true;
    this.compose();
  }

  drawClasses(map, classes, h, w, discrete) {
    const n = h * w;
    const probs = [];
    for (let c = 0; c < classes; c++) {
      const t = new Float32Array(256);
      const lo = map.meta.min[c]; const span = (map.meta.max[c] - lo) / 255;
      for (let q = 0; q < 256; q++) t[q] = lo + span * q;
      probs.push(t);
    }
    if (this.grid.width !== w || this.grid.height !== h) { this.grid.width = w; this.grid.height = h; }
    const ctx = this.grid.getContext("2d");
    const image = ctx.createImageData(w, h);
    const px = image.data;
    for (let k = 0; k < n; k++) {
      let best = 0; let bestP = -1;
      for (let c = 0; c < classes; c++) {
        const p = probs[c][map.data[c * n + k]];
        if (p > bestP) { bestP = p; best = c; }
      }
      const [r, g, b] = CLASS_COLOURS[best % CLASS_COLOURS.length];
      const f = discrete ? 0.85 : Math.max(0.15, Math.min(1, (bestP - 1 / classes) / (1 - 1 / classes))) * 0.85;
      px[4 * k] = 232 + (r - 232) * f; px[4 * k + 1] = 234 + (g - 234) * f; px[4 * k + 2] = 235 + (b - 235) * f; px[4 * k + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    this.painter.image = null; // the painter's cached image no longer matches the canvas
  }

  compose() {
    const { ctx, canvas } = this;
    ctx.fillStyle = "#f4f5f6";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (this.hasFrame) {
      ctx.imageSmoothingEnabled = !this.options.discretize;
      ctx.drawImage(this.grid, 0, 0, canvas.width, canvas.height);
    }
    ctx.drawImage(this.points, 0, 0);
    if (this.hasFrame && this.curvePoints) {
      const g = this.data.grid || { x: this.data.domain };
      const n = this.curvePoints.length;
      ctx.strokeStyle = "#222";
      ctx.lineWidth = 2;
      ctx.beginPath();
      this.curvePoints.forEach((v, i) => {
        const x = g.x[0] + ((g.x[1] - g.x[0]) * i) / (n - 1);
        const [cx, cy] = this.toCanvas(x, v);
        if (i) ctx.lineTo(cx, cy); else ctx.moveTo(cx, cy);
      });
      ctx.stroke();
    }
  }

  reset() {
    this.lastFrame = null;
    this.hasFrame = false;
    this.compose();
  }
}
