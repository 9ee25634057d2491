/**
 * The layer editor and block diagram: one card per hidden layer with its type and settings,
 * the output shape and parameter count the server computed (POST /api/models/check), and the
 * shape error of the layer that causes one. The forms are built from the layers' JSON schemas
 * in the catalogue: no layer type or field name is written here.
 *
 * Never fetches; tells the page through callbacks (onChange(layers), onRemove(i), onInsert(i)).
 */

import { describe, nameOf, t } from "../i18n/index.js";

/** Resolve a `$ref` (and a nullable anyOf) to the property's own schema and whether null is allowed. */
export function resolveProperty(prop, root) {
  let nullable = false;
  let schema = prop;
  const deref = (s) => {
    if (s && s.$ref) {
      const name = s.$ref.split("/").pop();
      return (root.$defs || root.definitions || {})[name] || {};
    }
    return s;
  };
  schema = deref(schema);
  if (schema.anyOf) {
    const options = schema.anyOf.map(deref);
    nullable = options.some((o) => o.type === "null");
    const real = options.filter((o) => o.type !== "null");
    schema = { ...real[0], ...Object.fromEntries(Object.entries(prop).filter(([k]) => k !== "anyOf")) };
  }
  if (schema.const !== undefined && !schema.enum) schema = { ...schema, enum: [schema.const] };
  return { schema, nullable };
}

/** A new layer of `type` with every field at its schema default (keeping matching old fields). */
export function newLayer(type, schema, keep = {}) {
  const layer = { type };
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    if (name === "type") continue;
    const { schema: s, nullable } = resolveProperty(raw, schema);
    if (keep[name] !== undefined && keep[name] !== null && valueFits(keep[name], s)) layer[name] = keep[name];
    else if ((schema.required || []).includes(name)) layer[name] = defaultOf(s, nullable);
  }
  return layer;
}

function valueFits(value, s) {
  if (s.enum) return s.enum.includes(value);
  if (s.type === "integer") return Number.isInteger(value);
  if (s.type === "number") return typeof value === "number";
  if (s.type === "boolean") return typeof value === "boolean";
  return true;
}

function defaultOf(s, nullable) {
  if (s.default !== undefined) return s.default;
  if (s.examples?.length) return s.examples[0];
  if (s.enum) return s.enum[0];
  if (s.type === "integer") return Math.max(s.minimum ?? (s.exclusiveMinimum ?? 0) + 1, 4);
  if (s.type === "number") return s.minimum ?? 0;
  if (s.type === "boolean") return false;
  if (s.type === "array") return [];
  return nullable ? null : "";
}

/** Why a typed number does not fit its schema (minimum, maximum, whole numbers), or null. */
export function rangeRefusal(field, text, n, s) {
  if (!Number.isFinite(n)) return t("layers.not_number", { field });
  if (s.type === "integer" && !Number.isInteger(n)) return t("layers.not_integer", { field, value: text });
  if (s.maximum !== undefined && n > s.maximum) return t("layers.above_max", { field, value: text, max: s.maximum });
  if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum) return t("layers.not_below", { field, value: text, max: s.exclusiveMaximum });
  if (s.minimum !== undefined && n < s.minimum) return t("layers.below_min", { field, value: text, min: s.minimum });
  if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum) return t("layers.not_above", { field, value: text, min: s.exclusiveMinimum });
  return null;
}

const fmtShape = (shape) => (Array.isArray(shape) ? `(${shape.join(", ")})` : String(shape ?? "?"));
const fmtCount = (n) => (n == null ? "" : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));

export class LayersView {
  /**
   * @param {HTMLElement} root
   * @param {{schemas: Map<string, object>, onChange: (layers) => void}} options
   */
  constructor(root, { schemas, onChange }) {
    this.root = root;
    this.schemas = schemas;
    this.onChange = onChange;
    this.layers = [];
  }

  /** Rebuild the cards for `layers` (keeps the keyboard focus on the same field). */
  render(layers, inputShape) {
    const focused = document.activeElement?.id;
    this.layers = JSON.parse(JSON.stringify(layers));
    this.root.textContent = "";
    const input = document.createElement("div");
    input.className = "block input-block";
    input.innerHTML = `<strong></strong> <span class="shape"></span>`;
    input.querySelector("strong").textContent = t("layers.input");
    input.querySelector(".shape").textContent = inputShape ? fmtShape(inputShape) : "";
    this.root.append(input);
    this.layers.forEach((layer, i) => this.root.append(this.card(layer, i)));
    const out = document.createElement("div");
    out.className = "block output-block";
    out.innerHTML = `<strong></strong> <span class="muted"></span> <span class="shape"></span> <span class="params"></span>`;
    out.querySelector("strong").textContent = t("layers.output");
    out.querySelector(".muted").textContent = t("layers.output_note");
    this.root.append(out);
    this.outputBlock = out;
    const insert = document.createElement("button");
    insert.type = "button";
    insert.className = "add-layer-card";
    insert.textContent = t("layers.add");
    insert.setAttribute("aria-label", t("layers.add_label"));
    insert.addEventListener("click", () => this.insert(this.layers.length));
    this.root.append(insert);
    if (focused) document.getElementById(focused)?.focus();
  }

  insert(index) {
    const prev = this.layers[index - 1] || this.layers[0];
    const type = prev?.type || [...this.schemas.keys()][0];
    this.layers.splice(index, 0, newLayer(type, this.schemas.get(type), prev || {}));
    this.onChange(this.layers);
  }

  card(layer, i) {
    const schema = this.schemas.get(layer.type);
    const card = document.createElement("div");
    card.className = "block layer-card";
    card.dataset.index = String(i);
    card.id = `layer-card-${i}`;

    const head = document.createElement("div");
    head.className = "card-head";
    const num = document.createElement("span");
    num.className = "layer-number";
    num.textContent = String(i + 1);
    const typeSelect = document.createElement("select");
    typeSelect.id = `layer-${i}-type`;
    typeSelect.setAttribute("aria-label", t("layers.type_label", { n: i + 1 }));
    for (const [type, s] of this.schemas) {
      const opt = new Option(nameOf("layer", type), type);
      opt.title = describe("layer", type, s.description || "");
      typeSelect.add(opt);
    }
    typeSelect.value = layer.type;
    typeSelect.title = describe("layer", layer.type, schema?.description || "");
    typeSelect.addEventListener("change", () => {
      this.layers[i] = newLayer(typeSelect.value, this.schemas.get(typeSelect.value), this.layers[i]);
      this.onChange(this.layers);
    });
    const shape = document.createElement("span");
    shape.className = "shape";
    const params = document.createElement("span");
    params.className = "params";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "\u00d7";
    remove.id = `layer-${i}-remove`;
    remove.setAttribute("aria-label", t("layers.remove_label", { n: i + 1 }));
    remove.title = t("layers.remove_title");
    remove.addEventListener("click", () => { this.layers.splice(i, 1); this.onChange(this.layers); });
    const insertAfter = document.createElement("button");
    insertAfter.type = "button";
    insertAfter.className = "insert";
    insertAfter.textContent = "+";
    insertAfter.setAttribute("aria-label", t("layers.insert_label", { n: i + 1 }));
    insertAfter.title = t("layers.insert_title");
    insertAfter.addEventListener("click", () => this.insert(i + 1));
    head.append(num, typeSelect, shape, params, insertAfter, remove);
    card.append(head);

    const fields = document.createElement("div");
    fields.className = "card-fields";
    const more = document.createElement("details");
    more.className = "more";
    more.innerHTML = "<summary></summary>";
    more.firstChild.textContent = t("layers.more");
    if (!schema) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = t("layers.unknown_type", { type: layer.type });
      card.append(p);
    } else {
      // The required fields, choices and counts first; fine-tuning (numbers, switches, nullable
      // overrides) under "more", unless the layer has only a couple of fields.
      const entries = Object.entries(schema.properties || {}).filter(([name]) => name !== "type");
      for (const [name, raw] of entries) {
        const { schema: s, nullable } = resolveProperty(raw, schema);
        const primary = entries.length <= 2 || (schema.required || []).includes(name) ||
          (!nullable && (s.enum || s.type === "integer"));
        (primary ? fields : more).append(this.field(layer, i, name, s, nullable));
      }
    }
    card.append(fields);
    if (more.children.length > 1) card.append(more);
    const error = document.createElement("div");
    error.className = "error layer-error";
    error.setAttribute("role", "alert");
    card.append(error);
    return card;
  }

  field(layer, i, name, s, nullable) {
    const wrap = document.createElement("label");
    wrap.className = "card-field";
    wrap.title = describe("field", name, s.description || "");
    const id = `layer-${i}-${name}`;
    const caption = document.createElement("span");
    caption.textContent = nameOf("field", name, (s.title || name).toLowerCase());
    const value = layer[name] !== undefined ? layer[name] : s.default;
    const commit = (v) => {
      if (v === undefined || (v === null && !nullable && s.default === undefined)) delete this.layers[i][name];
      else this.layers[i][name] = v;
      this.onChange(this.layers);
    };
    let input;
    if (s.enum) {
      input = document.createElement("select");
      if (nullable) input.add(new Option(t("layers.default_option"), ""));
      const group = name === "activation" || name === "nonlinearity" ? "activation" : "choice";
      for (const v of s.enum) input.add(new Option(nameOf(group, String(v), String(v)), String(v)));
      input.value = value === null || value === undefined ? "" : String(value);
      input.addEventListener("change", () => {
        const raw = input.value;
        commit(raw === "" ? null : s.enum.find((v) => String(v) === raw));
      });
    } else if (s.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(value);
      input.addEventListener("change", () => commit(input.checked));
      wrap.classList.add("check");
    } else if (s.type === "integer" || s.type === "number") {
      input = document.createElement("input");
      input.type = "number";
      input.step = s.type === "integer" ? "1" : "any";
      if (s.minimum !== undefined) input.min = String(s.minimum);
      if (s.maximum !== undefined) input.max = String(s.maximum);
      input.value = value === null || value === undefined ? "" : String(value);
      if (nullable) input.placeholder = t("layers.default_placeholder");
      input.addEventListener("change", () => {
        if (input.value === "") { commit(nullable ? null : undefined); return; }
        const n = Number(input.value);
        // Out of the schema's range (units over the server's max_units...): refused here, on
        // the card, before the network (or its diagram) is built with it.
        const refusal = rangeRefusal(caption.textContent, input.value, n, s);
        if (refusal) { this.refuse(i, input, refusal, value); return; }
        commit(s.type === "integer" ? Math.round(n) : n);
      });
    } else if (s.type === "array") {
      input = document.createElement("input");
      input.type = "text";
      input.value = Array.isArray(value) ? value.join(", ") : "";
      input.placeholder = t("layers.list_placeholder");
      input.addEventListener("change", () => {
        const parts = input.value.split(",").map((part) => part.trim()).filter(Boolean).map(Number);
        commit(parts.length ? parts : nullable ? null : []);
      });
    } else {
      input = document.createElement("input");
      input.type = "text";
      input.value = value == null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
      input.addEventListener("change", () => {
        const text = input.value.trim();
        if (text === "") { commit(nullable ? null : undefined); return; }
        try { commit(JSON.parse(text)); } catch { commit(text); }
      });
    }
    input.id = id;
    input.dataset.field = name;
    wrap.append(caption, input);
    return wrap;
  }

  /** Keep the layers as they are: `input` shows the kept value again, card `i` says why. */
  refuse(i, input, message, kept) {
    const card = this.root.querySelector(`.layer-card[data-index="${i}"]`);
    input.value = kept === null || kept === undefined ? "" : String(kept);
    if (!card) return;
    card.classList.add("has-error");
    card.querySelector(".layer-error").textContent = message.charAt(0).toUpperCase() + message.slice(1);
  }

  /** Show the model check: per-layer output shape and parameters (report.layers, last = output). */
  showReport(report) {
    const rows = report?.layers || [];
    const cards = this.root.querySelectorAll(".layer-card");
    cards.forEach((card, i) => {
      const row = rows.find((r) => r.index === i) || rows[i];
      card.querySelector(".shape").textContent = row ? `\u2192 ${fmtShape(row.output_shape)}` : "";
      card.querySelector(".params").textContent = row ? t("layers.params", { count: fmtCount(row.parameters) }) : "";
    });
    const last = rows.length > cards.length ? rows[rows.length - 1] : null;
    if (this.outputBlock) {
      this.outputBlock.querySelector(".shape").textContent = last ? `\u2192 ${fmtShape(last.output_shape)}` : "";
      this.outputBlock.querySelector(".params").textContent = last ? t("layers.params", { count: fmtCount(last.parameters) }) : "";
    }
    this.onReport?.(report, this.layers);  // the architecture drawing above the cards (views/arch.js)
  }

  /** Put each error message on the card of its layer; returns the messages not placed. */
  showErrors(byLayer) {
    const unplaced = [];
    this.root.querySelectorAll(".layer-card").forEach((card) => {
      card.classList.remove("has-error");
      card.querySelector(".layer-error").textContent = "";
    });
    for (const [index, message] of byLayer) {
      const card = this.root.querySelector(`.layer-card[data-index="${index}"]`);
      if (!card) { unplaced.push(message); continue; }
      card.classList.add("has-error");
      // The server names the layer ("layer 1 (conv2d) needs ..."); on its own card the name
      // is redundant, and its 0-based index would disagree with the card's number.
      const type = this.layers[index]?.type;
      // "layer 0 (dense) has units 99999 ..." reads "This layer has units 99999 ..." there.
      const own = new RegExp(`^layer ${index} \\(${type}\\)(:?)\\s*`);
      const match = message.match(own);
      const rest = match ? message.slice(match[0].length) : message;
      const text = match && !match[1] ? t("layers.this_layer", { rest }) : rest;
      card.querySelector(".layer-error").textContent = text.charAt(0).toUpperCase() + text.slice(1);
    }
    return unplaced;
  }
}
