/**
 * Which of the page's controls can be swept, and the small "sweep" button beside each.
 *
 * A sweepable control is a number box, slider or select whose value lands in the job spec: the
 * top bar's and the data panel's `[data-prop]` controls (their spec path from store.js's
 * PROPS), the data set's parameters (`dataset.params.<name>`) and the layer cards' fields
 * (`model.layers.<i>.<field>`). Each is described as {path, label, type, options, current, el}
 * (see views/sweeps_dialog.js). The buttons are put back whenever the data set form or the
 * layer cards are rebuilt (a MutationObserver), so no other view needs to know about them.
 */

import { t } from "../i18n/index.js";
import { propOf } from "../store.js";

/** Store keys that are not swept: the data set, features and layers are whole setups; the
 * epochs are set in the dialog; early stopping is an object in the spec. */
const NOT_SWEPT = new Set(["dataset", "params", "features", "layers", "epochs", "early_stopping"]);

/** The text of a control's label, without the sweep button and live outputs. */
function labelText(el) {
  const label = (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) || el.closest("label");
  if (!label) return el.id;
  const copy = label.cloneNode(true);
  copy.querySelectorAll("button, output, input, select").forEach((x) => x.remove());
  return copy.textContent.replace(/[:\s]+$/, "").replace(/\s+/g, " ").trim() || el.id;
}

function numberType(el, integer) {
  return integer || el.step === "1" ? "integer" : "number";
}

function choiceOptions(select) {
  return [...select.options].filter((o) => o.value !== "").map((o) => ({ value: o.value, label: o.textContent.trim() }));
}

/** A select's choices typed as the spec holds them (numbers stay numbers). */
function typedOptions(select, current) {
  const options = choiceOptions(select);
  if (typeof current === "number") for (const o of options) o.value = Number(o.value);
  return options;
}

/**
 * Every sweepable control now on the page. `spec`: the job spec the page would send (its
 * values are the controls' current ones); `activationPath`: the spec path that the top bar's
 * activation sweeps (null: that control is not offered).
 */
export function sweepableControls(spec, { activationPath = null } = {}) {
  const out = [];
  // A control in a closed panel ("More settings") counts; one hidden for its setup does not.
  const visible = (el) => !el.closest("[hidden]:not(#more-settings-panel)");
  for (const el of document.querySelectorAll("[data-prop]")) {
    const key = el.dataset.prop;
    if (NOT_SWEPT.has(key) || !visible(el)) continue;
    const prop = propOf(key);
    let path = prop.path;
    if (key === "activation") path = activationPath ? activationPath.split(".") : null;
    if (!path || !(el.tagName === "SELECT" || el.type === "number" || el.type === "range")) continue;
    const dotted = path.join(".");
    const current = path.reduce((o, p) => (o == null ? o : o[p]), spec);
    const base = { path: dotted, label: labelText(el), current, el };
    if (el.tagName === "SELECT") out.push({ ...base, type: "choice", options: typedOptions(el, current) });
    else out.push({ ...base, type: numberType(el, prop.kind === "int" || prop.kind === "int?") });
  }
  for (const el of document.querySelectorAll("#dataset-params input, #dataset-params select")) {
    const name = el.id.replace(/^param-/, "");
    if (el.type === "checkbox" || !visible(el)) continue;
    const current = spec.dataset?.params?.[name] ?? (el.type === "number" || el.type === "range" ? Number(el.value) : el.value);
    const base = { path: `dataset.params.${name}`, label: labelText(el), current, el };
    if (el.tagName === "SELECT") out.push({ ...base, type: "choice", options: typedOptions(el, current) });
    else out.push({ ...base, type: numberType(el, false) });
  }
  for (const el of document.querySelectorAll("#layers [data-field]")) {
    const m = /^layer-(\d+)-/.exec(el.id);
    if (!m || el.type === "checkbox" || el.type === "text" || !visible(el)) continue;
    const i = Number(m[1]);
    const field = el.dataset.field;
    const current = spec.model?.layers?.[i]?.[field] ?? (el.type === "number" ? Number(el.value) : el.value);
    const label = t("sweeps.layer_field", { n: i + 1, field: labelText(el) });
    const base = { path: `model.layers.${i}.${field}`, label, current, el };
    if (el.tagName === "SELECT") out.push({ ...base, type: "choice", options: typedOptions(el, current) });
    else out.push({ ...base, type: numberType(el, false) });
  }
  return out;
}

/** The button that opens the dialog for `el` (made once per control element). */
function buttonFor(el, onSweep) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "sweep-button";
  button.dataset.sweepFor = el.id;
  button.title = t("sweeps.button_title");
  button.setAttribute("aria-label", t("sweeps.button_label", { label: labelText(el) }));
  button.innerHTML = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path fill="currentColor" d="M1 2h3v12H1zM6.5 5h3v9h-3zM12 8h3v6h-3z"/></svg>';
  button.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); onSweep(el); });
  return button;
}

/** Put a sweep button beside every sweepable control that has none yet (and take it away
 * from a control that can no longer be swept). */
export function addSweepButtons(controls, onSweep) {
  const ids = new Set(controls.map((c) => c.el.id));
  for (const b of document.querySelectorAll(".sweep-button")) if (!ids.has(b.dataset.sweepFor)) b.remove();
  for (const c of controls) {
    const el = c.el;
    if (!el.id || document.querySelector(`.sweep-button[data-sweep-for="${CSS.escape(el.id)}"]`)) continue;
    const label = document.querySelector(`label[for="${CSS.escape(el.id)}"]`) || el.closest("label");
    const button = buttonFor(el, onSweep);
    if (label) {
      // Inside the label, after its words (after a live value such as "Batch size: 10").
      const caption = label.querySelector(":scope > span");
      const live = label.querySelector(":scope > output");
      if (caption && label.contains(el)) caption.after(button);
      else if (live) live.after(button);
      else label.append(button);
    } else {
      el.after(button);
    }
  }
}

/** Watch the parts of the page that are rebuilt (data set form, layer cards) and call `again`. */
export function watchControls(again) {
  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; again(); });
  });
  for (const id of ["dataset-params", "layers", "momentum-field", "init-std-field"]) {
    const root = document.getElementById(id);
    if (!root) continue;
    if (id.endsWith("-field")) observer.observe(root, { attributes: true, attributeFilter: ["hidden"] });
    else observer.observe(root, { childList: true, subtree: id === "layers" });
  }
  return observer;
}
