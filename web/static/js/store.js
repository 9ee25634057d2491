/**
 * The page state and the share link, from one table (as TF Playground's State.PROPS).
 *
 * PROPS lists every persisted field once: its key, its kind, its default, where it lives in the
 * job spec (`path`, null for page-only fields) and what changing it does (`effect`):
 *   "reset": the old job is deleted and the next play creates a new one (data, network);
 *   "live":  sent to the running job (PATCH) without a restart (learning rate, batch size...);
 *   "view":  only redraws the page.
 * A row may carry `toSpec` / `fromSpec` when the page keeps a simpler value than the spec does
 * (early stopping: the page keeps the patience, the spec an object or null).
 * The URL hash, the job spec, loading a spec file and mapping a server error back to the control
 * that caused it are all loops over this table. Nothing here talks to the server or the DOM;
 * a `local` row (the palette) is also read from localStorage when a link does not name it.
 */

export const PROPS = [
  // The default setup is TF Playground's first page: circle, x1 and x2, 4-2 tanh, SGD 0.03, batch 10.
  { key: "dataset", kind: "string", def: "circle", path: ["dataset", "name"], effect: "reset" },
  { key: "params", kind: "json", def: {}, path: ["dataset", "params"], effect: "reset" },
  { key: "features", kind: "list", def: ["x1", "x2"], path: ["dataset", "features"], effect: "reset" },
  { key: "train_fraction", kind: "number", def: 0.5, path: ["dataset", "train_fraction"], effect: "reset" },
  { key: "validation_fraction", kind: "number", def: 0, path: ["dataset", "validation_fraction"], effect: "reset" },
  { key: "data_seed", kind: "int", def: 1, path: ["dataset", "seed"], effect: "reset" },
  { key: "layers", kind: "json", path: ["model", "layers"], effect: "reset",
    def: [{ type: "dense", units: 4, activation: "tanh" }, { type: "dense", units: 2, activation: "tanh" }] },
  { key: "init", kind: "string", def: "xavier_uniform", path: ["model", "init"], effect: "reset" },
  { key: "init_std", kind: "number", def: 0.1, path: ["model", "init_std"], effect: "reset" },
  { key: "loss", kind: "string", def: "auto", path: ["training", "loss"], effect: "reset" },
  { key: "learning_rate", kind: "number", def: 0.03, path: ["training", "optimizer", "learning_rate"], effect: "live" },
  { key: "optimizer", kind: "string", def: "sgd", path: ["training", "optimizer", "name"], effect: "reset" },
  { key: "momentum", kind: "number", def: 0.9, path: ["training", "optimizer", "momentum"], effect: "live" },
  { key: "schedule", kind: "string", def: "constant", path: ["training", "schedule", "name"], effect: "reset" },
  { key: "batch_size", kind: "int", def: 10, path: ["training", "batch_size"], effect: "live" },
  { key: "regularization", kind: "string", def: "none", path: ["training", "regularization", "kind"], effect: "live" },
  { key: "regularization_rate", kind: "number", def: 0, path: ["training", "regularization", "rate"], effect: "live" },
  { key: "epochs", kind: "int?", def: null, path: ["training", "epochs"], effect: "live" },
  // The patience in epochs, or null (off); the best weights are always put back.
  { key: "early_stopping", kind: "int?", def: null, path: ["training", "early_stopping"], effect: "reset",
    toSpec: (patience) => (patience === null ? null : { patience, restore_best: true }),
    fromSpec: (rule) => (rule && Number.isInteger(rule.patience) ? rule.patience : null) },
  { key: "seed", kind: "int", def: 0, path: ["training", "seed"], effect: "reset" },
  // Page-only fields.
  { key: "activation", kind: "string", def: "tanh", path: null, effect: "reset" },
  { key: "problem", kind: "string", def: "classification", path: null, effect: "view" },
  { key: "show_test", kind: "bool", def: false, path: null, effect: "view" },
  { key: "discretize", kind: "bool", def: false, path: null, effect: "view" },
  // The page's language when the link names one ("" : the browser's); i18n/index.js reads it.
  { key: "lang", kind: "string", def: "", path: null, effect: "view" },
  // The colour palette ("default": orange and blue; "cb": colour-blind safe, views/heatmap.js).
  // `local`: a link that does not name it keeps this browser's own choice (localStorage).
  { key: "palette", kind: "string", def: "default", path: null, effect: "view", local: "playground.palette" },
];

const BY_KEY = new Map(PROPS.map((p) => [p.key, p]));

/** A `local` field's value kept in this browser (localStorage), or null. */
function localValue(prop) {
  try {
    const text = globalThis.localStorage?.getItem(prop.local);
    return text === null || text === undefined ? null : parseValue(prop, text);
  } catch {
    return null; // storage refused: the default
  }
}

export function propOf(key) {
  const prop = BY_KEY.get(key);
  if (!prop) throw new Error(`store: unknown field '${key}'; expected one of: ${[...BY_KEY.keys()].join(", ")}`);
  return prop;
}

const clone = (v) => (v === null || typeof v !== "object" ? v : JSON.parse(JSON.stringify(v)));

function parseValue(prop, text) {
  switch (prop.kind) {
    case "number": { const n = Number(text); return Number.isFinite(n) ? n : clone(prop.def); }
    case "int": { const n = parseInt(text, 10); return Number.isFinite(n) ? n : clone(prop.def); }
    case "int?": { if (text === "" || text === "null") return null; const n = parseInt(text, 10); return Number.isFinite(n) ? n : null; }
    case "bool": return text === "true" || text === "1";
    case "list": return text === "" ? [] : text.split(",");
    case "json": try { return JSON.parse(text); } catch { return clone(prop.def); }
    default: return text;
  }
}

function formatValue(prop, value) {
  switch (prop.kind) {
    case "list": return value.join(",");
    case "json": return JSON.stringify(value);
    case "int?": return value === null ? "" : String(value);
    default: return String(value);
  }
}

function getPath(obj, path) {
  let cur = obj;
  for (const part of path) {
    if (cur === null || typeof cur !== "object" || !(part in cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function setPath(obj, path, value) {
  let cur = obj;
  for (const part of path.slice(0, -1)) cur = cur[part] ??= {};
  cur[path[path.length - 1]] = value;
}

export class Store {
  constructor() {
    this.state = Object.fromEntries(PROPS.map((p) => [p.key, clone(p.def)]));
    this.listeners = [];
  }

  get(key) { propOf(key); return this.state[key]; }

  /** Set fields; listeners get (changedKeys, store). Values equal to the current ones are ignored. */
  set(changes) {
    const changed = [];
    for (const [key, value] of Object.entries(changes)) {
      propOf(key);
      if (JSON.stringify(this.state[key]) === JSON.stringify(value)) continue;
      this.state[key] = clone(value);
      changed.push(key);
    }
    if (changed.length) for (const fn of this.listeners) fn(changed, this);
    return changed;
  }

  subscribe(fn) { this.listeners.push(fn); }

  /** The strongest effect among changed keys: "reset" > "live" > "view". */
  static effectOf(keys) {
    const effects = new Set(keys.map((k) => propOf(k).effect));
    return effects.has("reset") ? "reset" : effects.has("live") ? "live" : "view";
  }

  // ---- the share link -------------------------------------------------------------------------

  /** The URL hash: every field that differs from its default, `key=value&...`. */
  toHash() {
    const parts = [];
    for (const prop of PROPS) {
      const value = this.state[prop.key];
      if (JSON.stringify(value) === JSON.stringify(prop.def)) continue;
      parts.push(`${prop.key}=${encodeURIComponent(formatValue(prop, value))}`);
    }
    return parts.join("&");
  }

  /**
   * The whole state a share link describes: the keys it names, and the defaults for the keys it
   * omits (a link means the whole setup, not a change to the receiver's). A link that names an
   * activation but no layers gets the default layers with that activation.
   */
  static stateFromHash(hash) {
    const named = Store.parseHash(hash);
    const state = Object.fromEntries(PROPS.map((p) => [p.key, clone(p.def)]));
    for (const p of PROPS) if (p.local) state[p.key] = localValue(p) ?? state[p.key];
    Object.assign(state, named);
    if (named.activation && !named.layers) {
      state.layers = state.layers.map((l) => ("activation" in l ? { ...l, activation: named.activation } : l));
    } else if (named.layers && !named.activation && Array.isArray(named.layers)) {
      const act = named.layers.find((l) => l && typeof l.activation === "string")?.activation;
      if (act) state.activation = act;
    }
    return { state, named };
  }

  /** Fields read from a hash (unknown keys ignored); returns the changes to apply. */
  static parseHash(hash) {
    const changes = {};
    for (const part of hash.replace(/^#/, "").split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      const key = eq < 0 ? part : part.slice(0, eq);
      const prop = BY_KEY.get(key);
      if (!prop) continue;
      changes[key] = parseValue(prop, decodeURIComponent(eq < 0 ? "" : part.slice(eq + 1)));
    }
    return changes;
  }

  // ---- the job spec ---------------------------------------------------------------------------

  /** The job spec (API.md) that this state describes. */
  toSpec({ start = true, epochs } = {}) {
    const spec = { name: "", dataset: {}, model: { output: "auto" }, training: {}, start };
    for (const prop of PROPS) {
      if (!prop.path) continue;
      const value = clone(this.state[prop.key]);
      setPath(spec, prop.path, prop.toSpec ? prop.toSpec(value) : value);
    }
    if (epochs !== undefined) spec.training.epochs = epochs;
    spec.name = `${this.state.dataset}, ${this.state.layers.length} layer(s)`;
    return spec;
  }

  /** Fields read from a job spec (a loaded file); missing fields take their defaults. */
  static fromSpec(spec) {
    if (!spec || typeof spec !== "object" || !spec.dataset || !spec.model) {
      throw new Error("This file is not a job spec: it needs at least \"dataset\" and \"model\".");
    }
    const changes = {};
    for (const prop of PROPS) {
      if (!prop.path) continue;
      const value = getPath(spec, prop.path);
      if (value === undefined) changes[prop.key] = clone(prop.def);
      else changes[prop.key] = prop.fromSpec ? prop.fromSpec(value) : value;
    }
    return changes;
  }

  /** The field whose spec path is the longest prefix of an error location (without "body"). */
  static propForLoc(loc) {
    const rel = loc[0] === "body" ? loc.slice(1) : loc;
    let best = null;
    for (const prop of PROPS) {
      if (!prop.path || prop.path.length > rel.length) continue;
      if (prop.path.every((part, i) => rel[i] === part) && (!best || prop.path.length > best.path.length)) best = prop;
    }
    return best;
  }

  /** The subset of the spec that the live fields make: a PATCH body. */
  livePatch(keys) {
    const patch = {};
    for (const key of keys) {
      const prop = propOf(key);
      if (prop.effect !== "live") continue;
      if (prop.key.startsWith("regularization")) {
        // The regularization is patched whole (kind and rate together).
        setPath(patch, ["training", "regularization"], {
          kind: this.state.regularization, rate: this.state.regularization_rate,
        });
      } else if (prop.key === "epochs" && this.state.epochs === null) {
        continue; // "until paused" cannot be patched back; it takes effect on the next job.
      } else {
        setPath(patch, prop.path, clone(this.state[key]));
      }
    }
    return patch;
  }
}
