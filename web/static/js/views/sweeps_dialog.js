/**
 * The sweep dialog: one axis per swept control (values as a comma list, or a range with a count
 * and a scale, for numbers; a checklist for choices), a second (or further) axis added from a
 * list of the page's controls, grid or random mode, the epochs of each variant, the number of
 * variants it makes, and Start.
 *
 * A control is described by the controller as {path, label, type: "number" | "integer" |
 * "choice", options: [{value, label}], current}; `path` is its dotted place in the job spec.
 * The dialog builds the body of POST /api/sweeps (without `base`) and hands it to `onStart`;
 * errors come back through `showErrors` (per axis, or for the whole form). Never fetches.
 */

import { t } from "../i18n/index.js";

/** Up to this many axes in one sweep (a grid of more is too large to read anyway). */
export const MAX_AXES = 4;

/** "0.001, 0.01, 1e-3" as numbers; NaN where a part is not a number. */
export function parseValues(text) {
  return text.split(/[,\s;]+/).map((s) => s.trim()).filter(Boolean).map(Number);
}

/** The values a range makes (as the server computes them): `count` points, log or linear. */
export function rangeValues(lo, hi, count, scale, integer) {
  if (!(count >= 1)) return [];
  const out = [];
  for (let k = 0; k < count; k++) {
    const f = count === 1 ? 0 : k / (count - 1);
    let v = scale === "log" && lo > 0 && hi > 0 ? Math.exp(Math.log(lo) + f * (Math.log(hi) - Math.log(lo))) : lo + f * (hi - lo);
    v = integer ? Math.round(v) : Number(v.toPrecision(6));
    out.push(v);
  }
  return out;
}

/** A short number for labels: 0.001, 0.0316, 1e-5, 128. */
export function shortNumber(v) {
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

/** Suggested values around the control's current one. */
function suggestion(control) {
  const v = Number(control.current);
  if (control.type === "integer") {
    if (/seed/.test(control.path)) return [v, v + 1, v + 2, v + 3];
    const base = Math.max(1, v || 1);
    return [...new Set([Math.max(1, Math.round(base / 2)), base, base * 2, base * 4])];
  }
  if (!(v > 0)) return [0, 0.001, 0.01, 0.1];
  if (v < 1 && /fraction|momentum|noise/.test(control.path)) return [...new Set([v / 2, v, Math.min(0.9, v * 1.5)].map((x) => Number(x.toPrecision(2))))];
  return [v / 10, v / 3, v, v * 3].map((x) => Number(x.toPrecision(2)));
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export class SweepDialog {
  /** `controls()`: every sweepable control (for "add an axis"); `onStart(body)`: start it. */
  constructor(dialog, { controls, onStart }) {
    this.dialog = dialog;
    this.controls = controls;
    this.onStart = onStart;
    this.axes = [];
    this.serial = 0;
  }

  /** Open the dialog with one axis: `control`. */
  open(control, { epochs }) {
    this.axes = [];
    const form = el("form", { className: "sweep-form", method: "dialog" });
    form.addEventListener("submit", (e) => { e.preventDefault(); this.start(); });
    this.axesBox = el("div", { className: "sweep-axes" });
    this.addSelect = el("select", { id: "sweep-add-axis" });
    this.addSelect.addEventListener("change", () => {
      const c = this.controls().find((x) => x.path === this.addSelect.value);
      if (c) this.addAxis(c);
      this.addSelect.value = "";
    });
    this.mode = el("select", { id: "sweep-mode" });
    this.mode.add(new Option(t("sweeps.mode_grid"), "grid"));
    this.mode.add(new Option(t("sweeps.mode_random"), "random"));
    this.randomCount = el("input", { id: "sweep-random-count", type: "number", min: "1", step: "1", value: "8", hidden: true });
    this.epochs = el("input", { id: "sweep-epochs", type: "number", min: "1", step: "1", value: String(epochs) });
    this.countText = el("p", { className: "sweep-count", id: "sweep-count", role: "status" });
    this.generalError = el("p", { className: "error block", dataset: { sweepError: "general" } });
    for (const input of [this.mode, this.randomCount, this.epochs]) input.addEventListener("input", () => this.update());
    this.mode.addEventListener("change", () => this.update());
    this.startButton = el("button", { type: "submit", id: "sweep-start", className: "primary", textContent: t("sweeps.start") });
    const cancel = el("button", { type: "button", id: "sweep-cancel", textContent: t("sweeps.cancel") });
    cancel.addEventListener("click", () => this.dialog.close());
    form.append(
      el("h2", { id: "sweep-dialog-heading", textContent: t("sweeps.dialog_title") }),
      el("p", { className: "muted", textContent: t("sweeps.dialog_intro") }),
      this.axesBox,
      el("div", { className: "sweep-row" }, el("label", { htmlFor: "sweep-add-axis", textContent: t("sweeps.add_axis") }), this.addSelect),
      el("div", { className: "sweep-row" },
        el("label", { htmlFor: "sweep-mode", textContent: t("sweeps.mode") }), this.mode,
        el("label", { htmlFor: "sweep-random-count", className: "random-only", textContent: t("sweeps.random_count"), hidden: true }), this.randomCount,
        el("label", { htmlFor: "sweep-epochs", textContent: t("sweeps.epochs") }), this.epochs),
      this.countText, this.generalError,
      el("div", { className: "sweep-buttons" }, cancel, this.startButton),
    );
    this.dialog.textContent = "";
    this.dialog.append(form);
    this.addAxis(control);
    if (!this.dialog.open) this.dialog.showModal();
    this.axes[0]?.focus();
  }

  fillAddSelect() {
    this.addSelect.textContent = "";
    this.addSelect.add(new Option(t("sweeps.add_axis_pick"), ""));
    const used = new Set(this.axes.map((a) => a.control.path));
    for (const c of this.controls()) if (!used.has(c.path)) this.addSelect.add(new Option(c.label, c.path));
    this.addSelect.disabled = this.axes.length >= MAX_AXES;
  }

  addAxis(control) {
    const n = this.serial++;
    const row = el("fieldset", { className: "sweep-axis", dataset: { path: control.path } });
    const remove = el("button", { type: "button", className: "round tiny sweep-remove", textContent: "\u00d7", "aria-label": t("sweeps.remove_axis", { label: control.label }) });
    row.append(el("legend", {}, el("span", { textContent: control.label }), " ", el("code", { textContent: control.path }), " ", remove));
    const error = el("span", { className: "error axis-error", dataset: { sweepError: `axis-${control.path}` } });
    const axis = { control, row, error };
    if (control.type === "choice") {
      const list = el("div", { className: "sweep-choices" });
      axis.boxes = control.options.map((o) => {
        const box = el("input", { type: "checkbox", value: String(o.value), checked: true });
        box.addEventListener("change", () => this.update());
        list.append(el("label", {}, box, ` ${o.label}`));
        return { box, value: o.value };
      });
      row.append(list);
      axis.focus = () => axis.boxes[0]?.box.focus();
    } else {
      const name = `sweep-how-${n}`;
      const how = (value, text) => {
        const radio = el("input", { type: "radio", name, value, checked: value === "values" });
        radio.addEventListener("change", () => this.update());
        return [radio, el("label", {}, radio, ` ${text}`)];
      };
      const [byValues, valuesLabel] = how("values", t("sweeps.by_values"));
      const [byRange, rangeLabel] = how("range", t("sweeps.by_range"));
      const guess = suggestion(control);
      const values = el("input", { type: "text", className: "sweep-values", value: guess.join(", "), spellcheck: false,
        "aria-label": t("sweeps.values_label", { label: control.label }) });
      const lo = el("input", { type: "number", step: "any", className: "sweep-lo", value: String(guess[0]), "aria-label": t("sweeps.range_from") });
      const hi = el("input", { type: "number", step: "any", className: "sweep-hi", value: String(guess[guess.length - 1]), "aria-label": t("sweeps.range_to") });
      const count = el("input", { type: "number", min: "1", step: "1", className: "sweep-n", value: "4", "aria-label": t("sweeps.range_count") });
      const scale = el("select", { className: "sweep-scale", "aria-label": t("sweeps.scale") });
      scale.add(new Option(t("sweeps.scale_log"), "log"));
      scale.add(new Option(t("sweeps.scale_linear"), "linear"));
      if (!(guess[0] > 0)) scale.value = "linear";
      const preview = el("span", { className: "sweep-preview muted" });
      for (const input of [values, lo, hi, count, scale]) input.addEventListener("input", () => this.update());
      scale.addEventListener("change", () => this.update());
      values.addEventListener("focus", () => { byValues.checked = true; this.update(); });
      for (const input of [lo, hi, count, scale]) input.addEventListener("focus", () => { byRange.checked = true; this.update(); });
      row.append(
        el("div", { className: "sweep-line" }, valuesLabel, values),
        el("div", { className: "sweep-line" }, rangeLabel, lo, el("span", { textContent: t("sweeps.to") }), hi,
          el("span", { textContent: t("sweeps.count") }), count, scale),
        preview,
      );
      Object.assign(axis, { byRange, values, lo, hi, count, scale, preview, focus: () => values.focus() });
    }
    row.append(error);
    remove.addEventListener("click", () => {
      this.axes = this.axes.filter((a) => a !== axis);
      row.remove();
      if (!this.axes.length) { this.dialog.close(); return; }
      this.update();
    });
    this.axes.push(axis);
    this.axesBox.append(row);
    this.update();
  }

  /** One axis as the API takes it, and how many values it has (NaN when a value is no number). */
  axisBody(axis) {
    const { control } = axis;
    if (control.type === "choice") {
      const values = axis.boxes.filter((b) => b.box.checked).map((b) => b.value);
      return { body: { path: control.path, values }, values };
    }
    const integer = control.type === "integer";
    if (axis.byRange.checked) {
      const lo = Number(axis.lo.value); const hi = Number(axis.hi.value); const count = Number(axis.count.value);
      const body = { path: control.path, range: [lo, hi], count, scale: axis.scale.value };
      return { body, values: rangeValues(lo, hi, count, axis.scale.value, integer), range: true };
    }
    const values = parseValues(axis.values.value);
    return { body: { path: control.path, values }, values };
  }

  /** The variants' count and the previews; whether Start can be pressed. */
  update() {
    if (!this.countText) return;
    this.fillAddSelect();
    const random = this.mode.value === "random";
    this.randomCount.hidden = !random;
    this.dialog.querySelector(".random-only").hidden = !random;
    let total = 1;
    let ok = this.axes.length > 0;
    for (const axis of this.axes) {
      const { values, range } = this.axisBody(axis);
      const bad = values.findIndex((v) => typeof v === "number" && !Number.isFinite(v));
      axis.error.textContent = bad >= 0 ? t("sweeps.not_a_number") : values.length ? "" : t("sweeps.no_values");
      if (bad >= 0 || !values.length) ok = false;
      if (axis.preview) axis.preview.textContent = range && values.length ? values.map(shortNumber).join(", ") : "";
      total *= values.length;
    }
    if (random) total = Number(this.randomCount.value) || 0;
    this.variants = total;
    this.countText.textContent = t("sweeps.variants", { n: total });
    this.startButton.disabled = !ok || !(total >= 1);
    this.generalError.textContent = "";
  }

  /** The body of POST /api/sweeps without its `base`. */
  body() {
    const body = { axes: this.axes.map((a) => this.axisBody(a).body), mode: this.mode.value };
    if (body.mode === "random") body.count = Number(this.randomCount.value);
    return body;
  }

  async start() {
    this.update();
    if (this.startButton.disabled) return;
    this.startButton.disabled = true;
    try {
      const done = await this.onStart(this.body(), Number(this.epochs.value));
      if (done) this.dialog.close();
    } finally {
      if (this.dialog.open) this.startButton.disabled = false;
    }
  }

  /** Messages from the server: [{axis: index | null, field: "epochs" | null, message}]. */
  showErrors(errors) {
    const general = [];
    for (const e of errors) {
      const axis = Number.isInteger(e.axis) ? this.axes[e.axis] : null;
      if (axis) axis.error.textContent = e.message;
      else general.push(e.message);
    }
    this.generalError.textContent = general.join(" ");
  }
}
