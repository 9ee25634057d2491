/**
 * The top bar's and the data panel's controls bound to the store: each `[data-prop]` element
 * shows its store key and writes it back after the catalogue's limits (validate.js) allow the
 * value; the store's changes redraw the page, reach the URL hash (the share link), and patch
 * or reset the job. Also the buttons that change the setup (reset, regenerate, add or remove a
 * layer) and the space bar.
 */

import { describe, nameOf, t } from "../i18n/index.js";
import { $, session, store, views } from "../session.js";
import { propOf, Store } from "../store.js";
import { checkValue, limitsOf } from "../validate.js";
import {
  entry, pickDataset, problemOptions, refreshPreview, renderData, renderFeatures, renderNetwork, scheduleCheck,
  starterLayers,
} from "./data.js";
import { clearErrors, showError } from "./errors.js";
import { patchJob, resetJob, step, togglePlay } from "./job.js";

/** Train and validation shares must leave some test data (the server's rule). */
const MAX_TRAIN_PLUS_VALIDATION = 0.95;
/** The batch size slider's end (a larger batch is typed into the share link or a spec file). */
const BATCH_SLIDER_MAX = 256;

/** Show the store's values in the controls, and what depends on them (shares, hidden fields). */
export function renderControls() {
  for (const el of document.querySelectorAll("[data-prop]")) {
    const value = store.get(el.dataset.prop);
    if (el.type === "checkbox") el.checked = Boolean(value);
    else if (document.activeElement !== el || el.tagName === "SELECT") el.value = value === null ? "" : String(value);
  }
  $("train_fraction_value").textContent = `${Math.round(store.get("train_fraction") * 100)}%`;
  const validation = store.get("validation_fraction");
  const testShare = Math.round((1 - store.get("train_fraction") - validation) * 100);
  $("validation_fraction_value").textContent = t("controls.validation_share", { validation: Math.round(validation * 100), test: testShare });
  $("early_stopping").title = validation > 0 ? t("controls.early_stopping_title") : t("controls.early_stopping_title_no_validation");
  const settings = session.catalog?.optimizer_settings?.[store.get("optimizer")]?.settings || [];
  $("momentum-field").hidden = !settings.includes("momentum");
  $("init-std-field").hidden = store.get("init") !== "normal";
  $("batch_size_value").textContent = String(store.get("batch_size"));
  $("regularization_rate").disabled = store.get("regularization") === "none";
}

/** Fill a select with names (or {name, label, description}); a name's underscores read as spaces. */
export function fillSelect(select, options) {
  select.textContent = "";
  for (const o of options) {
    const name = typeof o === "string" ? o : o.name;
    const opt = new Option(o.label || name.replace(/_/g, " "), name);
    if (o.description) opt.title = o.description;
    select.add(opt);
  }
}

/** The selects' options and the number controls' ranges, from the catalogue. */
function fillFromCatalog(c) {
  // Names and descriptions from the message tables (names.<lang>.js), the server's as fallback.
  const named = (group, list, describeOf = () => "") => list.map((o) => {
    const name = typeof o === "string" ? o : o.name;
    return { name, label: nameOf(group, name, name.replace(/_/g, " ")), description: describe(group, name, describeOf(o)) };
  });
  fillSelect($("optimizer"), named("optimizer", c.optimizers, (name) => c.optimizer_settings?.[name]?.description));
  fillSelect($("schedule"), named("schedule", c.schedules));
  fillSelect($("activation"), named("activation", c.activations, (o) => o.description));
  fillSelect($("regularization"), named("regularization", c.regularizations));
  fillSelect($("init"), named("init", c.initializers, (o) => o.description));
  $("init").title = t("controls.init_title");
  fillSelect($("loss"), c.losses.map((name) => ({
    name, label: name === "auto" ? t("controls.loss_auto") : nameOf("loss", name),
    description: describe("loss", name, c.loss_descriptions?.[name]) })));
  for (const f of c.export_formats || []) {
    const opt = new Option(f.name, f.name);
    opt.title = `${describe("format", f.name, f.description)} (.${f.extension})`;
    $("export-format").add(opt);
  }
  fillSelect($("problem"), problemOptions().map((name) => ({ name, label: nameOf("problem", name) })));
  const lr = limitsOf(c, "learning_rate");
  if (lr.max) $("learning_rate").max = String(lr.max);
  if (c.limits?.max_batch_size) $("batch_size").max = String(Math.min(BATCH_SLIDER_MAX, c.limits.max_batch_size));
}

/** The value a control holds, as its store key's kind: a number box with text that is not a
 * number reads "" (validity.badInput), so it gives NaN, not 0. */
function readControl(el, prop) {
  if (el.type === "checkbox") return el.checked;
  const text = el.value.trim();
  if (el.validity?.badInput) return NaN;
  if (prop.kind === "int?") return text === "" ? null : Number(text);
  if (prop.kind === "int" || prop.kind === "number") return text === "" ? NaN : Number(text);
  return el.value;
}

/** A control's new value, checked, into the store (with what it drags along). */
function changeControl(key, value) {
  // Checked against the catalogue's limits before it reaches the store (and the share link).
  const problem = checkValue(session.catalog, key, value);
  if (problem) { showError(key, problem); return; }
  if (key === "early_stopping" && value !== null && !(value >= 1)) { showError(key, t("validate.patience")); return; }
  clearErrors([key]);
  if (key === "activation") {
    const layers = store.get("layers").map((l) => (session.schemas.get(l.type)?.properties?.activation ? { ...l, activation: value } : l));
    store.set({ activation: value, layers });
  } else if (key === "train_fraction" || key === "validation_fraction") {
    // Keep some test data: the share just moved wins, the other one gives way.
    const other = key === "train_fraction" ? "validation_fraction" : "train_fraction";
    const room = Math.round((MAX_TRAIN_PLUS_VALIDATION - value) * 100) / 100;
    store.set({ [key]: value, ...(store.get(other) > room ? { [other]: Math.max(0, room) } : {}) });
  } else if (key === "problem") {
    const keep = entry()?.task === value;
    store.set({ problem: value });
    if (!keep) {
      const first = [...session.datasets.values()].find((d) => d.task === value);
      if (first) pickDataset(first.name);
    }
  } else {
    store.set({ [key]: value });
  }
}

/** Bind every control to the store, and the buttons and keys that change the setup or the job. */
export function bindControls() {
  const c = session.catalog;
  fillFromCatalog(c);
  for (const el of document.querySelectorAll("[data-prop]")) {
    const key = el.dataset.prop;
    const prop = propOf(key);
    if (el.type === "range") {
      el.addEventListener("input", () => {
        const out = $(`${key}_value`);
        if (out) out.textContent = key.endsWith("_fraction") ? `${Math.round(Number(el.value) * 100)}%` : el.value;
      });
    }
    el.addEventListener("change", () => changeControl(key, readControl(el, prop)));
  }

  $("play").addEventListener("click", togglePlay);
  $("step").addEventListener("click", step);
  // Reset draws new initial weights (a new training seed), regenerate a new sample of the data;
  // both seeds show on the page, can be typed, and are in the share link.
  $("reset").addEventListener("click", () => {
    resetJob();
    store.set({ seed: newSeed(store.get("seed")) });
  });
  $("regenerate").addEventListener("click", () => store.set({ data_seed: newSeed(store.get("data_seed")) }));
  $("add-layer").addEventListener("click", () => {
    const layers = store.get("layers");
    const max = c.limits?.max_layers ?? 64;
    if (layers.length >= max) { showError("model", t("controls.max_layers", { max })); return; }
    const last = layers[layers.length - 1];
    const add = last ? { ...last } : starterLayers(entry())[0];
    if (add) store.set({ layers: [...layers, add] });
  });
  $("remove-layer").addEventListener("click", () => {
    const layers = store.get("layers");
    if (layers.length) store.set({ layers: layers.slice(0, -1) });
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== " " || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest?.("input, select, textarea, button, summary, [role=switch], [role=radio], dialog")) return;
    e.preventDefault();
    togglePlay();
  });
  // A link opened in this tab means its whole setup: the keys it omits take their defaults.
  window.addEventListener("hashchange", () => {
    const state = stateFromLink(location.hash);
    if (state.lang !== store.get("lang")) { location.reload(); return; }
    store.set(state);
  });
  // A hidden tab needs no pictures: snapshots stop until it is visible again (curves go on).
  document.addEventListener("visibilitychange", () => {
    session.job?.stream?.subscribe({ snapshots: !document.hidden });
  });
  $("compare-dialog").addEventListener("close", () => views.compare.destroy());
  $("neuron-zoom").addEventListener("close", () => session.onZoomClose?.());
}

/** A random seed in the spec's range (0 .. 2^31 - 1), never the one in use. */
function newSeed(old) {
  const buf = new Uint32Array(1);
  for (;;) {
    crypto.getRandomValues(buf);
    const seed = buf[0] % 2147483648;
    if (seed !== old) return seed;
  }
}

/**
 * The state a share link describes, made fit for this server: omitted keys take their defaults
 * (Store.stateFromHash), a data set the server lacks falls back to the default, and the problem
 * type follows the data set unless the link names it.
 */
export function stateFromLink(hash) {
  const { state, named } = Store.stateFromHash(hash);
  if (!session.datasets.has(state.dataset)) state.dataset = propOf("dataset").def;
  const e = session.datasets.get(state.dataset);
  if (e && !named.problem) state.problem = e.task;
  if (!named.lang) state.lang = store.get("lang");
  return state;
}

/** Apply a loaded job spec: the fields the table knows, with the page-only ones derived. */
export function loadSpec(spec) {
  const changes = Store.fromSpec(spec);
  const e = session.datasets.get(changes.dataset);
  if (!e) throw new Error(t("controls.unknown_dataset", { name: changes.dataset }));
  changes.problem = e.task;
  const act = changes.layers.find((l) => l.activation)?.activation;
  if (act) changes.activation = act;
  store.set(changes);
}

/** The store changed `changed` keys: redraw what shows them, check the model, patch or reset the job. */
export function onChange(changed) {
  history.replaceState(null, "", `#${store.toHash()}`);
  renderControls();
  const has = (...keys) => keys.some((k) => changed.includes(k));
  if (has("dataset", "problem", "params", "data_seed")) {
    renderData();
    if (has("params", "data_seed", "dataset")) refreshPreview();
  } else if (has("features")) {
    renderFeatures();
  }
  if (has("layers", "features", "dataset")) renderNetwork();
  if (has("show_test", "discretize")) {
    views.output.setOptions({ showTest: store.get("show_test"), discretize: store.get("discretize") });
  }
  if (has(...changed.filter((k) => propOf(k).path))) scheduleCheck();
  const effect = Store.effectOf(changed);
  if (effect === "reset" && session.job) resetJob();
  else if (effect === "live") patchJob(changed.filter((k) => propOf(k).effect === "live"));
}
