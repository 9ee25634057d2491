/**
 * The data and the network panels: the data set (its list, parameters, preview and input
 * features), the layers (cards and the neuron diagram), and the model check that reports shapes
 * and parameter counts as the setup changes.
 */

import { api } from "../api.js";
import { describe, has, nameOf, t } from "../i18n/index.js";
import { $, session, store, views } from "../session.js";
import { propOf } from "../store.js";
import { starterChanges } from "../starters.js";
import { renderParamsForm } from "../views/datasets.js";
import { newLayer } from "../views/layers.js";
import { drawsNeurons } from "../views/network.js";
import { clearErrors, setConnection, showApiError, showError } from "./errors.js";

/** The catalogue entry of the chosen data set, and its kind ("points2d", "image", ...). */
export function entry() { return session.datasets.get(store.get("dataset")); }
export function kind() { return entry()?.kind || "points2d"; }

/** A starter network for a kind of data, from layer types the catalogue has: the fallback for
 * a server whose catalogue has no `starter` per data set (starters.js reads those). */
export function starterLayers(e) {
  const make = (type, fields) => (session.schemas.has(type) ? newLayer(type, session.schemas.get(type), fields) : null);
  let layers;
  if (e.kind === "image") {
    layers = [make("conv2d", { filters: 8, kernel_size: 3 }), make("maxpool2d", {}), make("flatten", {}), make("dense", { units: 32, activation: "relu" })];
  } else if (e.kind === "sequence" && e.input_tokens) {
    layers = [make("embedding", { dim: 16 }), make("attention", { heads: 2 }), make("pool_sequence", {})];
  } else if (e.kind === "sequence") {
    layers = [make("lstm", { units: 16 })];
  } else if (e.kind === "tabular") {
    layers = [make("dense", { units: 16, activation: "relu" })];
  } else {
    const act = store.get("activation");
    layers = [make("dense", { units: 4, activation: act }), make("dense", { units: 2, activation: act })];
  }
  return layers.filter(Boolean);
}

/** The problem types the data sets offer ("classification", "regression"). */
export function problemOptions() {
  return [...new Set([...session.datasets.values()].map((d) => d.task))];
}

export function renderData() {
  const e = entry();
  const task = store.get("problem");
  const shown = [...session.datasets.values()].filter((d) => d.task === task);
  views.datasets.render(shown, store.get("dataset"));
  for (const d of shown) if (session.previews.has(d.name)) views.datasets.drawPreview(d.name, session.previews.get(d.name));
  // What it teaches, in this language; the server's sentence only for a set the tables lack (an upload).
  const teaches = !e?.teaches ? "" : has(`teach.dataset.${e.name}`) ? t(`teach.dataset.${e.name}`) : e.teaches;
  $("dataset-about").textContent = e ? `${nameOf("dataset", e.name, e.title)}: ${describe("dataset", e.name, e.description)}${teaches ? ` ${teaches}` : ""}` : "";
  renderParamsForm($("dataset-params"), e?.params, store.get("params"), (name, value) => {
    store.set({ params: { ...store.get("params"), [name]: value } });
  });
  renderFeatures();
  // The caller's own upload (or any, for the teacher and on an open server) can be deleted.
  $("delete-upload").hidden = !(e?.uploaded && e.deletable !== false);
  const points = kind() === "points2d";
  $("output-figure").hidden = !points;
  $("output-options").hidden = !points;
  $("images-view").hidden = kind() !== "image";
  $("sequences-view").hidden = !(kind() === "sequence" || kind() === "tabular");
  $("confusion-view").hidden = points || e?.task !== "classification";
  $("histogram-view").hidden = points;
}

export function renderFeatures() {
  const e = entry();
  const box = $("features-box");
  const offered = e?.kind === "points2d" ? e.features || [] : [];
  box.hidden = offered.length === 0;
  const root = $("features");
  root.textContent = "";
  const active = store.get("features");
  for (const name of offered) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.checked = active.includes(name);
    input.addEventListener("change", () => toggleFeature(name));
    label.append(input, ` ${name}`);
    root.append(label);
  }
}

export function toggleFeature(name) {
  const e = entry();
  const active = store.get("features");
  const next = active.includes(name) ? active.filter((f) => f !== name) : [...active, name];
  if (!next.length) { showError("features", t("features.keep_one")); renderFeatures(); return; }
  const order = e.features || next;
  store.set({ features: order.filter((f) => next.includes(f)) });
}

function outputUnits() {
  const last = session.report?.layers?.[session.report.layers.length - 1];
  if (last?.appended && Array.isArray(last.output_shape)) return last.output_shape[last.output_shape.length - 1];
  const e = entry();
  return e?.task === "classification" && e.num_classes > 2 ? e.num_classes : 1;
}

export function renderNetwork() {
  const layers = store.get("layers");
  const e = entry();
  // 2-D points: one input per active feature (x1, x2, x1^2, ...), not the data set's two axes.
  views.layers.render(layers, e?.kind === "points2d" ? [store.get("features").length] : e?.input_shape);
  $("layer-count").textContent = t("network.hidden_layers", { n: layers.length });
  const neurons = drawsNeurons(kind(), layers);
  $("network").hidden = !neurons;
  $("layers").classList.toggle("diagram", !neurons);
  if (neurons) {
    views.network.render({
      features: e?.features || ["x1", "x2"], active: store.get("features"), layers, outputs: outputUnits(),
    });
  } else {
    views.network.destroy();
  }
  if (session.report) views.layers.showReport(session.report);
}

let checkTimer = null;
/** Check the model soon (changes within 120 ms make one check). */
export function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkModel, 120);
}

async function checkModel() {
  const seq = ++session.checkSeq;
  const spec = store.toSpec();
  // The check covers the data, the model and the training settings: it clears their errors.
  clearErrors(["model", "loss", "init", "init_std", "train_fraction", "validation_fraction", "early_stopping"]);
  try {
    const report = await api.checkModel({ dataset: spec.dataset, model: spec.model, training: spec.training });
    if (seq !== session.checkSeq) return;
    const before = outputUnits();
    session.report = report;
    if (!session.job) setConnection("open"); // the server answers again
    views.layers.showErrors([]);
    views.layers.showReport(report);
    $("param-count").textContent = t("model.parameters", { count: report.total_parameters.toLocaleString() });
    if (outputUnits() !== before && drawsNeurons(kind(), store.get("layers"))) renderNetwork();
  } catch (err) {
    if (seq !== session.checkSeq) return;
    session.report = null;
    views.layers.showReport(null);
    $("param-count").textContent = "";
    showApiError(err, "model");
  }
}

/** Before the first frame, the output shows the data itself (from the preview): all points. */
export function showPreviewInOutput() {
  const name = store.get("dataset");
  const preview = session.previews.get(name);
  if (session.job || !preview?.points || kind() !== "points2d") return;
  views.output.reset();
  views.output.setData({
    points_train: preview.points.map((p) => [p.x, p.y]),
    labels_train: preview.points.map((p) => p.label),
    domain: preview.domain,
  }, { task: preview.task, numClasses: (preview.class_names || []).length });
}

/** Fetch the chosen set's preview (with its params and data seed) and show it. */
export async function refreshPreview() {
  const name = store.get("dataset");
  try {
    const preview = await api.preview(name, { ...store.get("params"), seed: store.get("data_seed") });
    session.previews.set(name, preview);
    views.datasets.drawPreview(name, preview);
    showPreviewInOutput();
    clearErrors(["dataset"]);
  } catch (err) {
    showApiError(err, "dataset");
  }
}

/** Thumbnails: one preview per data set, in the background (each tried three times). */
export function loadPreviews() {
  for (const name of session.datasets.keys()) {
    const params = name === store.get("dataset") ? { ...store.get("params"), seed: store.get("data_seed") } : {};
    const load = (retries) => api.preview(name, params).then((p) => {
      session.previews.set(name, p);
      views.datasets.drawPreview(name, p);
      if (name === store.get("dataset")) showPreviewInOutput();
    }).catch(() => { if (retries) setTimeout(() => load(retries - 1), 1500); });
    load(2);
  }
}

/** Switch to a data set with its starter setup (the catalogue's `starter`), or, from a server
 * that sends none, a small network for its kind. */
export function pickDataset(name) {
  const next = session.datasets.get(name);
  const prev = entry();
  const changes = { dataset: name, params: {}, problem: next.task };
  changes.features = next.kind === "points2d" ? next.default_features || ["x1", "x2"] : propOf("features").def;
  const starter = starterChanges(next, session.schemas);
  if (starter) {
    Object.assign(changes, starter);
  } else {
    const sameShape = prev && prev.kind === next.kind && Boolean(prev.input_tokens) === Boolean(next.input_tokens);
    if (!sameShape) changes.layers = starterLayers(next);
  }
  store.set(changes);
}
