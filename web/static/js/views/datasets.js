/**
 * The data set picker: one thumbnail per data set (drawn from its preview: points for 2-D sets,
 * a digit for images, a curve for sequences, a scatter of the first two columns for tables),
 * and the data set's own parameters as a form built from its JSON schema (noise, samples...).
 * Never fetches: the page hands it previews; callbacks say what was picked or changed.
 */

import { CLASS_COLOURS, colourOf } from "./heatmap.js";
import { describe, nameOf } from "../i18n/index.js";
import { resolveProperty } from "./layers.js";

const SIZE = 64;

export class DatasetsView {
  constructor(root, { onPick }) {
    this.root = root;
    this.onPick = onPick;
    this.buttons = new Map();
  }

  /** One button per data set entry (name, title, description, task, kind). */
  render(entries, selected) {
    this.root.textContent = "";
    this.buttons.clear();
    for (const entry of entries) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "thumb";
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", String(entry.name === selected));
      const title = nameOf("dataset", entry.name, entry.title || entry.name);
      const about = describe("dataset", entry.name, entry.description || "");
      b.setAttribute("aria-label", `${title}: ${about}`);
      b.title = `${title}: ${about}`;
      b.dataset.name = entry.name;
      const canvas = document.createElement("canvas");
      canvas.width = SIZE; canvas.height = SIZE;
      const label = document.createElement("span");
      label.textContent = title;
      b.append(canvas, label);
      b.addEventListener("click", () => this.onPick(entry.name));
      this.root.append(b);
      this.buttons.set(entry.name, { button: b, canvas, entry });
    }
  }

  select(name) {
    for (const [n, { button }] of this.buttons) button.setAttribute("aria-checked", String(n === name));
  }

  /** Draw a preview (GET /api/datasets/{name}/preview) into its thumbnail. */
  drawPreview(name, preview) {
    const item = this.buttons.get(name);
    if (!item) return;
    const ctx = item.canvas.getContext("2d");
    ctx.fillStyle = "#f4f5f6";
    ctx.fillRect(0, 0, SIZE, SIZE);
    const regression = preview.task === "regression";
    const classes = (preview.class_names || []).length;
    const colour = (label, scale = 1) => {
      if (regression) return colourOf(label / scale);
      if (classes <= 2) return colourOf(label >= 1 ? 1 : -1);
      return CLASS_COLOURS[label % CLASS_COLOURS.length];
    };
    if (preview.points) {
      const [lo, hi] = preview.domain || [-6, 6];
      const scale = Math.max(1e-9, ...preview.points.map((p) => Math.abs(p.label)));
      for (const p of preview.points) {
        const [r, g, b] = colour(p.label, scale);
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(((p.x - lo) / (hi - lo)) * SIZE - 1, (1 - (p.y - lo) / (hi - lo)) * SIZE - 1, 2.4, 2.4);
      }
    } else if (preview.images?.length) {
      // Up to four images in a 2x2 grid.
      preview.images.slice(0, 4).forEach((img, k) => {
        const px = img.pixels; const c = px.length; const h = px[0].length; const w = px[0][0].length;
        const tile = SIZE / 2; const ox = (k % 2) * tile; const oy = Math.floor(k / 2) * tile;
        const values = px.flat(Infinity);
        const lo = Math.min(...values); const span = Math.max(...values) - lo || 1;
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
          let v = 0;
          for (let ch = 0; ch < c; ch++) v += px[ch][y][x];
          const g = Math.round(255 - 255 * (v / c - lo) / span);
          ctx.fillStyle = `rgb(${g},${g},${g})`;
          ctx.fillRect(ox + (x * tile) / w, oy + (y * tile) / h, tile / w + 0.5, tile / h + 0.5);
        }
      });
    } else if (preview.sequences?.length) {
      preview.sequences.slice(0, 3).forEach((s, k) => {
        const series = s.input.map((v) => (Array.isArray(v) ? v[0] : v));
        const lo = Math.min(...series); const span = Math.max(...series) - lo || 1;
        const [r, g, b] = regression ? [8, 119, 189] : colour(s.target);
        ctx.strokeStyle = `rgba(${r},${g},${b},${k === 0 ? 1 : 0.5})`;
        ctx.lineWidth = 1.3;
        ctx.beginPath();
        series.forEach((v, i) => {
          const x = 3 + (i / Math.max(1, series.length - 1)) * (SIZE - 6);
          const y = SIZE - 4 - ((v - lo) / span) * (SIZE - 8);
          if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        });
        ctx.stroke();
      });
    } else if (preview.rows?.length) {
      const xs = preview.rows.map((r) => r[0]); const ys = preview.rows.map((r) => r[1] ?? 0);
      const x0 = Math.min(...xs); const xs_ = Math.max(...xs) - x0 || 1;
      const y0 = Math.min(...ys); const ys_ = Math.max(...ys) - y0 || 1;
      const scale = Math.max(1e-9, ...preview.targets.map((t) => Math.abs(t)));
      preview.rows.forEach((row, k) => {
        const [r, g, b] = colour(preview.targets[k], scale);
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(3 + ((row[0] - x0) / xs_) * (SIZE - 6), SIZE - 3 - ((row[1] - y0) / ys_) * (SIZE - 6), 2.5, 2.5);
      });
    }
  }
}

/**
 * A form for a JSON schema's properties (a data set's params); `values` are the current ones.
 * `onChange(name, value)` fires when a field changes; sliders for bounded numbers.
 */
export function renderParamsForm(root, schema, values, onChange) {
  root.textContent = "";
  for (const [name, raw] of Object.entries(schema?.properties || {})) {
    const { schema: s } = resolveProperty(raw, schema);
    const value = values[name] ?? s.default;
    const wrap = document.createElement("div");
    wrap.className = "field";
    const id = `param-${name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.title = describe("field", name, s.description || "");
    const out = document.createElement("output");
    label.append(`${nameOf("field", name, s.title || name)}: `, out);
    let input;
    if (s.enum) {
      input = document.createElement("select");
      for (const v of s.enum) input.add(new Option(nameOf("choice", String(v), String(v)), String(v)));
      input.value = String(value);
      input.addEventListener("change", () => onChange(name, s.enum.find((v) => String(v) === input.value)));
      out.textContent = "";
    } else if (s.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(value);
      input.addEventListener("change", () => onChange(name, input.checked));
    } else {
      input = document.createElement("input");
      const bounded = s.minimum !== undefined && s.maximum !== undefined && (s.type === "number" || s.maximum - s.minimum <= 100);
      input.type = bounded ? "range" : "number";
      if (s.minimum !== undefined) input.min = String(s.minimum);
      if (s.maximum !== undefined) input.max = String(s.maximum);
      input.step = s.type === "integer" ? "1" : bounded ? String((s.maximum - s.minimum) / 50) : "any";
      input.value = String(value);
      out.textContent = String(value);
      input.addEventListener("input", () => { out.textContent = input.value; });
      input.addEventListener("change", () => {
        const n = Number(input.value);
        onChange(name, s.type === "integer" ? Math.round(n) : n);
      });
    }
    input.id = id;
    const error = document.createElement("span");
    error.className = "error";
    error.dataset.errorFor = `params.${name}`;
    wrap.append(label, input, error);
    root.append(wrap);
  }
}
