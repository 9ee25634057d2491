/**
 * Heatmaps: the colour scale (orange for negative, white near zero, blue for positive, as in
 * TF Playground; or a colour-blind-safe pair, see PALETTES) and drawing quantized uint8 grids
 * onto canvases, fast.
 *
 * A grid arrives as uint8 codes q with a per-map (min, max): value = min + (max - min) * q / 255
 * (docs/STREAM.md). For each map a 256-entry lookup table of packed RGBA turns codes into pixels
 * with one typed-array write per pixel; no per-pixel maths, no allocation per frame.
 *
 * `setPalette(name)` switches every colour this module hands out (the scale, the class colours,
 * the CSS colours of links and curves); the views redraw their last frame afterwards. The choice
 * is kept in localStorage, so that every page of this browser (the job view, the teacher's
 * thumbnails) draws with it. Nothing here fetches.
 */

/**
 * The palettes. `default`: TF Playground's orange and blue. `cb`: ColorBrewer's PuOr ends
 * (orange #e66101, purple #5e3c99), told apart with any of the three colour-vision deficiencies
 * and in grey, and the Okabe-Ito colours for classes. `css` maps the default page colours (the
 * curves, the accents) to this palette's.
 */
export const PALETTES = {
  default: {
    neg: [245, 147, 34], mid: [232, 234, 235], pos: [8, 119, 189],
    classes: [
      [245, 147, 34], [8, 119, 189], [76, 175, 80], [156, 39, 176], [233, 30, 99],
      [0, 150, 136], [121, 85, 72], [96, 125, 139], [255, 193, 7], [63, 81, 181],
    ],
    css: {},
  },
  cb: {
    neg: [230, 97, 1], mid: [247, 247, 247], pos: [94, 60, 153],
    classes: [
      [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178],
      [213, 94, 0], [204, 121, 167], [0, 0, 0], [153, 153, 153], [94, 60, 153],
    ],
    css: { "#0877bd": "#5e3c99", "#f59322": "#e66101" },
  },
};
export const PALETTE_NAMES = Object.keys(PALETTES);
const STORAGE_KEY = "playground.palette";

let NEG = PALETTES.default.neg;
let MID = PALETTES.default.mid;
let POS = PALETTES.default.pos;
let current = "default";

// The class palette for more than two classes and for points (changed in place by setPalette).
export const CLASS_COLOURS = PALETTES.default.classes.map((c) => [...c]);

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function pack(r, g, b, a = 255) {
  return littleEndian ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
}

/** The colour of a value in [-1, 1] (clamped) as [r, g, b]. */
export function colourOf(t) {
  const x = Math.max(-1, Math.min(1, t));
  const [a, b] = x < 0 ? [MID, NEG] : [MID, POS];
  const f = Math.abs(x);
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f].map(Math.round);
}

// Precomputed colours over [-1, 1]: frames index these instead of mixing colours per value.
const STEPS = 1024;
const PACKED = new Uint32Array(STEPS);
const CSS_CACHE = new Map();
function precompute() {
  for (let i = 0; i < STEPS; i++) {
    const [r, g, b] = colourOf((2 * i) / (STEPS - 1) - 1);
    PACKED[i] = pack(r, g, b);
  }
  CSS_CACHE.clear();
}
precompute();

/** The palette in use ("default" or "cb"). */
export function paletteName() { return current; }

/** The palette this browser chose last (localStorage), or null. */
export function storedPalette() {
  try {
    const name = globalThis.localStorage?.getItem(STORAGE_KEY);
    return Object.hasOwn(PALETTES, name || "") ? name : null;
  } catch {
    return null; // storage refused (a sandboxed frame): the default
  }
}

/**
 * Use palette `name` from now on (unknown names fall back to the default); `remember` keeps it
 * in localStorage. Marks <html data-palette> for the CSS. Returns whether anything changed.
 */
export function setPalette(name, { remember = false } = {}) {
  const next = Object.hasOwn(PALETTES, name) ? name : "default";
  if (remember) {
    try { globalThis.localStorage?.setItem(STORAGE_KEY, next); } catch { /* not kept */ }
  }
  if (globalThis.document?.documentElement) document.documentElement.dataset.palette = next;
  if (next === current) return false;
  const p = PALETTES[next];
  current = next;
  [NEG, MID, POS] = [p.neg, p.mid, p.pos];
  CLASS_COLOURS.splice(0, CLASS_COLOURS.length, ...p.classes.map((c) => [...c]));
  precompute();
  return true;
}

/** A page colour (CSS hex of the default palette) as the palette in use draws it. */
export function paletteCss(css) {
  return PALETTES[current].css[String(css).toLowerCase()] || css;
}

/** The near-white of the scale's middle, as [r, g, b]. */
export function midColour() { return [...MID]; }
const indexOf = (t) => {
  const i = Math.round(((t + 1) * (STEPS - 1)) / 2);
  return i < 0 ? 0 : i >= STEPS ? STEPS - 1 : i | 0;
};

/** A CSS colour for a value in [-1, 1] (cached: links are drawn with a few hundred per frame). */
export function cssColourOf(t, alpha = 1) {
  const key = Math.round(Math.max(-1, Math.min(1, t)) * 100) * 10 + Math.round(alpha * 9);
  let css = CSS_CACHE.get(key);
  if (!css) {
    const [r, g, b] = colourOf(Math.round(Math.max(-1, Math.min(1, t)) * 100) / 100);
    css = `rgba(${r},${g},${b},${alpha})`;
    CSS_CACHE.set(key, css);
  }
  return css;
}

/**
 * A 256-entry table (Uint32, packed RGBA) for codes of a map with the given value range.
 * `scale(value)` maps a value to [-1, 1]; `discrete` rounds that to -1 or +1.
 */
export function lookupTable(min, max, { scale = (v) => v, discrete = false, out } = {}) {
  const lut = out || new Uint32Array(256);
  const span = (max - min) / 255;
  for (let q = 0; q < 256; q++) {
    let t = scale(min + span * q);
    if (discrete) t = t >= 0 ? 1 : -1;
    lut[q] = PACKED[indexOf(t)];
  }
  return lut;
}

/** A table that colours code q (0..255 = probability 0..1) of class `cls` by confidence. */
export function classTable(cls, { discrete = false } = {}) {
  const lut = new Uint32Array(256);
  const [r, g, b] = CLASS_COLOURS[cls % CLASS_COLOURS.length];
  for (let q = 0; q < 256; q++) {
    const f = discrete ? 1 : 0.25 + 0.75 * (q / 255);
    lut[q] = pack(Math.round(MID[0] + (r - MID[0]) * f), Math.round(MID[1] + (g - MID[1]) * f),
      Math.round(MID[2] + (b - MID[2]) * f));
  }
  return lut;
}

/**
 * Draws one (h, w) map of uint8 codes into `canvas` (whose width and height must be w and h;
 * CSS scales it). `codes` is a Uint8Array view, `offset` where the map starts in it.
 */
export class GridPainter {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.image = null;
    this.pixels = null;
  }

  draw(codes, offset, h, w, lut) {
    if (codes.length < offset + h * w) {
      throw new Error(`heatmap: expected ${h}x${w} codes from offset ${offset}, got an array of ${codes.length}`);
    }
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.image = null;
    }
    if (!this.image) {
      this.image = this.ctx.createImageData(w, h);
      this.pixels = new Uint32Array(this.image.data.buffer);
    }
    const px = this.pixels;
    const n = h * w;
    for (let k = 0; k < n; k++) px[k] = lut[codes[offset + k]];
    this.ctx.putImageData(this.image, 0, 0);
  }

  /** For multi-class maps: each pixel takes the colour of its most probable class. */
  drawArgmax(codes, h, w, classes, luts) {
    const n = h * w;
    if (codes.length < classes * n) throw new Error(`heatmap: expected ${classes} maps of ${h}x${w}`);
    if (this.canvas.width !== w || this.canvas.height !== h || !this.image) {
      this.canvas.width = w; this.canvas.height = h;
      this.image = this.ctx.createImageData(w, h);
      this.pixels = new Uint32Array(this.image.data.buffer);
    }
    const px = this.pixels;
    for (let k = 0; k < n; k++) {
      let best = 0; let bestQ = codes[k];
      for (let c = 1; c < classes; c++) {
        const q = codes[c * n + k];
        if (q > bestQ) { bestQ = q; best = c; }
      }
      px[k] = luts[best][bestQ];
    }
    this.ctx.putImageData(this.image, 0, 0);
  }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }
}

/** Draws a float array (h, w) with a symmetric colour scale into a canvas of size (w, h). */
export function drawFloatGrid(canvas, values, offset, h, w, scale) {
  const ctx = canvas.getContext("2d");
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const image = ctx.createImageData(w, h);
  const px = new Uint32Array(image.data.buffer);
  const s = scale || 1e-9;
  for (let k = 0; k < h * w; k++) {
    const [r, g, b] = colourOf(values[offset + k] / s);
    px[k] = pack(r, g, b);
  }
  ctx.putImageData(image, 0, 0);
}

/** Draws a grey image (h, w) of floats, stretched to its own range, into a (w, h) canvas. */
export function drawGreyImage(canvas, values, offset, h, w) {
  const ctx = canvas.getContext("2d");
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  let lo = Infinity; let hi = -Infinity;
  for (let k = 0; k < h * w; k++) { const v = values[offset + k]; if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = hi - lo || 1;
  const image = ctx.createImageData(w, h);
  const px = new Uint32Array(image.data.buffer);
  for (let k = 0; k < h * w; k++) {
    const g = Math.round(255 - 255 * (values[offset + k] - lo) / span);
    px[k] = pack(g, g, g);
  }
  ctx.putImageData(image, 0, 0);
}

// Every page of this browser starts in the palette chosen last (the share link may override it).
setPalette(storedPalette() || "default");
