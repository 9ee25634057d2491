/**
 * The glass box's arithmetic in the browser: a dense network's forward pass at one point of the
 * plane, computed from the weights a snapshot carries (`layer{i}.weight`, `layer{i}.bias`, sent
 * for models of at most 65,536 parameters: header `weights`), so that a neuron's equation shows
 * the numbers of the frame on screen without asking the server. Pure functions, no DOM.
 *
 * The formulas are the server's: the point features of server/data/base.py and the activations
 * of server/spec/layers/base.py (torch's definitions).
 */

export const FEATURES = {
  x1: (x1) => x1,
  x2: (x1, x2) => x2,
  "x1^2": (x1) => x1 * x1,
  "x2^2": (x1, x2) => x2 * x2,
  "x1*x2": (x1, x2) => x1 * x2,
  "sin(x1)": (x1) => Math.sin(x1),
  "sin(x2)": (x1, x2) => Math.sin(x2),
  "cos(x1)": (x1) => Math.cos(x1),
  "cos(x2)": (x1, x2) => Math.cos(x2),
};

const SQRT1_2 = Math.SQRT1_2;

/** erf, Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): enough for gelu's printed digits. */
function erf(x) {
  const s = Math.sign(x); const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

const sigmoid = (z) => 1 / (1 + Math.exp(-z));

/** The activation `name` as a function of one number (softmax is done over a layer). */
export function activationOf(name, negativeSlope = 0.01) {
  switch (name) {
    case "relu": return (z) => Math.max(0, z);
    case "leaky_relu": return (z) => (z >= 0 ? z : negativeSlope * z);
    case "elu": return (z) => (z > 0 ? z : Math.expm1(z));
    case "gelu": return (z) => 0.5 * z * (1 + erf(z * SQRT1_2));
    case "silu": return (z) => z * sigmoid(z);
    case "sigmoid": return sigmoid;
    case "tanh": return Math.tanh;
    case "softplus": return (z) => (z > 20 ? z : Math.log1p(Math.exp(z)));
    default: return (z) => z; // linear (softmax: see forwardAt)
  }
}

/** The features of point (x, y) named in `names`, in that order. */
export function featuresAt(names, x, y) {
  return names.map((n) => (FEATURES[n] ? FEATURES[n](x, y) : NaN));
}

/**
 * The forward pass at (x, y): `[{input, z, a}]` per layer (its inputs, weighted sums and
 * outputs, every unit), or null when the frame has no weights for some layer. `layers` are the
 * layer specs with the appended output layer last ({units, activation, negative_slope, bias}).
 */
export function forwardAt(frame, features, layers, x, y) {
  let input = featuresAt(features, x, y);
  const out = [];
  for (let i = 0; i < layers.length; i++) {
    const w = frame?.arrays?.[`layer${i}.weight`];
    if (!w) return null;
    const b = frame.arrays[`layer${i}.bias`];
    const [units, fanIn] = w.shape;
    if (fanIn !== input.length) return null;
    const z = new Array(units);
    for (let u = 0; u < units; u++) {
      let s = b ? b.data[u] : 0;
      for (let k = 0; k < fanIn; k++) s += w.data[u * fanIn + k] * input[k];
      z[u] = s;
    }
    const name = layers[i].activation || "relu";
    let a;
    if (name === "softmax") {
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((p, q) => p + q, 0);
      a = e.map((v) => v / sum);
    } else {
      const f = activationOf(name, layers[i].negative_slope ?? 0.01);
      a = z.map(f);
    }
    out.push({ input, z, a, weight: w, bias: b || null });
    input = a;
  }
  return out;
}

/** The output as the page shows it: after the frame's `output_transform`. */
export function shownOutput(values, transform) {
  if (transform === "sigmoid") return values.map(sigmoid);
  if (transform === "softmax") {
    const m = Math.max(...values);
    const e = values.map((v) => Math.exp(v - m));
    const sum = e.reduce((p, q) => p + q, 0);
    return e.map((v) => v / sum);
  }
  return values;
}

/** A number as the inspector prints it: 3 decimals, or 3 significant digits when tiny or huge. */
export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "\u2013";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(3);
}
