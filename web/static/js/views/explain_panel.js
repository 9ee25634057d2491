/**
 * The "What am I looking at?" panel (issue 16): a side panel that explains the view in front of
 * the student, built from the page's state so that it follows what is on screen: the data's kind
 * (the neurons' pictures and the links for points, convolution for images, recurrent state and
 * attention for sequences), the loss in use (what "auto" resolves to), the optimizer's update
 * rule, the regularization, the layers present (dropout, normalization...), the initialization,
 * the learning-rate schedule, early stopping, the splits and the metrics.
 *
 * sectionsFor(setup) is pure (the setup in, [{id, title, body, formulas}] out); ExplainPanel
 * draws them and owns the toggle button, Escape and the focus. All text comes from the message
 * tables (explain.<lang>.js, names.<lang>.js); formulas are plain Unicode.
 */

import { describe, has, nameOf, t } from "../i18n/index.js";

/** The loss "auto" stands for (as the server picks it: BCE for 2 classes, CE for more, MSE). */
export function resolveLoss(loss, task, classes) {
  if (loss && loss !== "auto") return loss;
  if (task === "regression") return "mse";
  return classes > 2 ? "cross_entropy" : "bce";
}

const INIT_FAMILY = {
  zeros: "zeros", xavier_uniform: "xavier", xavier_normal: "xavier", he_uniform: "he", he_normal: "he",
  lecun_normal: "lecun", normal: "normal",
};

function section(id, title, body, formulas = []) {
  return { id, title, body, formulas: formulas.filter(Boolean) };
}

/** A key's text, or null when the table has none (formulas exist only where they help). */
function maybe(key) {
  return has(key) ? t(key) : null;
}

/**
 * The panel's sections for a setup: {kind, task, classes, loss, optimizer, regularization,
 * init, schedule, activation, layers: [{type}], early_stopping, train_fraction,
 * validation_fraction, batch_size}.
 */
export function sectionsFor(s) {
  const out = [];
  const kind = s.kind || "points2d";
  const types = new Set((s.layers || []).map((l) => l.type));
  out.push(section("intro", t("panel.now", { what: nameOf("dataset", s.dataset, s.dataset || "") }), t(`panel.intro.${kind}`)));
  if (kind === "points2d") {
    out.push(section("heatmap", t("panel.heatmap.title"), t("panel.heatmap.body")));
    out.push(section("boundary", t("panel.boundary.title"), t("panel.boundary.body")));
  }
  if (types.has("dense") || kind === "points2d") {
    out.push(section("links", t("panel.links.title"), t("panel.links.body")));
    out.push(section("bias", t("panel.bias.title"), t("panel.bias.body"), [t("panel.bias.formula")]));
  }
  if (s.activation) {
    out.push(section("activation", t("panel.activation.title", { name: nameOf("activation", s.activation) }),
      t("panel.activation.body", { desc: describe("activation", s.activation) })));
  }
  const loss = resolveLoss(s.loss, s.task, s.classes);
  out.push(section("loss", t("panel.loss.title", { name: nameOf("loss", loss) }),
    `${t(`panel.loss.${loss}.body`)}${s.loss === "auto" ? ` ${t("panel.loss.auto")}` : ""}`, [maybe(`panel.loss.${loss}.formula`)]));
  const optimizer = s.optimizer || "sgd";
  out.push(section("optimizer", t("panel.optimizer.title", { name: nameOf("optimizer", optimizer) }),
    `${t(`panel.optimizer.${optimizer}.body`)} ${t("panel.optimizer.notation")}`, [maybe(`panel.optimizer.${optimizer}.formula`)]));
  const reg = s.regularization || "none";
  out.push(section("regularization", t("panel.reg.title", { name: nameOf("regularization", reg) }),
    t(`panel.reg.${reg}.body`), [maybe(`panel.reg.${reg}.formula`)]));
  if (types.has("dropout")) out.push(section("dropout", t("panel.dropout.title"), t("panel.dropout.body")));
  if (types.has("batchnorm")) out.push(section("batchnorm", t("panel.batchnorm.title"), t("panel.batchnorm.body"), [t("panel.batchnorm.formula")]));
  if (types.has("layernorm")) out.push(section("layernorm", t("panel.layernorm.title"), t("panel.layernorm.body"), [t("panel.layernorm.formula")]));
  if (types.has("conv2d") || kind === "image") out.push(section("conv", t("panel.conv.title"), t("panel.conv.body"), [t("panel.conv.formula")]));
  if (types.has("maxpool2d") || types.has("avgpool2d")) out.push(section("pool", t("panel.pool.title"), t("panel.pool.body")));
  for (const rec of ["rnn", "lstm", "gru"]) {
    if (!types.has(rec)) continue;
    const body = rec === "rnn" ? t("panel.rnn.body") : `${t("panel.rnn.body")} ${t(`panel.${rec}.body`)}`;
    out.push(section(rec, t("panel.rnn.title", { name: nameOf("layer", rec) }), body, [t(`panel.${rec}.formula`)]));
  }
  if (types.has("embedding")) out.push(section("embedding", t("panel.embedding.title"), t("panel.embedding.body")));
  if (types.has("attention")) out.push(section("attention", t("panel.attention.title"), t("panel.attention.body"), [t("panel.attention.formula")]));
  const family = INIT_FAMILY[s.init] || "xavier";
  out.push(section("init", t("panel.init.title", { name: nameOf("init", s.init) }), t(`panel.init.${family}.body`), [maybe(`panel.init.${family}.formula`)]));
  const schedule = s.schedule || "constant";
  out.push(section("schedule", t("panel.schedule.title", { name: nameOf("schedule", schedule) }),
    t(`panel.schedule.${schedule}.body`), [maybe(`panel.schedule.${schedule}.formula`)]));
  const train = Math.round((s.train_fraction ?? 0.5) * 100);
  const validation = Math.round((s.validation_fraction ?? 0) * 100);
  out.push(section("splits", t("panel.splits.title"), t("panel.splits.body", { train, validation, test: 100 - train - validation })));
  out.push(section("batch", t("panel.batch.title"), t("panel.batch.body", { n: s.batch_size ?? 10 })));
  out.push(section("early", t("panel.early.title"), s.early_stopping ? t("panel.early.on", { n: s.early_stopping }) : t("panel.early.off")));
  if (s.task === "regression") {
    out.push(section("metrics", t("panel.metrics.title"), t("panel.metric.regression"), [t("panel.metric.r2.formula")]));
  } else {
    const body = [t("panel.metrics.classification"), t("panel.metric.accuracy"), t("panel.metric.precision"),
      t("panel.metric.recall"), t("panel.metric.f1"), t("panel.metric.auc"), t("panel.metric.confusion")].join(" ");
    out.push(section("metrics", t("panel.metrics.title"), body, ["accuracy", "precision", "recall", "f1"].map((m) => t(`panel.metric.${m}.formula`))));
  }
  return out;
}

/** The setup a job spec describes (the job view: its spec and its stream's hello message). */
export function setupFromSpec(spec, hello = {}) {
  const layers = spec.model?.layers || [];
  const training = spec.training || {};
  return {
    dataset: spec.dataset?.name, kind: hello.kind, task: hello.task, classes: hello.num_classes ?? 2,
    loss: training.loss || "auto", optimizer: training.optimizer?.name || "sgd",
    regularization: training.regularization?.kind || "none", init: spec.model?.init || "xavier_uniform",
    schedule: training.schedule?.name || "constant", activation: layers.find((l) => l.activation)?.activation,
    layers, early_stopping: training.early_stopping?.patience ?? null,
    train_fraction: spec.dataset?.train_fraction ?? 0.5, validation_fraction: spec.dataset?.validation_fraction ?? 0,
    batch_size: training.batch_size ?? 10,
  };
}

export class ExplainPanel {
  /** `toggle`: the button that opens and closes it; `getSetup()`: the setup to explain now. */
  constructor(toggle, getSetup, header = null) {
    this.toggle = toggle;
    this.getSetup = getSetup;
    this.header = header;
    this.el = document.createElement("aside");
    this.el.id = "explain-panel";
    this.el.className = "explain-panel";
    this.el.setAttribute("role", "dialog");
    this.el.setAttribute("aria-modal", "false");
    this.el.setAttribute("aria-labelledby", "explain-heading");
    this.el.hidden = true;
    const head = document.createElement("div");
    head.className = "explain-head";
    this.heading = document.createElement("h2");
    this.heading.id = "explain-heading";
    this.heading.tabIndex = -1;
    this.close = document.createElement("button");
    this.close.type = "button";
    this.close.className = "round tiny";
    this.close.textContent = "\u00d7";
    this.close.addEventListener("click", () => this.setOpen(false));
    head.append(this.heading, this.close);
    this.body = document.createElement("div");
    this.body.className = "explain-body";
    this.el.append(head, this.body);
    document.body.append(this.el);
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-controls", this.el.id);
    toggle.addEventListener("click", () => this.setOpen(this.el.hidden));
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.stopPropagation(); this.setOpen(false); }
    });
  }

  get open() { return !this.el.hidden; }

  setOpen(open) {
    this.el.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("explaining", open);
    if (open) {
      // Below the top bar, so that its controls (and this panel's toggle) stay in reach.
      const bar = this.header?.getBoundingClientRect();
      this.el.style.top = `${bar && bar.bottom > 0 ? Math.round(bar.bottom) : 0}px`;
      this.render();
      this.heading.focus();
    } else if (this.el.contains(document.activeElement) || document.activeElement === document.body) {
      this.toggle.focus();
    }
  }

  /** Redraw from the current setup (called on every change while open). */
  render() {
    if (this.el.hidden) return;
    this.heading.textContent = t("panel.title");
    this.close.setAttribute("aria-label", t("panel.close"));
    this.body.textContent = "";
    for (const s of sectionsFor(this.getSetup())) {
      const box = document.createElement("section");
      box.className = "explain-section";
      box.dataset.topic = s.id;
      const h = document.createElement("h3");
      h.textContent = s.title;
      const p = document.createElement("p");
      p.textContent = s.body;
      box.append(h, p);
      for (const f of s.formulas) {
        const code = document.createElement("code");
        code.className = "formula";
        code.textContent = f;
        box.append(code);
      }
      this.body.append(box);
    }
  }
}
