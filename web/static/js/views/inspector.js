/**
 * The glass box's drawings (issue 16): a neuron's equation with the current numbers
 * (`renderEquation`, shown in the neuron dialog), and the inspector panel (`InspectorPanel`)
 * under the output map: the link or bias picked on the diagram (read it; edit it while the job
 * is paused), the forward pass of the sample picked on the map (each layer's values, the
 * prediction, the loss, the gradient norms), and for images the misclassified test samples as a
 * gallery with the feature maps of the one picked.
 *
 * Views own their DOM and never fetch: callbacks (`onEdit`, `onPickImage`, `onGallery`) tell the
 * controller (controllers/inspector.js) what the student asked for.
 */

import { classLabel, nameOf, t } from "../i18n/index.js";
import { drawFloatGrid, drawGreyImage } from "./heatmap.js";
import { fmt } from "./inspector_math.js";

const MAX_SHOWN_VALUES = 12;  // per layer in the forward pass; the rest is counted

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A number field for a weight or a bias (editable) or its value as text. */
function valueCell(value, editable, label, onEdit) {
  if (!editable) return el("span", "num", fmt(value));
  const input = el("input", "num-input");
  input.type = "number";
  input.step = "any";
  input.value = String(Number(value.toFixed(4)));
  input.setAttribute("aria-label", label);
  input.addEventListener("change", () => {
    const v = Number(input.value);
    if (input.value !== "" && Number.isFinite(v)) onEdit(v);
  });
  return input;
}

/**
 * The equation of one neuron at a point: a row per input (value x weight = product), the bias,
 * the sum z, the activation and the output. `m`: {point, inputs: [{name, value}], weights,
 * bias, z, activation, output, shown, editable, onEdit(param, index, value), note}.
 */
export function renderEquation(root, m) {
  if (root.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
  root.textContent = "";
  if (m.note) { root.append(el("p", "muted", m.note)); return; }
  root.append(el("p", "eq-point", t("inspector.at_point", { x: fmt(m.point[0]), y: fmt(m.point[1]) })));
  const table = el("table", "equation");
  const head = el("tr");
  for (const k of ["inspector.col_input", "inspector.col_value", "inspector.col_weight", "inspector.col_product"]) head.append(el("th", "", t(k)));
  table.append(head);
  m.inputs.forEach((inp, k) => {
    const row = el("tr");
    row.append(el("td", "name", inp.name), el("td", "num", fmt(inp.value)));
    const cell = el("td");
    cell.append(el("span", "op", "\u00d7 "), valueCell(m.weights[k], m.editable,
      t("inspector.weight_from", { name: inp.name }), (v) => m.onEdit("weight", [m.unit, inp.index], v)));
    row.append(cell, el("td", "num", `= ${fmt(inp.value * m.weights[k])}`));
    table.append(row);
  });
  if (m.bias !== null) {
    const row = el("tr", "bias-row");
    row.append(el("td", "name", t("inspector.bias")), el("td"));
    const cell = el("td");
    cell.append(el("span", "op", "+ "), valueCell(m.bias, m.editable, t("inspector.bias"), (v) => m.onEdit("bias", [m.unit], v)));
    row.append(cell, el("td", "num", `= ${fmt(m.bias)}`));
    table.append(row);
  }
  root.append(table);
  const sum = el("p", "eq-line");
  sum.append(el("span", "", "z = \u03a3 = "), el("strong", "eq-z", fmt(m.z)));
  const out = el("p", "eq-line");
  out.append(el("span", "", `${t("inspector.output")} = ${m.activation}(z) = `), el("strong", "eq-out", fmt(m.output)));
  root.append(sum, out);
  if (m.shown !== null && m.shown !== undefined) root.append(el("p", "eq-line", m.shown));
  root.append(el("p", "muted small", m.editable ? t("inspector.edit_hint") : t("inspector.pause_to_edit")));
}

export class InspectorPanel {
  /** `callbacks`: {onEdit(link, value), onGallery(), onPickImage(index), onClose()}. */
  constructor(root, callbacks) {
    this.root = root;
    this.callbacks = callbacks;
    root.textContent = "";
    root.setAttribute("aria-label", t("inspector.title"));
    const head = el("div", "inspector-head");
    head.append(el("h3", "", t("inspector.title")));
    const close = el("button", "round tiny", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", t("inspector.close"));
    close.addEventListener("click", () => { this.clear(); callbacks.onClose?.(); });
    head.append(close);
    this.linkBox = el("div", "inspector-link");
    this.sampleBox = el("div", "inspector-sample");
    this.galleryBox = el("div", "inspector-gallery");
    root.append(head, this.linkBox, this.sampleBox, this.galleryBox);
    this.clear();
  }

  clear() {
    this.linkBox.textContent = ""; this.sampleBox.textContent = "";
    this.galleryBox.textContent = "";
    this.root.hidden = true;
    this.link = null;
  }

  show() { this.root.hidden = false; }

  /** A link or bias picked on the diagram: {label, param, layer, index, value}. */
  showLink(link, { editable }) {
    if (this.linkBox.contains(document.activeElement) && this.link?.label === link.label) return;
    this.link = link;
    this.linkBox.textContent = "";
    this.linkBox.append(el("h4", "", link.label));
    const line = el("p", "link-line");
    line.append(el("span", "", `${t(link.param === "bias" ? "inspector.bias" : "inspector.weight")} = `));
    if (link.value === null) line.append(el("span", "muted", t("inspector.no_value")));
    else line.append(valueCell(link.value, editable, t("inspector.edit_link", { label: link.label }), (v) => this.callbacks.onEdit?.(link, v)));
    this.linkBox.append(line);
    this.linkBox.append(el("p", "muted small", editable ? t("inspector.edit_hint") : t("inspector.pause_to_edit")));
    this.show();
  }

  /** A message in the sample part (waiting, an error). */
  sampleNote(text, error = false) {
    this.sampleBox.textContent = "";
    this.sampleBox.append(el("p", error ? "error" : "muted", text));
    this.show();
  }

  /** The forward pass of one sample (the answer of POST /inspect). */
  showSample(r, { classNames = [], task = "classification" } = {}) {
    const box = this.sampleBox;
    box.textContent = "";
    const title = r.split ? t("inspector.sample_title", { split: t(`inspector.split_${r.split}`), index: r.index })
      : t("inspector.point_title", { x: fmt(r.point?.[0]), y: fmt(r.point?.[1]) });
    box.append(el("h4", "", title));
    const name = (c) => classLabel(classNames[c] ?? String(c));
    const facts = el("dl", "facts");
    const add = (k, v) => { facts.append(el("dt", "", t(k)), el("dd", "", v)); };
    if (r.target !== null && r.target !== undefined) add("inspector.target", task === "classification" ? name(r.target) : fmt(r.target));
    add("inspector.prediction", task === "classification" ? name(r.prediction) : fmt(r.prediction));
    add("inspector.shown_output", r.shown.map(fmt).join(", "));
    if (r.loss !== null) add("inspector.loss", fmt(r.loss));
    if (r.point_gradient) add("inspector.gradient", `(${r.point_gradient.map(fmt).join(", ")})`);
    box.append(facts);
    if (r.point_gradient) box.append(el("p", "muted small", t("inspector.arrow_hint")));
    const table = el("table", "forward");
    const head = el("tr");
    for (const k of ["inspector.col_layer", "inspector.col_values", "inspector.col_grad"]) head.append(el("th", "", t(k)));
    table.append(head);
    const inputRow = el("tr");
    inputRow.append(el("td", "", t("inspector.input")), el("td", "values", shortList(r.input)), el("td"));
    table.append(inputRow);
    for (const layer of r.layers) {
      const row = el("tr");
      const what = `${layer.index + 1}. ${nameOf("layer", layer.type)}${layer.activation ? ` (${nameOf("activation", layer.activation)})` : ""}`;
      row.append(el("td", "", what), el("td", "values", layer.shape.length > 1 ? t("inspector.maps", { shape: layer.shape.join("\u00d7") }) : shortList(layer.values)),
        el("td", "num", layer.grad_norm === undefined ? "" : fmt(layer.grad_norm)));
      table.append(row);
    }
    box.append(table);
    const maps = r.layers.filter((l) => l.shape.length === 3);
    if (maps.length) box.append(featureMaps(maps));
    this.show();
  }

  /** The gallery: a button before it is loaded, the images after (GET /misclassified). */
  showGalleryButton() {
    this.galleryBox.textContent = "";
    const b = el("button", "", t("inspector.gallery_load"));
    b.type = "button";
    b.id = "gallery-load";
    b.addEventListener("click", () => this.callbacks.onGallery?.());
    this.galleryBox.append(b);
  }

  showGallery(g) {
    const box = this.galleryBox;
    box.textContent = "";
    const head = el("div", "gallery-head");
    head.append(el("h4", "", t("inspector.gallery_title", { count: g.count, total: g.total })));
    const again = el("button", "tiny", t("inspector.gallery_refresh"));
    again.type = "button";
    again.addEventListener("click", () => this.callbacks.onGallery?.());
    head.append(again);
    box.append(head);
    const grid = el("div", "gallery");
    const names = (g.class_names || []).map((c) => classLabel(c));
    g.indices.forEach((index, k) => {
      const item = el("button", "gallery-item");
      item.type = "button";
      const label = t("inspector.gallery_item", { index, truth: names[g.true[k]] ?? g.true[k], predicted: names[g.predicted[k]] ?? g.predicted[k] });
      item.setAttribute("aria-label", label);
      item.title = label;
      if (g.images) {
        const img = g.images[k]; // (channels, h, w)
        const canvas = el("canvas");
        drawGreyImage(canvas, Float32Array.from(img[0].flat()), 0, img[0].length, img[0][0].length);
        item.append(canvas);
      }
      item.append(el("span", "small", `${names[g.true[k]] ?? g.true[k]}\u2192${names[g.predicted[k]] ?? g.predicted[k]}`));
      item.addEventListener("click", () => this.callbacks.onPickImage?.(index));
      grid.append(item);
    });
    box.append(grid);
    this.show();
  }
}

function shortList(values) {
  const flat = Array.isArray(values) ? values.flat(Infinity) : [values];
  const shown = flat.slice(0, MAX_SHOWN_VALUES).map(fmt).join(", ");
  return flat.length > MAX_SHOWN_VALUES ? `${shown} ${t("inspector.more", { n: flat.length - MAX_SHOWN_VALUES })}` : shown;
}

/** Every channel of each (channels, h, w) layer output, as small heatmaps. */
function featureMaps(layers) {
  const box = el("div", "inspector-maps");
  for (const layer of layers) {
    box.append(el("h5", "", t("inspector.maps_of", { n: layer.index + 1, type: nameOf("layer", layer.type), channels: layer.channels ?? layer.shape[0] })));
    const row = el("div", "maps-row");
    for (const channel of layer.values) {
      const flat = Float32Array.from(channel.flat());
      let scale = 0;
      for (const v of flat) scale = Math.max(scale, Math.abs(v));
      const canvas = el("canvas");
      drawFloatGrid(canvas, flat, 0, channel.length, channel[0].length, scale);
      row.append(canvas);
    }
    box.append(row);
  }
  return box;
}
