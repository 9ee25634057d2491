/**
 * Short explanations of every control and view, on hover and on keyboard focus (issue 16).
 *
 * Each page lists its targets (a CSS selector and a `tip.*` key of explain.<lang>.js). A target
 * gets data-explain="<key>" and aria-describedby pointing at a hidden node holding the same text,
 * so that a screen reader reads it with the control's name. One tooltip element (role=tooltip)
 * shows the text of the innermost target under the pointer (after a short delay) or of the one
 * holding the keyboard focus (at once); Escape, leaving or blurring hides it. A native title on
 * the target (state-dependent details such as "train a network first") is shown as a second line
 * while the tooltip is up, and put back afterwards, so that the browser never shows both.
 *
 * pageChrome(page) does what every page does at start-up: fill data-i18n, put the language
 * switch in, and attach that page's explanations.
 */

import { t, translatePage } from "./i18n/index.js";
import { mountLanguageSwitch } from "./i18n/switch.js";
import { ExplainPanel } from "./views/explain_panel.js";

/** Each page's targets: [selector, tip key]. Views come after controls (inner ones win). */
export const TARGETS = {
  main: [
    ["#reset", "tip.reset"], ["#play", "tip.play"], ["#step", "tip.step"], [".step-unit", "tip.step_batch"],
    [".counter", "tip.epoch"], ["#learning_rate", "tip.learning_rate"], ["#optimizer", "tip.optimizer"],
    ["#momentum", "tip.momentum"], ["#schedule", "tip.schedule"], ["#activation", "tip.activation"],
    ["#regularization", "tip.regularization"], ["#regularization_rate", "tip.regularization_rate"],
    ["#problem", "tip.problem"], ["#epochs", "tip.epochs"], ["#copy-link", "tip.copy_link"], ["#save-spec", "tip.save"],
    ["label[for=load-spec]", "tip.load"], ["#import-open", "tip.import"], ["#explain-toggle", "tip.explain"],
    ["#datasets", "tip.datasets"], ["#train_fraction", "tip.train_fraction"],
    ["#validation_fraction", "tip.validation_fraction"], ["#early_stopping", "tip.early_stopping"],
    ["#batch_size", "tip.batch_size"], ["#regenerate", "tip.regenerate"], ["#data_seed", "tip.data_seed"],
    ["#upload-box > summary", "tip.upload"], ["#features-box", "tip.features"], ["#add-layer", "tip.add_layer"],
    ["#remove-layer", "tip.remove_layer"], ["#init", "tip.init"], ["#init_std", "tip.init_std"], ["#loss", "tip.loss"],
    ["#seed", "tip.seed"], ["#network", "tip.network"], ["#layers", "tip.layers"], ["#output-map", "tip.output_map"],
    ["label:has(#show_test)", "tip.show_test"], ["label:has(#discretize)", "tip.discretize"], ["#loss-chart", "tip.loss_chart"],
    ["#metric-chart", "tip.metric_chart"], ["#lr-chart", "tip.lr_chart"], ["#confusion-view", "tip.confusion"],
    ["#histogram-view", "tip.histogram"], ["#images-view", "tip.images"], ["#sequences-view", "tip.sequences"],
    ["#runs", "tip.runs"], ["#download", "tip.download"], ["#export-format", "tip.export_format"],
    ["#scores", "tip.scores"],
  ],
  teacher: [["#stop-all", "tip.stop_all"], ["#logout", "tip.logout"], ["#code-box", "tip.class_code"],
    ["#watch-boundary", "tip.output_map"], ["#watch-loss", "tip.loss_chart"]],
  join: [["#name", "tip.join_name"], ["#code", "tip.join_code"]],
  job: [["#network", "tip.network"], ["#output-map", "tip.output_map"], ["#loss-chart", "tip.loss_chart"],
    ["#metric-chart", "tip.metric_chart"], ["#scores", "tip.scores"]],
};

/** Views that hold nothing to focus get tabindex=0, so that the keyboard reaches their explanation. */
const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
const HOVER_DELAY_MS = 350;
/** Parts of a large view that have a hover of their own. */
const INNER = "button, input, select, textarea, a, label, canvas, svg, summary, .node";
const isLarge = (el) => el.getBoundingClientRect().height > 160;

let tip = null;
let shelf = null;
let shown = null;
let timer = null;

function ensureElements() {
  if (tip) return;
  tip = document.createElement("div");
  tip.id = "explain-tip";
  tip.className = "explain-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  shelf = document.createElement("div");
  shelf.id = "explain-descriptions";
  shelf.hidden = true;
  document.body.append(tip, shelf);
}

/** Give `el` the explanation `key` (data-explain, aria-describedby to a hidden copy of the text). */
export function explain(el, key) {
  ensureElements();
  el.dataset.explain = key;
  const id = `explain-d-${key.replace(/\W/g, "-")}`;
  let node = document.getElementById(id);
  if (!node) {
    node = document.createElement("span");
    node.id = id;
    shelf.append(node);
  }
  node.textContent = t(key);
  const ids = (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  if (!ids.includes(id)) el.setAttribute("aria-describedby", [...ids, id].join(" "));
  if (!el.matches(FOCUSABLE) && !el.querySelector(FOCUSABLE)) el.tabIndex = 0;
}

function place(el) {
  const r = el.getBoundingClientRect();
  const big = isLarge(el);
  const w = tip.offsetWidth;
  const h = tip.offsetHeight;
  let left = Math.min(Math.max(4, r.left), window.innerWidth - w - 4);
  let top = big ? r.top + 4 : r.bottom + 6;
  if (!big && top + h > window.innerHeight - 4) top = Math.max(4, r.top - h - 6);
  if (big && top < 4) top = 4;
  tip.style.left = `${left + window.scrollX}px`;
  tip.style.top = `${top + window.scrollY}px`;
}

function show(el) {
  clearTimeout(timer);
  if (shown && shown !== el) restoreTitle(shown);
  shown = el;
  if (el.title) { el.dataset.explainTitle = el.title; el.removeAttribute("title"); }
  const text = t(el.dataset.explain);
  const extra = el.dataset.explainTitle;
  tip.textContent = "";
  const main = document.createElement("span");
  main.textContent = text;
  tip.append(main);
  if (extra && extra !== text) {
    const more = document.createElement("span");
    more.className = "explain-tip-more";
    more.textContent = extra;
    tip.append(more);
  }
  tip.hidden = false;
  place(el);
}

function restoreTitle(el) {
  if (el.dataset.explainTitle !== undefined) {
    if (!el.title) el.title = el.dataset.explainTitle;
    delete el.dataset.explainTitle;
  }
}

export function hideTip() {
  clearTimeout(timer);
  if (!tip) return;
  tip.hidden = true;
  if (shown) restoreTitle(shown);
  shown = null;
}

function bindEvents() {
  document.addEventListener("mouseover", (e) => {
    let el = e.target.closest?.("[data-explain]");
    // A large view explains itself from its background, not over the parts that have their own
    // hover (the diagram's neurons and links, a data set's thumbnail, a card's fields).
    if (el && el !== e.target && isLarge(el) && e.target.closest(INNER)) el = null;
    if (el === shown) return;
    clearTimeout(timer);
    if (!el) { if (shown && !shown.contains(document.activeElement)) hideTip(); return; }
    timer = setTimeout(() => show(el), HOVER_DELAY_MS);
  });
  document.addEventListener("focusin", (e) => {
    const el = e.target.closest?.("[data-explain]");
    if (!el) { hideTip(); return; }
    // A focused child of a view (a data set's thumbnail, a layer card's field) is described by it too.
    if (e.target !== el && !e.target.hasAttribute("aria-describedby")) {
      const ids = el.getAttribute("aria-describedby");
      if (ids) e.target.setAttribute("aria-describedby", ids);
    }
    show(el);
  });
  document.addEventListener("focusout", (e) => {
    if (!e.relatedTarget || !shown?.contains(e.relatedTarget)) hideTip();
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && shown) hideTip(); });
  document.addEventListener("pointerdown", () => hideTip());
  window.addEventListener("scroll", () => { if (shown) place(shown); }, { passive: true });
}

let bound = false;

/** Attach the page's explanations (TARGETS[page], or a list of [selector, key]). */
export function attachExplanations(targets) {
  ensureElements();
  for (const [selector, key] of Array.isArray(targets) ? targets : TARGETS[targets] || []) {
    for (const el of document.querySelectorAll(selector)) explain(el, key);
  }
  if (!bound) { bindEvents(); bound = true; }
}

/** A page's start-up: translate its static text, add the language switch, attach the explanations. */
export function pageChrome(page, switchContainer) {
  translatePage();
  mountLanguageSwitch(switchContainer);
  attachExplanations(page);
}

/**
 * The main page's start-up part: the tools group at the end of the top bar (the "What am I
 * looking at?" toggle and the language switch), the panel, and the explanations. `getSetup()`
 * gives the setup the panel explains; `subscribe(fn)` calls fn on every change of it. The job
 * view does the same with panelChrome("job", ...).
 */
export function mainPageChrome(getSetup, subscribe) {
  return panelChrome("main", document.querySelector("header.topbar"), getSetup, subscribe);
}

/** pageChrome() plus the panel: its toggle and the language switch at the end of `header`. */
export function panelChrome(page, header, getSetup, subscribe = () => {}) {
  translatePage();
  if (document.getElementById("explain-toggle")) return null;
  const tools = document.createElement("div");
  tools.className = "page-tools";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.id = "explain-toggle";
  toggle.className = "explain-toggle";
  toggle.textContent = t("panel.toggle");
  tools.append(toggle);
  (header || document.body).append(tools);
  mountLanguageSwitch(tools);
  const panel = new ExplainPanel(toggle, getSetup, header);
  subscribe(() => panel.render());
  attachExplanations(page);
  return panel;
}
