/**
 * The architecture drawn left to right, for images (and tables): every layer with an image
 * output [channels, height, width] as a volume in perspective, its channels stacked behind
 * each other as NN-SVG's LeNet style and CNN Explainer draw them, the live feature maps of the
 * chosen sample painted on the slices (`layer{i}.feature_maps`, the input image on the input
 * volume); convolution and pooling as the window on the volume before them; flatten as a
 * strip, dense layers and the output as compact columns of units (`layer{i}.units`). Under each
 * layer: its name, its shape ("8×8×8") and its parameter count.
 *
 * `flowDrawing(width, rows, info)` returns a `Drawing` (views/arch_parts.js).
 */

import { GridPainter, lookupTable } from "./heatmap.js";
import { absMax, cssOf, Drawing, drawUnits, EDGE, labelLines, MUTED, textWidth } from "./arch_parts.js";
import { t } from "../i18n/index.js";

const MAX_SLICES = 8;
const MIN_SLOT = 58;
const TOP = 8;

const side = (n, f) => Math.round(f * Math.min(96, 20 + 14 * Math.sqrt(n)));
const depth = (c, f) => (c <= 1 ? 0 : Math.round(f * Math.min(44, 6 + 6 * Math.log2(c))));

/** How each layer is drawn and how much room it takes at scale f. */
function shapeOf(row, f, output, names = []) {
  const s = row.output_shape || [];
  if (s.length === 3) {
    const [c, h, w] = s;
    const slices = Math.min(c, MAX_SLICES);
    const dh = side(h, f); const dw = side(w, f); const dd = depth(c, f);
    return { kind: "volume", c, h, w, dh, dw, dd, slices, bw: dw + dd, bh: dh + dd };
  }
  const n = s.length ? s[s.length - 1] * (s.length === 2 ? s[0] : 1) : 1;
  if (row.type === "flatten") return { kind: "strip", n, bw: 10, bh: Math.min(150, 24 + 12 * Math.log2(Math.max(2, n))) };
  const len = Math.min(150, 12 * n);
  const named = output && n <= 10 ? Math.max(0, ...names.slice(0, n).map((w) => textWidth(`${w} 100%`, 9))) : 0;
  return { kind: "units", n, bw: 14 + (named ? named + 6 : 0), bh: Math.max(24, len) };
}

/** The widths of the layers' slots at scale f: wide enough for the labels, or, staggered (every
 * other label one level lower), for half of them. */
function fit(rows, extras, f, staggered, names) {
  const gap = f < 0.8 ? 8 : 12;
  const shapes = rows.map((r) => shapeOf(r, f, r.appended, names));
  const slots = rows.map((r, i) => {
    const words = Math.max(...labelLines(r, { extra: extras[i] }).map((line) => textWidth(line))) + 8;
    return Math.max(shapes[i].bw + 8, MIN_SLOT * f, staggered ? 0.56 * words : words);
  });
  return { f, gap, shapes, slots, staggered, total: slots.reduce((a, b) => a + b, 0) + gap * (rows.length - 1) + 16 };
}

export function flowDrawing(width, rows, info) {
  const extras = rows.map((row) => (["conv2d", "maxpool2d", "avgpool2d"].includes(row.type) ? windowWords(info.layers[row.index]) : null));
  let layout = null;
  for (const staggered of [false, true]) {
    for (const f of staggered ? [1, 0.9, 0.8, 0.7, 0.6] : [1.35, 1.2, 1, 0.9, 0.8, 0.7, 0.6]) {
      layout = fit(rows, extras, f, staggered, info.outputNames);
      if (layout.total <= width) break;
    }
    if (layout.total <= width) break;
  }
  const { gap, shapes, slots, staggered, total } = layout;
  const d = new Drawing(Math.max(width, total));
  const tall = Math.max(...shapes.map((s) => s.bh));
  const mid = TOP + tall / 2;
  const labelY = TOP + tall + 16;
  const lines = Math.max(...extras.map((e) => (e ? 4 : 3)));
  const drop = 12 * lines + 6; // how much lower a staggered label sits
  let x = 8 + Math.max(0, (d.width - total) / 2);
  const boxes = [];
  rows.forEach((row, i) => {
    const s = shapes[i];
    const left = x + (slots[i] - s.bw) / 2;
    const box = { ...s, left, top: mid - s.bh / 2, slot: x };
    boxes.push(box);
    if (s.kind === "volume") volume(d, box, row, info);
    else if (s.kind === "strip") strip(d, box, row);
    else drawUnits(d, { x: left + 7, y: mid - s.bh / 2, length: s.bh, units: s.n, index: row.index, output: row.appended, names: info.outputNames });
    const low = staggered && i % 2 === 1;
    const cx = x + slots[i] / 2;
    if (low) d.line(cx, labelY - 8, cx, labelY + drop - 11, { stroke: "#c9d1d6", "stroke-width": 0.8 });
    d.label(cx, labelY + (low ? drop : 0), row, { extra: extras[i] });
    d.hit(x, TOP - 4, slots[i], labelY + (staggered ? drop : 0) + 12 * lines - TOP, row, { extra: extras[i] });
    if (i > 0) connect(d, boxes[i - 1], box, row, info, mid);
    x += slots[i] + gap;
  });
  d.height = labelY + 12 * lines + (staggered ? drop : 0) + 4;
  return d;
}

/** "3×3 window" for a convolution or a pooling layer, from its spec. */
function windowWords(spec) {
  const k = spec?.kernel_size ?? spec?.pool_size ?? 2;
  const [kh, kw] = Array.isArray(k) ? k : [k, k];
  return t("arch.window", { size: `${kh}\u00d7${kw}` });
}

function kernelOf(spec) {
  const k = spec?.kernel_size ?? spec?.pool_size ?? 2;
  return Array.isArray(k) ? k : [k, k];
}

/** The window of a convolution or pooling on the volume before it, and its lines (NN-SVG's pyramid). */
function connect(d, prev, box, row, info, mid) {
  const windowed = ["conv2d", "maxpool2d", "avgpool2d"].includes(row.type) && prev.kind === "volume" && box.kind === "volume";
  if (!windowed) {
    const x1 = prev.left + prev.bw + 3; const x2 = box.left - 3;
    if (x2 - x1 > 4) d.arrow(x1, mid, x2, mid);
    return;
  }
  const [kh, kw] = kernelOf(info.layers[row.index]);
  const fx = prev.left; const fy = prev.top + prev.dd; // the front slice of the volume before
  const ww = Math.max(3, prev.dw * Math.min(1, kw / prev.w));
  const wh = Math.max(3, prev.dh * Math.min(1, kh / prev.h));
  const wx = fx + prev.dw * 0.62 - ww / 2; const wy = fy + prev.dh * 0.3 - wh / 2;
  d.rect(wx, wy, ww, wh, { stroke: "#1f2a30", "stroke-width": 1.2 });
  const tx = box.left + box.dw * 0.62; const ty = box.top + box.dd + box.dh * 0.3;
  for (const [cx, cy] of [[wx + ww, wy], [wx + ww, wy + wh], [wx, wy]]) {
    d.line(cx, cy, tx, ty, { stroke: "#5d7f94", "stroke-width": 0.8, "stroke-dasharray": "2 1.5" });
  }
  d.circle(tx, ty, 1.6, { fill: "#1f2a30", stroke: "none" });
}

/** A volume: slices of dh×dw, one per shown channel, stacked up and to the right. */
function volume(d, box, row, info) {
  const { slices, dd, dh, dw } = box;
  const step = slices > 1 ? dd / (slices - 1) : 0;
  const at = (c) => [box.left + c * step, box.top + dd - c * step];
  // Outlines: the front slice whole, the ones behind only where they show (top and right).
  for (let c = slices - 1; c >= 1; c--) {
    const [x, y] = at(c);
    d.path(`M${x},${y + step} L${x},${y} L${x + dw},${y} L${x + dw},${y + dh} L${x + dw - step},${y + dh}`,
      { stroke: EDGE, "stroke-width": 0.7 });
  }
  const [fx, fy] = at(0);
  d.rect(fx, fy, dw, dh, { stroke: "#2b3338", "stroke-width": 1 });
  if (box.c > slices) d.text(at(slices - 1)[0] + dw + 3, at(slices - 1)[1] + 8, "\u2026", { "text-anchor": "start", fill: MUTED });
  const cache = new Map(); // channel -> {canvas, painter}
  const lut = new Uint32Array(256);
  d.paint((ctx, live) => {
    const maps = row.type === "input" ? null : live.arrays[`layer${row.index}.feature_maps`];
    ctx.imageSmoothingEnabled = false;
    for (let c = slices - 1; c >= 0; c--) {
      const [x, y] = at(c);
      const drawn = row.type === "input" ? inputSlice(ctx, live, c, x, y, dw, dh, cache)
        : mapSlice(ctx, maps, live.sample, c, x, y, dw, dh, cache, lut);
      if (!drawn) {
        ctx.fillStyle = c === 0 ? "#e4eaef" : c % 2 ? "#d5dde3" : "#dde4e9";
        ctx.fillRect(x, y, dw, dh);
      }
    }
  });
}

function slot(cache, c, h, w) {
  let s = cache.get(c);
  if (!s) {
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    s = { canvas, painter: new GridPainter(canvas) };
    cache.set(c, s);
  }
  return s;
}

/** Channel c of a layer's feature maps for the chosen sample, blue positive, orange negative. */
function mapSlice(ctx, maps, sample, c, x, y, dw, dh, cache, lut) {
  if (!maps) return false;
  const [channels, samples, h, w] = maps.shape;
  if (c >= channels) return false;
  const s = Math.min(sample, samples - 1);
  const lo = maps.meta.min[c]; const hi = maps.meta.max[c];
  const scale = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  lookupTable(lo, hi, { scale: (v) => v / scale, out: lut });
  const { canvas, painter } = slot(cache, c, h, w);
  painter.draw(maps.data, (c * samples + s) * h * w, h, w, lut);
  ctx.drawImage(canvas, x, y, dw, dh);
  return true;
}

/** Channel c of the chosen sample image (grey, dark is high, as the page's thumbnails). */
function inputSlice(ctx, live, c, x, y, dw, dh, cache) {
  const images = live.data?.samples?.images;
  if (!images?.length) return false;
  const img = images[Math.min(live.sample, images.length - 1)][c];
  if (!img) return false;
  const h = img.length; const w = img[0].length;
  const key = `in${live.sample}:${c}`;
  let s = cache.get(key);
  if (!s) {
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const flat = img.flat();
    let lo = Infinity; let hi = -Infinity;
    for (const v of flat) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const g = canvas.getContext("2d");
    const data = g.createImageData(w, h);
    flat.forEach((v, k) => {
      const q = Math.round(255 - 255 * (v - lo) / (hi - lo || 1));
      data.data.set([q, q, q, 255], 4 * k);
    });
    g.putImageData(data, 0, 0);
    s = { canvas };
    cache.set(key, s);
  }
  ctx.drawImage(s.canvas, x, y, dw, dh);
  return true;
}

/** Flatten: a thin strip, its first units coloured by their values for the chosen sample. */
function strip(d, box, row) {
  const { left, top, bw, bh } = box;
  d.rect(left, top, bw, bh, { stroke: "#2b3338" });
  d.paint((ctx, live) => {
    const arr = live.arrays[`layer${row.index}.units`];
    if (!arr) { ctx.fillStyle = "#e4eaef"; ctx.fillRect(left, top, bw, bh); return; }
    const [samples, sent] = arr.shape;
    const s = Math.min(live.sample, samples - 1);
    const scale = absMax(arr.data, s * sent, (s + 1) * sent);
    const cell = bh / sent;
    for (let k = 0; k < sent; k++) {
      ctx.fillStyle = cssOf(arr.data[s * sent + k] / scale);
      ctx.fillRect(left, top + k * cell, bw, Math.ceil(cell));
    }
  });
}

