/**
 * The output of a network on two-dimensional data: the decision boundary (classification) or
 * the regression surface over the plane, with the training points and, on demand, the test
 * points. "Discretize" shows only which side of the boundary each point of the plane is on, with
 * crisp edges: the map's values are interpolated to the canvas's pixels before the threshold, so
 * the edge is a smooth curve, not the staircase of the server's grid.
 *
 * Inside a `figure.output-map` (the page, the job view) it also draws the axes' tick labels and a
 * colour legend (views/output_legend.js). The colours follow the palette of views/heatmap.js: a
 * palette change is picked up by the next draw or compose.
 *
 * Draws `output.boundary` (outputs, n, n) of a snapshot (docs/STREAM.md) and `data` of `hello`.
 * The glass box (controllers/inspector.js) adds an overlay (a hovered neuron's heatmap drawn in
 * place of the boundary: `setOverlay`) and marks (the picked point and its gradient arrow:
 * `setMarks`); `planeAt` and `nearestPoint` turn a click into a point of the plane or a sample.
 */

import { CLASS_COLOURS, colourOf, GridPainter, lookupTable, midColour, paletteName } from "./heatmap.js";
import { OutputLegend } from "./output_legend.js";

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
    this.fine = null;        // the discretized map at the canvas's size (ImageData)
    this.useFine = false;
    this.lut = new Uint32Array(256);
    this.data = null;
    this.options = { showTest: false, discretize: false };
    this.hasFrame = false;
    this.palette = paletteName();
    const figure = canvas.closest?.("figure.output-map");
    this.legend = figure ? new OutputLegend(figure) : null;
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
    this.legend?.render(this.extent(), { task, numClasses, valueScale: this.valueScale });
    this.compose();
  }

  setOptions(options) {
    const pointsChanged = options.showTest !== undefined && options.showTest !== this.options.showTest;
    this.options = { ...this.options, ...options };
    if (pointsChanged) this.drawPoints();
    if (this.lastFrame) this.draw(this.lastFrame);
    else this.compose();
  }

  /** The plane's extent: {x: [lo, hi], y: [lo, hi]}. */
  extent() {
    return this.data?.grid || { x: this.data?.domain || [-1, 1], y: this.data?.domain || [-1, 1] };
  }

  pointColour(label) {
    const v = Array.isArray(label) ? label[0] : label;
    if (this.task === "regression") return colourOf(v / this.valueScale);
    if ((this.numClasses || 2) <= 2) return colourOf(v >= 1 ? 1 : -1);
    return CLASS_COLOURS[v % CLASS_COLOURS.length];
  }

  toCanvas(x, y) {
    const g = this.extent();
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

  /** The palette changed since the last drawing: the points and the legend take it now. */
  takePalette() {
    if (this.palette === paletteName()) return false;
    this.palette = paletteName();
    this.drawPoints();
    this.legend?.repaint();
    return true;
  }

  /** Draw one snapshot's output map. */
  draw(frame) {
    this.takePalette();
    this.lastFrame = frame;
    const map = frame.arrays["output.boundary"];
    if (!map) return;
    const [outputs, h, w] = map.shape;
    const { min, max } = map.meta;
    const transform = frame.header.output_transform;
    const discrete = this.options.discretize;
    this.useFine = false;
    if (outputs === 1) {
      const scale = transform === "sigmoid" ? (p) => 2 * p - 1 : (v) => v / this.valueScale;
      if (discrete) {
        // The side of the boundary: value >= 0.5 (a probability) or >= 0, as a code threshold.
        const zero = transform === "sigmoid" ? 0.5 : 0;
        const span = (max[0] - min[0]) / 255;
        const qc = span > 0 ? (zero - min[0]) / span : (scale(min[0]) >= 0 ? -1 : 256);
        this.drawFine(map.data, h, w, 1, (v) => (v[0] >= qc ? 1 : 0), [colourOf(-1), colourOf(1)], [(q) => q]);
      } else {
        this.painter.draw(map.data, 0, h, w, lookupTable(min[0], max[0], { scale, out: this.lut }));
      }
      if (this.curve) {
        // Every row is the same function of x: row 0 is the prediction along x.
        const span = (max[0] - min[0]) / 255;
        this.curvePoints = Array.from(map.data.subarray(0, w), (q) => min[0] + span * q);
      }
    } else if (discrete) {
      const colours = Array.from({ length: outputs }, (_, c) => mix(CLASS_COLOURS[c % CLASS_COLOURS.length], 0.85));
      const toProb = Array.from({ length: outputs }, (_, c) => {
        const lo = map.meta.min[c]; const span = (map.meta.max[c] - lo) / 255;
        return (q) => lo + span * q;
      });
      this.drawFine(map.data, h, w, outputs, argmax, colours, toProb);
    } else {
      this.drawClasses(map, outputs, h, w);
    }
    this.hasFrame = true;
    this.compose();
  }

  /**
   * The map at the canvas's own resolution: each canvas pixel's value is interpolated
   * (bilinearly) from the grid's points, then `pick(values)` chooses one of `colours`: crisp,
   * smooth edges. `toValue[c]` turns map c's codes into comparable values.
   */
  drawFine(codes, h, w, maps, pick, colours, toValue) {
    const W = this.canvas.width; const H = this.canvas.height;
    if (!this.fine || this.fine.width !== W || this.fine.height !== H) {
      this.fine = this.ctx.createImageData(W, H);
      this.finePixels = new Uint32Array(this.fine.data.buffer);
      this.fineCanvas = document.createElement("canvas");
      this.fineCanvas.width = W; this.fineCanvas.height = H;
    }
    const px = this.finePixels;
    const n = h * w;
    // Each map's values once, and where each canvas column falls between two grid columns
    // (grid point i sits at i / (w - 1) of the extent; pixel centres at (x + 0.5) / W).
    const maps32 = Array.from({ length: maps }, (_, c) => {
      const f = toValue[c]; const out = new Float32Array(n);
      for (let k = 0; k < n; k++) out[k] = f(codes[c * n + k]);
      return out;
    });
    const i0s = new Int32Array(W); const fxs = new Float32Array(W);
    for (let x = 0; x < W; x++) {
      const gx = Math.min(w - 1, Math.max(0, ((x + 0.5) / W) * (w - 1)));
      i0s[x] = Math.min(w - 2, Math.floor(gx)); fxs[x] = gx - i0s[x];
    }
    const packed = colours.map(packOf);
    const values = new Float64Array(maps);
    const one = maps === 1 ? maps32[0] : null;
    for (let y = 0; y < H; y++) {
      const gy = Math.min(h - 1, Math.max(0, ((y + 0.5) / H) * (h - 1)));
      const j0 = Math.min(h - 2, Math.floor(gy)); const fy = gy - j0;
      const row = j0 * w; const out = y * W;
      for (let x = 0; x < W; x++) {
        const k = row + i0s[x]; const fx = fxs[x];
        if (one) {
          const top = one[k] + (one[k + 1] - one[k]) * fx;
          const bottom = one[k + w] + (one[k + w + 1] - one[k + w]) * fx;
          values[0] = top + (bottom - top) * fy;
        } else {
          for (let c = 0; c < maps; c++) {
            const m = maps32[c];
            const top = m[k] + (m[k + 1] - m[k]) * fx;
            const bottom = m[k + w] + (m[k + w + 1] - m[k + w]) * fx;
            values[c] = top + (bottom - top) * fy;
          }
        }
        px[out + x] = packed[pick(values)];
      }
    }
    this.fineCanvas.getContext("2d").putImageData(this.fine, 0, 0);
    this.useFine = true;
  }

  drawClasses(map, classes, h, w) {
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
    const [m0, m1, m2] = midColour();
    for (let k = 0; k < n; k++) {
      let best = 0; let bestP = -1;
      for (let c = 0; c < classes; c++) {
        const p = probs[c][map.data[c * n + k]];
        if (p > bestP) { bestP = p; best = c; }
      }
      const [r, g, b] = CLASS_COLOURS[best % CLASS_COLOURS.length];
      const f = Math.max(0.15, Math.min(1, (bestP - 1 / classes) / (1 - 1 / classes))) * 0.85;
      px[4 * k] = m0 + (r - m0) * f; px[4 * k + 1] = m1 + (g - m1) * f; px[4 * k + 2] = m2 + (b - m2) * f; px[4 * k + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    this.painter.image = null; // the painter's cached image no longer matches the canvas
  }

  compose() {
    if (this.takePalette() && this.lastFrame) { this.draw(this.lastFrame); return; }
    const { ctx, canvas } = this;
    ctx.fillStyle = "#f4f5f6";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (this.hasFrame && this.useFine) {
      ctx.drawImage(this.fineCanvas, 0, 0);
    } else if (this.hasFrame) {
      // Grid point j lies at j / (n - 1) of the extent: the source's pixel centres span the canvas.
      const { width: w, height: h } = this.grid;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.grid, 0.5, 0.5, Math.max(1, w - 1), Math.max(1, h - 1), 0, 0, canvas.width, canvas.height);
    }
    if (this.overlay) {
      const { width: w, height: h } = this.overlay;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.overlay, 0.5, 0.5, Math.max(1, w - 1), Math.max(1, h - 1), 0, 0, canvas.width, canvas.height);
    }
    ctx.drawImage(this.points, 0, 0);
    if (this.hasFrame && this.curvePoints) {
      const g = this.extent();
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
    this.drawMarks();
  }

  /** Draw `canvas` (a neuron's heatmap over the same plane) instead of the output; null: back. */
  setOverlay(canvas) {
    if ((canvas || null) === (this.overlay || null)) return;
    this.overlay = canvas || null;
    this.compose();
  }

  /** The picked point ([x, y]) and an arrow from it (a direction in the plane), or nulls. */
  setMarks({ point = null, arrow = null } = {}) {
    this.marks = { point, arrow };
    this.compose();
  }

  drawMarks() {
    const m = this.marks;
    if (!m?.point || !this.data) return;
    const { ctx } = this;
    const [cx, cy] = this.toCanvas(m.point[0], m.point[1]);
    ctx.save();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#111";
    ctx.beginPath();
    ctx.arc(cx, cy, this.pointRadius + 4, 0, 2 * Math.PI);
    ctx.moveTo(cx - 10, cy); ctx.lineTo(cx - 4, cy); ctx.moveTo(cx + 4, cy); ctx.lineTo(cx + 10, cy);
    ctx.moveTo(cx, cy - 10); ctx.lineTo(cx, cy - 4); ctx.moveTo(cx, cy + 4); ctx.lineTo(cx, cy + 10);
    ctx.stroke();
    const [gx, gy] = m.arrow || [0, 0];
    const norm = Math.hypot(gx, gy);
    if (norm > 0) {
      // Screen y grows downwards: a plane direction (gx, gy) is (gx, -gy) on the canvas.
      const len = 0.12 * this.canvas.width;
      const ex = cx + (gx / norm) * len; const ey = cy - (gy / norm) * len;
      const a = Math.atan2(ey - cy, ex - cx);
      ctx.strokeStyle = "#111"; ctx.fillStyle = "#111"; ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.moveTo(cx, cy); ctx.lineTo(ex, ey); ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(ex, ey);
      ctx.lineTo(ex - 9 * Math.cos(a - 0.45), ey - 9 * Math.sin(a - 0.45));
      ctx.lineTo(ex - 9 * Math.cos(a + 0.45), ey - 9 * Math.sin(a + 0.45));
      ctx.closePath(); ctx.fill();
    }
    ctx.restore();
  }

  /** The point of the plane under canvas pixel (px, py). */
  planeAt(px, py) {
    const g = this.extent();
    return [g.x[0] + (px / this.canvas.width) * (g.x[1] - g.x[0]),
      g.y[1] - (py / this.canvas.height) * (g.y[1] - g.y[0])];
  }

  /** The shown sample nearest canvas pixel (px, py) within `radius` px: {split, index} or null. */
  nearestPoint(px, py, radius = 6) {
    if (!this.data) return null;
    let best = null; let bestD = radius;
    const sets = [["train", this.data.points_train]];
    if (this.options.showTest) sets.unshift(["test", this.data.points_test]);
    for (const [split, pts] of sets) {
      (pts || []).forEach((p, index) => {
        const [x, y] = this.toCanvas(p[0], p[1]);
        const d = Math.hypot(x - px, y - py);
        if (d < bestD) { bestD = d; best = { split, index }; }
      });
    }
    return best;
  }

  reset() {
    this.lastFrame = null;
    this.hasFrame = false;
    this.useFine = false;
    this.compose();
  }
}

/** [r, g, b] as one RGBA pixel of a Uint32Array view (in the machine's byte order). */
function packOf([r, g, b]) {
  return new Uint32Array(new Uint8ClampedArray([r, g, b, 255]).buffer)[0];
}

/** The index of the largest value. */
function argmax(values) {
  let best = 0;
  for (let c = 1; c < values.length; c++) if (values[c] > values[best]) best = c;
  return best;
}

/** A class colour `f` of the way from the scale's middle (near white) to it. */
function mix(colour, f) {
  const mid = midColour();
  return colour.map((v, i) => mid[i] + (v - mid[i]) * f);
}
