/**
 * The layer editor and block diagram: one card per hidden layer with its type and settings,
 * the output shape and parameter count the server computed (POST /api/models/check), and the
 * shape error of the layer that causes one. The forms are built from the layers' JSON schemas
 * in the catalogue: no layer type or field name is written here.
 *
 * Never fetches; tells the page through callbacks (onChange(layers), onRemove(i), onInsert(i)).
 */

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
    input.innerHTML = `<strong>Input</strong> <span class="shape"></span>`;
    input.querySelector(".shape").textContent = inputShape ? fmtShape(inputShape) : "";
    this.root.append(input);
    this.layers.forEach((layer, i) => this.root.append(this.card(layer, i)));
    const out = document.createElement("div");
    out.className = "block output-block";
    out.innerHTML = `<strong>Output layer</strong> <span class="muted">added to fit the task</span> <span class="shape"></span> <span class="params"></span>`;
    this.root.append(out);
    this.outputBlock = out;
    const insert = document.createElement("button");
    insert.type = "button";
    insert.className = "add-layer-card";
    insert.textContent = "+ Add layer";
    insert.setAttribute("aria-label", "Add a layer at the end");
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
    typeSelect.setAttribute("aria-label", `Layer ${i + 1} type`);
    for (const [type, s] of this.schemas) {
      const opt = new Option(s.title && s.title !== type ? `${type}` : type, type);
      opt.title = s.description || "";
      typeSelect.add(opt);
    }
    typeSelect.value = layer.type;
    typeSelect.title = schema?.description || "";
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
    remove.setAttribute("aria-label", `Remove layer ${i + 1}`);
    remove.title = "Remove this layer";
    remove.addEventListener("click", () => { this.layers.splice(i, 1); this.onChange(this.layers); });
    const insertAfter = document.createElement("button");
    insertAfter.type = "button";
    insertAfter.className = "insert";
    insertAfter.textContent = "+";
    insertAfter.setAttribute("aria-label", `Insert a layer after layer ${i + 1}`);
    insertAfter.title = "Insert a layer after this one";
    insertAfter.addEventListener("click", () => this.insert(i + 1));
    head.append(num, typeSelect, shape, params, insertAfter, remove);
    card.append(head);

    const fields = document.createElement("div");
    fields.className = "card-fields";
    const more = document.createElement("details");
    more.className = "more";
    more.innerHTML = "<summary>more</summary>";
    if (!schema) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = `The server does not know the layer type '${layer.type}'.`;
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
    wrap.title = s.description || "";
    const id = `layer-${i}-${name}`;
    const caption = document.createElement("span");
    caption.textContent = (s.title || name).toLowerCase();
    const value = layer[name] !== undefined ? layer[name] : s.default;
    const commit = (v) => {
      if (v === undefined || (v === null && !nullable && s.default === undefined)) delete this.layers[i][name];
      else this.layers[i][name] = v;
      this.onChange(this.layers);
    };
    let input;
    if (s.enum) {
      input = document.createElement("select");
      if (nullable) input.add(new Option("(default)", ""));
      for (const v of s.enum) input.add(new Option(String(v), String(v)));
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
      if (nullable) input.placeholder = "default";
      input.addEventListener("change", () => {
        if (input.value === "") { commit(nullable ? null : undefined); return; }
        const n = Number(input.value);
        commit(s.type === "integer" ? Math.round(n) : n);
      });
    } else if (s.type === "array") {
      input = document.createElement("input");
      input.type = "text";
      input.value = Array.isArray(value) ? value.join(", ") : "";
      input.placeholder = "e.g. 3, 3";
      input.addEventListener("change", () => {
        const parts = input.value.split(",").map((t) => t.trim()).filter(Boolean).map(Number);
        commit(parts.length ? parts : nullable ? null : []);
      });
    } else {
      input = document.createElement("input");
      input.type = "text";
      input.value = value == null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
      input.addEventListener("change", () => {
        const t = input.value.trim();
        if (t === "") { commit(nullable ? null : undefined); return; }
        try { commit(JSON.parse(t)); } catch { commit(t); }
      });
    }
    input.id = id;
    input.dataset.field = name;
    wrap.append(caption, input);
    return wrap;
  }

  /** Show the model check: per-layer output shape and parameters (report.layers, last = output). */
  showReport(report) {
    const rows = report?.layers || [];
    const cards = this.root.querySelectorAll(".layer-card");
    cards.forEach((card, i) => {
      const row = rows.find((r) => r.index === i) || rows[i];
      card.querySelector(".shape").textContent = row ? `\u2192 ${fmtShape(row.output_shape)}` : "";
      card.querySelector(".params").textContent = row ? `${fmtCount(row.parameters)} params` : "";
    });
    const last = rows.length > cards.length ? rows[rows.length - 1] : null;
    if (this.outputBlock) {
      this.outputBlock.querySelector(".shape").textContent = last ? `\u2192 ${fmtShape(last.output_shape)}` : "";
      this.outputBlock.querySelector(".params").textContent = last ? `${fmtCount(last.parameters)} params` : "";
    }
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
      const own = new RegExp(`^layer ${index} \\(${type}\\):?\\s*`);
      const text = message.replace(own, "");
      card.querySelector(".layer-error").textContent = text.charAt(0).toUpperCase() + text.slice(1);
    }
    return unplaced;
  }
}
