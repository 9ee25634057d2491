/**
 * One job's live view, read-only (GET /jobs/{id}/view#token=...): what a notebook shows for
 * job.show(). It follows the job's stream with api.js's JobStream and draws it with the page's
 * own views: the neuron diagram (views/network.js) and the boundary (views/output.js) for
 * two-dimensional data, the loss and metric curves (views/charts.js) for every kind. No
 * controls: it never changes the job. The token comes from the URL's fragment (never sent to a
 * server); `lang=` there or in the query picks the language.
 *
 * For tests and curious users, window.__jobView holds counters: frames, points, epoch, status.
 */

import { JobStream } from "./api.js";
import { panelChrome } from "./explain.js";
import { setupFromSpec } from "./views/explain_panel.js";
import { nameOf, t } from "./i18n/index.js";
import { LineChart } from "./views/charts.js";
import { drawsNeurons, NetworkView } from "./views/network.js";
import { OutputView } from "./views/output.js";

const $ = (id) => document.getElementById(id);

function fragment() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    const at = part.indexOf("=");
    if (at > 0) out[part.slice(0, at)] = decodeURIComponent(part.slice(at + 1));
  }
  return out;
}

const state = { frames: 0, points: 0, epoch: 0, status: null, hello: 0, closed: null };
window.__jobView = state;

const view = {
  network: null,
  output: new OutputView($("output-map")),
  loss: null,
  metric: null,
  metricField: null,
};

function series(name, validation) {
  const out = [
    { field: `train_${name}`, label: t("jobview.training"), stroke: "#555" },
    { field: `test_${name}`, label: t("jobview.test"), stroke: "#0877bd" },
  ];
  if (validation) out.push({ field: `validation_${name}`, label: t("jobview.validation"), stroke: "#f59322", dash: [6, 3] });
  return out;
}

function showError(text) {
  const el = $("job-error");
  el.textContent = text || "";
  el.hidden = !text;
}

function setStatus(status, epoch) {
  if (status) {
    state.status = status;
    $("job-status").textContent = t(`jobview.status.${status}`);
    $("job-status").dataset.status = status;
  }
  if (Number.isInteger(epoch)) {
    state.epoch = epoch;
    $("epoch").textContent = epoch.toLocaleString();
  }
}

/** The metric drawn beside the loss: accuracy when there is one, else the first test_ metric. */
function metricOf(points) {
  for (const r of points) {
    const names = Object.keys(r).filter((k) => k.startsWith("test_") && k !== "test_loss" && typeof r[k] === "number");
    if (names.length) return names.includes("test_accuracy") ? "accuracy" : names[0].slice(5);
  }
  return null;
}

function onMetrics(points) {
  if (!points.length) return;
  state.points += points.length;
  view.loss?.append(points);
  if (!view.metricField) {
    view.metricField = metricOf(points);
    if (view.metricField) {
      view.metric = new LineChart($("metric-chart"), {
        title: t("jobview.metric_title", { name: nameOf("metric", view.metricField, view.metricField.replace(/_/g, " ")) }),
        series: series(view.metricField, view.validation),
      });
    }
  }
  view.metric?.append(points);
  const last = points[points.length - 1];
  setStatus(undefined, last.epoch);
  const parts = [];
  if (typeof last.test_loss === "number") parts.push(t("jobview.test_loss", { value: last.test_loss.toFixed(3) }));
  const m = view.metricField && last[`test_${view.metricField}`];
  if (typeof m === "number") parts.push(t("jobview.test_metric", { name: nameOf("metric", view.metricField, view.metricField.replace(/_/g, " ")), value: m.toFixed(3) }));
  $("scores").textContent = parts.join("  ");
}

function onHello(msg) {
  state.hello += 1;
  const spec = msg.spec || {};
  view.setup = setupFromSpec(spec, msg);
  view.panel?.render();
  $("job-name").textContent = spec.name || t("jobview.title", { id: msg.job_id });
  document.title = t("jobview.title", { id: msg.job_id });
  document.title = $("job-name").textContent;
  view.validation = (spec.dataset?.validation_fraction || 0) > 0;
  view.loss?.destroy();
  view.metric?.destroy();
  view.metric = null;
  view.metricField = null;
  $("metric-chart").textContent = "";
  view.loss = new LineChart($("loss-chart"), { title: t("jobview.loss_title"), series: series("loss", view.validation) });
  const layers = spec.model?.layers || [];
  const auto = (spec.model?.output || "auto") === "auto";
  const hidden = auto ? layers : layers.slice(0, -1);
  const outputs = auto ? (msg.task === "classification" && msg.num_classes > 2 ? msg.num_classes : 1) : layers[layers.length - 1]?.units;
  view.network?.destroy();
  view.network = null;
  if (drawsNeurons(msg.kind, layers) && (auto || layers.length)) {
    const active = spec.dataset?.features || msg.data?.features || ["x1", "x2"];
    view.network = new NetworkView($("network"), {});
    view.network.render({ features: active, active, layers: hidden, outputs });
  }
  $("network").hidden = !view.network;
  $("output-figure").hidden = msg.kind !== "points2d";
  if (msg.kind === "points2d") {
    view.output.reset();
    view.output.setData(msg.data || {}, { task: msg.task, numClasses: msg.num_classes });
  }
  onMetrics(msg.metrics || []);
  onStatus(msg.status || {});
}

function onStatus(msg) {
  // After a reset the job starts again at epoch 0: its curves start again too.
  if (msg.epoch === 0 && msg.step === 0 && state.points > 0) {
    view.loss?.clear();
    view.metric?.clear();
    state.points = 0;
    $("scores").textContent = "";
  }
  setStatus(msg.status, msg.epoch);
  if (msg.status === "failed") showError(t("jobview.failed", { error: msg.error || "" }));
  else if (msg.status === "deleted") showError(t("jobview.deleted"));
}

function onSnapshot(frame) {
  try {
    if (frame.header.kind === "points2d") {
      if (view.network?.columns.length) view.network.draw(frame);
      view.output.draw(frame);
    }
    state.frames += 1;
    if (Number.isInteger(frame.header.epoch)) setStatus(undefined, frame.header.epoch);
  } catch (err) {
    console.error(err);
  }
}

function start() {
  view.panel = panelChrome("job", document.querySelector(".job-view-head"), () => view.setup || {});
  const id = document.body.dataset.jobId;
  const { token } = fragment();
  const stream = new JobStream({ id, token: token || null }, {
    hello: onHello,
    metrics: onMetrics,
    status: onStatus,
    snapshot: (frame) => { onSnapshot(frame); stream.ack(); },
    error: (msg) => { if (msg.request === null) showError(msg.message); },
    connection: (what, reason) => {
      if (what === "open") showError("");
      else if (what === "lost") showError(t("connection.reconnecting", { reason }));
      else { state.closed = reason; showError(t("jobview.closed", { reason })); }
    },
  });
  stream.connect();
}

start();
