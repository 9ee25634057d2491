/**
 * The page's wiring: reads the catalogue, builds the controls from it, keeps the store and the
 * URL hash in step, turns play/pause/step into jobs and stream controls, and hands each frame
 * to the views. Views draw, api.js talks to the server, store.js holds the state; this module
 * only connects them.
 */

import { api, ApiError, JobStream } from "./api.js";
import { language, t, translatePage } from "./i18n/index.js";
import { propOf, Store } from "./store.js";
import { checkValue } from "./validate.js";
import { LineChart } from "./views/charts.js";
import { ConfusionView } from "./views/confusion.js";
import { DatasetsView, renderParamsForm } from "./views/datasets.js";
import { HistogramView } from "./views/histograms.js";
import { ImagesView } from "./views/images.js";
import { renderImportReport } from "./views/imports.js";
import { LayersView, newLayer } from "./views/layers.js";
import { drawsNeurons, NetworkView } from "./views/network.js";
import { OutputView } from "./views/output.js";
import { CompareView, RunsView } from "./views/runs.js";
import { restore, saveRuns } from "./saved_runs.js";
import { starterChanges } from "./starters.js";
import { SequencesView } from "./views/sequences.js";
import { UploadView } from "./views/upload.js";

const $ = (id) => document.getElementById(id);
const store = new Store();

/** Frame draw times (ms), read by bench/page_frame_bench.py and the browser tests. */
const frameStats = {
  count: 0, last: 0, max: 0, total: 0, times: [],
  get mean() { return this.count ? this.total / this.count : 0; },
  get p95() {
    if (!this.times.length) return 0;
    const s = [...this.times].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(0.95 * s.length))];
  },
  reset() { this.count = 0; this.last = 0; this.max = 0; this.total = 0; this.times = []; },
};
window.__frameStats = frameStats;

const page = {
  catalog: null,
  datasets: new Map(),   // name -> catalogue entry
  schemas: new Map(),    // layer type -> JSON schema
  job: null,             // {id, token, stream, status, epoch}
  runs: [],              // this page's jobs, oldest first: {id, token, label, status, epoch, test_loss, test_accuracy}
  wantPlay: false,
  checkSeq: 0,
  report: null,
  creating: null,
};
window.__playground = { store, page };

// ---- errors shown next to the control that caused them ------------------------------------------

function errorSlot(key) {
  return document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
}

function showError(key, message) {
  const slot = errorSlot(key) || errorSlot("play");
  if (slot) { slot.textContent = message; slot.classList.toggle("shown", Boolean(message)); }
}

function clearErrors(keys) {
  for (const key of keys) showError(key, "");
}

function clearAllErrors() {
  document.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.classList.remove("shown"); });
  layersView?.showErrors([]);
}

/** Place a server error: 422 locations on their control or layer, the rest on `fallback`. */
function showApiError(err, fallback = "play") {
  if (!(err instanceof ApiError)) { showError(fallback, String(err.message || err)); console.error(err); return; }
  if (err.status === 0) setConnection("lost", err.message);
  const layerErrors = [];
  const rest = [];
  for (const d of err.locations) {
    const rel = d.loc[0] === "body" ? d.loc.slice(1) : d.loc;
    if (rel[0] === "model" && rel[1] === "layers" && Number.isInteger(rel[2])) {
      layerErrors.push([rel[2], d.msg]);
    } else if (rel[0] === "dataset" && rel[1] === "params" && rel[2]) {
      showError(`params.${rel[2]}`, d.msg);
    } else if (rel[0] === "query" && typeof rel[1] === "string") {
      // A preview's query holds the set's params and its seed: the same slots as the spec's,
      // so the model check and the preview show one message, not two.
      showError(rel[1] === "seed" ? "data_seed" : `params.${rel[1]}`, d.msg);
    } else {
      const prop = Store.propForLoc(d.loc);
      if (prop && errorSlot(prop.key)) showError(prop.key, d.msg);
      else rest.push(d.msg);
    }
  }
  const unplaced = layersView.showErrors(layerErrors);
  rest.push(...unplaced);
  if (!err.locations.length) rest.push(err.message);
  if (rest.length) showError(fallback, rest.join("; "));
}

/** A reason as a sentence: its own end mark kept ("...running?"), else a full stop added. */
const sentence = (text) => (/[.?!\u2026\u3002\uff1f\uff01]$/.test(text) ? text : `${text}.`);

function setConnection(state, reason) {
  const el = $("connection");
  if (state === "open") { el.hidden = true; el.textContent = ""; clearTimeout(page.healthTimer); page.healthTimer = null; return; }
  el.hidden = false;
  el.className = `connection ${state}`;
  el.textContent = state === "lost" ? t("connection.reconnecting", { reason: sentence(reason || t("connection.lost")) }) : reason || "";
  if (state === "lost" && !page.healthTimer) watchHealth();
}

/** While the server is away, ask it every 2 s; when it answers, clear the banner and check again. */
function watchHealth() {
  page.healthTimer = setTimeout(async () => {
    try {
      await api.health();
    } catch {
      watchHealth();
      return;
    }
    page.healthTimer = null;
    if (!page.ready) return; // start() is retrying the catalogue itself
    if (!page.job?.stream || page.job.stream.socket?.readyState === WebSocket.OPEN) setConnection("open");
    scheduleCheck();
    if (!page.job) refreshPreview();
  }, 2000);
}

// ---- views ----------------------------------------------------------------------------------------

const tooltip = {
  el: null,
  show(x, y, text) {
    this.el ??= $("tooltip");
    this.el.hidden = false;
    this.el.textContent = text;
    this.el.style.left = `${x + 12}px`;
    this.el.style.top = `${y + 12}px`;
  },
  hide() { if (this.el) this.el.hidden = true; },
};

let layersView;
let networkView;
let datasetsView;
const outputView = new OutputView($("output-map"));
const confusionView = new ConfusionView($("confusion-view"));
const histogramView = new HistogramView($("histogram-view"));
const imagesView = new ImagesView($("images-view"));
const sequencesView = new SequencesView($("sequences-view"));
const runsView = new RunsView($("runs"), { onCompare: compareRuns, onOpen: (id) => openRun(id), onDelete: (id) => deleteRun(id) });
const compareView = new CompareView($("compare-view"));
let lossChart;
let metricChart;
let lrChart;

function entry() { return page.datasets.get(store.get("dataset")); }
function kind() { return entry()?.kind || "points2d"; }

/** A starter network for a kind of data, from layer types the catalogue has: the fallback for
 * a server whose catalogue has no `starter` per data set (starters.js reads those). */
function starterLayers(e) {
  const make = (type, fields) => (page.schemas.has(type) ? newLayer(type, page.schemas.get(type), fields) : null);
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

function problemOptions() {
  return [...new Set([...page.datasets.values()].map((d) => d.task))];
}

// ---- rendering from the state -------------------------------------------------------------------

/** Train and validation shares must leave some test data (the server's rule). */
const MAX_TRAIN_PLUS_VALIDATION = 0.95;

function renderControls() {
  for (const el of document.querySelectorAll("[data-prop]")) {
    const value = store.get(el.dataset.prop);
    if (el.type === "checkbox") el.checked = Boolean(value);
    else if (document.activeElement !== el || el.tagName === "SELECT") el.value = value === null ? "" : String(value);
  }
  $("train_fraction_value").textContent = `${Math.round(store.get("train_fraction") * 100)}%`;
  const validation = store.get("validation_fraction");
  const testShare = Math.round((1 - store.get("train_fraction") - validation) * 100);
  $("validation_fraction_value").textContent = `${Math.round(validation * 100)}% (test ${testShare}%)`;
  $("early_stopping").title = validation > 0
    ? "Stop when the validation loss has not improved for this many epochs, and put back the weights of the best epoch. Empty: off."
    : "Stop when the loss has not improved for this many epochs, and put back the weights of the best epoch. Empty: off. "
      + "With no validation data it watches the test loss: move the Validation data slider to keep the test data unseen.";
  const settings = page.catalog?.optimizer_settings?.[store.get("optimizer")]?.settings || [];
  $("momentum-field").hidden = !settings.includes("momentum");
  $("init-std-field").hidden = store.get("init") !== "normal";
  $("batch_size_value").textContent = String(store.get("batch_size"));
  $("regularization_rate").disabled = store.get("regularization") === "none";
}

function renderData() {
  const e = entry();
  const task = store.get("problem");
  const shown = [...page.datasets.values()].filter((d) => d.task === task);
  datasetsView.render(shown, store.get("dataset"));
  for (const d of shown) if (page.previews.has(d.name)) datasetsView.drawPreview(d.name, page.previews.get(d.name));
  $("dataset-about").textContent = e ? `${e.title}: ${e.description}${e.teaches ? ` ${e.teaches}` : ""}` : "";
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

function renderFeatures() {
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

function toggleFeature(name) {
  const e = entry();
  const active = store.get("features");
  const next = active.includes(name) ? active.filter((f) => f !== name) : [...active, name];
  if (!next.length) { showError("features", "Keep at least one input feature."); renderFeatures(); return; }
  const order = e.features || next;
  store.set({ features: order.filter((f) => next.includes(f)) });
}

function outputUnits() {
  const last = page.report?.layers?.[page.report.layers.length - 1];
  if (last?.appended && Array.isArray(last.output_shape)) return last.output_shape[last.output_shape.length - 1];
  const e = entry();
  return e?.task === "classification" && e.num_classes > 2 ? e.num_classes : 1;
}

function renderNetwork() {
  const layers = store.get("layers");
  const e = entry();
  // 2-D points: one input per active feature (x1, x2, x1^2, ...), not the data set's two axes.
  layersView.render(layers, e?.kind === "points2d" ? [store.get("features").length] : e?.input_shape);
  const hidden = layers.length;
  $("layer-count").textContent = `${hidden} hidden layer${hidden === 1 ? "" : "s"}`;
  const neurons = drawsNeurons(kind(), layers);
  $("network").hidden = !neurons;
  $("layers").classList.toggle("diagram", !neurons);
  if (neurons) {
    networkView.render({
      features: e?.features || ["x1", "x2"], active: store.get("features"), layers, outputs: outputUnits(),
    });
  } else {
    networkView.destroy();
  }
  if (page.report) layersView.showReport(page.report);
}

let checkTimer = null;
function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkModel, 120);
}

async function checkModel() {
  const seq = ++page.checkSeq;
  const spec = store.toSpec();
  // The check covers the data, the model and the training settings: it clears their errors.
  clearErrors(["model", "loss", "init", "init_std", "train_fraction", "validation_fraction", "early_stopping"]);
  try {
    const report = await api.checkModel({ dataset: spec.dataset, model: spec.model, training: spec.training });
    if (seq !== page.checkSeq) return;
    const before = outputUnits();
    page.report = report;
    if (!page.job) setConnection("open"); // the server answers again
    layersView.showErrors([]);
    layersView.showReport(report);
    $("param-count").textContent = `${report.total_parameters.toLocaleString()} parameters`;
    if (outputUnits() !== before && drawsNeurons(kind(), store.get("layers"))) renderNetwork();
  } catch (err) {
    if (seq !== page.checkSeq) return;
    page.report = null;
    layersView.showReport(null);
    $("param-count").textContent = "";
    showApiError(err, "model");
  }
}

// ---- jobs: play, pause, step, reset -------------------------------------------------------------

const PLAY_ICON = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="currentColor" d="M8 5v14l11-7z"/></svg>';
const PAUSE_ICON = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="currentColor" d="M6 5h4v14H6zM14 5h4v14h-4z"/></svg>';

function setStatus(status, epoch) {
  if (page.job) {
    if (status) page.job.status = status;
    if (epoch !== undefined && epoch !== null) page.job.epoch = epoch;
  }
  const s = page.job?.status || "";
  const running = s === "running" || s === "queued";
  const play = $("play");
  play.setAttribute("aria-pressed", String(running));
  play.setAttribute("aria-label", running ? "Pause" : "Play");
  play.innerHTML = running ? PAUSE_ICON : PLAY_ICON;
  play.classList.toggle("playing", running);
  const early = earlyStopText(page.job);
  const statusEl = $("job-status");
  statusEl.textContent = early ? `stopped early (best epoch ${page.job.bestEpoch ?? "?"})` : s && s !== "running" ? s : "";
  statusEl.title = early;
  statusEl.classList.toggle("early", Boolean(early));
  $("early-stop").hidden = !early;
  $("early-stop").textContent = early ? `Early stopping: ${early}.` : "";
  const run = page.job && runOf(page.job.id);
  if (run && (run.status !== page.job.status || run.epoch !== page.job.epoch)) {
    run.status = page.job.status;
    run.epoch = page.job.epoch;
    renderRuns();
  }
  updateDownload();
  const e = page.job?.epoch ?? 0;
  $("epoch").textContent = String(e).padStart(6, "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  renderBatchCounter();
}

/** Batches of an epoch: the training points over the batch size, else the first epochs' steps. */
function batchesPerEpoch(job) {
  const n = job.trainCount;
  const b = job.batchSize;
  return n && b ? Math.ceil(n / b) : job.stepsPerEpoch || null;
}

/** "step 37 · batch 12 of 25": shown while an epoch is under way (after a step of one batch). */
function renderBatchCounter() {
  const el = $("batch-counter");
  const job = page.job;
  const per = job && batchesPerEpoch(job);
  const step = job?.step;
  if (!job || !Number.isInteger(step) || !per) { el.hidden = true; el.textContent = ""; return; }
  const within = step - (job.epochEndStep ?? (job.epoch ?? 0) * per);
  el.hidden = !(within > 0 && within < per);
  el.textContent = el.hidden ? "" : t("step.counter", { step, batch: within, batches: per });
}

async function createJob(start) {
  if (page.creating) return page.creating;
  clearAllErrors();
  const spec = store.toSpec({ start });
  page.creating = (async () => {
    try {
      const created = await api.createJob(spec, page.token);
      page.token = created.token;
      page.job = { id: created.id, token: created.token, status: created.status, epoch: 0, stream: null };
      window.__playground.job = page.job;
      addRun(page.job, spec);
      setLossChart(spec.dataset.validation_fraction > 0);
      clearCharts();
      connect(page.job);
      setStatus(created.status, 0);
      // Paused (space or the button) while the job was being created: pause it now.
      if (start && !page.wantPlay) await control("pause");
      return page.job;
    } catch (err) {
      showApiError(err, "play");
      page.wantPlay = false;
      setStatus();
      return null;
    } finally {
      page.creating = null;
    }
  })();
  return page.creating;
}

function connect(job) {
  job.stream = new JobStream(job, {
    connection: (state, reason) => {
      if (job !== page.job) return;
      if (state === "closed") {
        // The job is gone (deleted, or lost with the server's data): the next play starts anew.
        setConnection("closed", t("connection.job_gone", { reason }));
        job.stream = null;
        page.job = null;
        dropRun(job.id);
        page.wantPlay = false;
        setStatus();
        return;
      }
      setConnection(state, reason);
    },
    hello: (msg) => { if (job === page.job) onHello(msg); },
    metrics: (points) => { if (job === page.job) onMetrics(points); },
    status: (msg) => { if (job === page.job) onStatus(msg); },
    snapshot: (frame) => {
      if (job !== page.job) return;
      onSnapshot(frame);
      job.stream?.ack();
    },
    error: (msg) => { if (job === page.job) showError("play", msg.message); },
  });
  job.stream.connect();
}

async function play() {
  page.wantPlay = true;
  if (!page.job) setConnection("open");
  const job = page.job;
  if (job && (job.status === "paused" || job.status === "queued")) {
    await control("resume");
    return;
  }
  if (job && job.status === "running") return;
  if (job) await resetJob();
  await createJob(true);
}

async function pause() {
  page.wantPlay = false;
  if (page.job && (page.job.status === "running" || page.job.status === "queued")) await control("pause");
}

/** Step: one epoch (as TF Playground), or one mini-batch when "one batch" is ticked. */
async function step() {
  page.wantPlay = false;
  if (page.job && page.job.status === "running") await control("pause");
  if (!page.job || !["paused", "queued", "running"].includes(page.job.status)) {
    if (page.job) await resetJob();
    const job = await createJob(false);
    if (!job) return;
  }
  await control("step", $("step-batch").checked ? "batch" : "epoch");
}

async function control(action, unit) {
  const job = page.job;
  if (!job) return;
  clearErrors(["play"]);
  if (action === "stop") job.stopRequested = true;
  // Over the open stream when there is one (its `status` message follows); else over REST.
  // A step names its unit, which only the REST control takes; the stream still brings the
  // metrics, the snapshot and the status that follow it.
  if (!unit && job.stream?.control(action)) return;
  try {
    const result = await api.control(job.id, action, job.token, unit);
    if (job === page.job && result?.status) {
      if (Number.isInteger(result.step)) job.step = result.step;
      setStatus(result.status, result.epoch ?? result.progress?.epoch);
    }
  } catch (err) {
    showApiError(err, "play");
  }
}

function togglePlay() {
  const s = page.job?.status;
  if (s === "running" || s === "queued" || (page.creating && page.wantPlay)) pause(); else play();
}

async function resetJob() {
  const job = page.job;
  page.job = null;
  $("run-notice").hidden = true;
  page.wantPlay = false;
  if (job) {
    job.stream?.close();
    keepRun(job);
  }
  setConnection("open");
  clearCharts();
  outputView.reset();
  histogramView.reset();
  frameStats.reset();
  setStatus();
  showPreviewInOutput();
  renderRuns();
}

async function patchJob(keys) {
  const job = page.job;
  if (!job) return;
  const patch = store.livePatch(keys);
  if (!Object.keys(patch).length) return;
  clearErrors(keys);
  try {
    await api.patch(job.id, patch, job.token);
    if (keys.includes("batch_size")) job.batchSize = store.get("batch_size");
    const run = runOf(job.id);
    if (run && keys.includes("learning_rate")) { run.learning_rate = store.get("learning_rate"); run.label = runLabel(run); renderRuns(); }
  } catch (err) {
    showApiError(err, keys[0]);
  }
}

// ---- stream messages -----------------------------------------------------------------------------

/** Training and test curves of a metric, and validation when the job holds some data out. */
function curves(name) {
  const series = [
    { field: `train_${name}`, label: "training", stroke: "#555" },
    { field: `test_${name}`, label: "test", stroke: "#0877bd" },
  ];
  if (page.validation) series.push({ field: `validation_${name}`, label: "validation", stroke: "#f59322", dash: [6, 3] });
  return series;
}

/** The loss chart of the next job: with a validation curve when its spec holds data out. */
function setLossChart(validation) {
  if (lossChart && page.validation === validation) return;
  page.validation = validation;
  lossChart?.destroy();
  lossChart = new LineChart($("loss-chart"), { title: "Loss", series: curves("loss") });
  page.charts = { ...page.charts, loss: lossChart };
}

/** "stopped early at epoch 14; best epoch 11 put back", or "" for any other end. */
function earlyStopText(job) {
  if (job?.stopReason !== "early_stopping") return "";
  const best = job.bestEpoch ? `; the weights of epoch ${job.bestEpoch} put back` : "";
  return `stopped early at epoch ${job.epoch}: the ${page.validation ? "validation" : "test"} loss stopped improving${best}`;
}

function onHello(msg) {
  clearCharts();
  const data = msg.data || {};
  if (page.job) {
    page.job.batchSize = msg.spec?.training?.batch_size ?? null;
    page.job.trainCount = Array.isArray(data.points_train) ? data.points_train.length : null;
    page.job.step = msg.status?.step ?? page.job.step;
    page.job.epochEndStep = 0;
  }
  onMetrics(msg.metrics || []);
  if (msg.kind === "points2d") {
    const oneInput = entry()?.input_shape?.length === 1 && entry().input_shape[0] === 1;
    outputView.setData(data, { task: msg.task, numClasses: msg.num_classes, curve: oneInput && msg.task === "regression" });
    outputView.setOptions({ showTest: store.get("show_test"), discretize: store.get("discretize") });
  } else if (msg.kind === "image") {
    imagesView.setData(data, msg.class_names);
  } else {
    sequencesView.setData(data, {
      task: msg.task, classNames: msg.class_names, kind: msg.kind, tokens: Boolean(entry()?.input_tokens),
      tokenNames: data.token_names ?? page.previews.get(store.get("dataset"))?.token_names,
    });
  }
  confusionView.setClasses(msg.class_names);
  histogramView.reset();
  onStatus(msg.status || {});
}

function onStatus(msg) {
  if (page.job && msg.status) page.job.stopReason = msg.stop_reason || null;
  if (page.job && Number.isInteger(msg.step)) page.job.step = msg.step;
  setStatus(msg.status, msg.epoch);
  showStopNotice(msg);
  if (msg.status === "failed") {
    showError("play", msg.error || "The job failed.");
    page.wantPlay = false;
  } else if (msg.status === "completed" || msg.status === "stopped") {
    page.wantPlay = false;
  }
}

/**
 * Tell a student when their run was stopped by someone else: the teacher ("stopped by
 * request" that this page did not send) or the class's idle rule (its own stop_reason).
 */
function showStopNotice(msg) {
  const el = $("run-notice");
  const job = page.job;
  if (!job || msg.status !== "stopped" || job.stopRequested || !page.classMode) {
    if (msg.status && msg.status !== "stopped") { el.hidden = true; el.textContent = ""; }
    return;
  }
  const reason = (msg.stop_reason || "").replace(/^stopped:\s*/, "");
  el.textContent = reason === "stopped by request" || !reason ? t("class.stopped_by_teacher") : t("class.stopped_because", { reason });
  el.hidden = false;
}

function clearCharts() {
  for (const c of [lossChart, metricChart, lrChart]) c?.clear();
  $("scores").textContent = "";
  $("hint").hidden = false;
  $("early-stop").hidden = true;
  page.metricField = null;
}

function metricFieldOf(points) {
  if (page.metricField) return page.metricField;
  for (const r of points) {
    const names = Object.keys(r).filter((k) => k.startsWith("test_") && k !== "test_loss" && typeof r[k] === "number");
    if (names.length) {
      page.metricField = names.includes("test_accuracy") ? "accuracy" : names[0].slice(5);
      metricChart.setMetric(page.metricField);
      return page.metricField;
    }
  }
  return null;
}

function onMetrics(points) {
  if (!points.length) return;
  lossChart.append(points);
  lrChart.append(points);
  metricFieldOf(points);
  metricChart.chart?.append(points);
  $("hint").hidden = true;
  const last = points[points.length - 1];
  if (page.job && last.best_epoch) page.job.bestEpoch = last.best_epoch;
  if (page.job && last.epoch > 0 && last.step > 0) {
    page.job.stepsPerEpoch ??= Math.round(last.step / last.epoch);
    page.job.epochEndStep = last.step; // the step count when the last finished epoch ended
  }
  const run = page.job && runOf(page.job.id);
  if (run) {
    run.test_loss = last.test_loss ?? run.test_loss;
    run.test_accuracy = last.test_accuracy ?? run.test_accuracy;
    renderRuns();
  }
  if (page.job && last.epoch !== undefined) setStatus(undefined, last.epoch);
  const rows = [["Test loss", last.test_loss], ["Validation loss", last.validation_loss], ["Training loss", last.train_loss]];
  if (page.metricField) rows.push([`Test ${page.metricField.replace(/_/g, " ")}`, last[`test_${page.metricField}`]]);
  const dl = $("scores");
  dl.textContent = "";
  if (last.best_epoch) rows.push(["Best epoch", last.best_epoch]);
  for (const [name, v] of rows) {
    if (typeof v !== "number") continue;
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = Number.isInteger(v) && name === "Best epoch" ? String(v) : v.toFixed(3);
    dl.append(dt, dd);
  }
}

function onSnapshot(frame) {
  const t0 = performance.now();
  try {
    const k = frame.header.kind;
    if (k === "points2d") {
      if (networkView.columns.length) networkView.draw(frame);
      outputView.draw(frame);
    } else if (k === "image") {
      imagesView.draw(frame);
    } else {
      sequencesView.draw(frame);
    }
    if (k !== "points2d") {
      if (frame.arrays.confusion) confusionView.draw(frame.arrays.confusion);
      histogramView.draw(frame);
    }
    if (Number.isInteger(frame.header.step) && page.job) page.job.step = frame.header.step;
    if (frame.header.epoch !== undefined) setStatus(undefined, frame.header.epoch);
  } catch (err) {
    console.error(err);
  }
  const dt = performance.now() - t0;
  frameStats.count += 1; frameStats.total += dt; frameStats.last = dt;
  frameStats.max = Math.max(frameStats.max, dt);
  frameStats.times.push(dt);
  if (frameStats.times.length > 1000) frameStats.times.shift();
}

// ---- reacting to state changes ------------------------------------------------------------------

function onChange(changed) {
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
    outputView.setOptions({ showTest: store.get("show_test"), discretize: store.get("discretize") });
  }
  if (has(...changed.filter((k) => propOf(k).path))) scheduleCheck();
  const effect = Store.effectOf(changed);
  if (effect === "reset" && page.job) resetJob();
  else if (effect === "live") patchJob(changed.filter((k) => propOf(k).effect === "live"));
}

/** Before the first frame, the output shows the data itself (from the preview): all points. */
function showPreviewInOutput() {
  const name = store.get("dataset");
  const preview = page.previews?.get(name);
  if (page.job || !preview?.points || kind() !== "points2d") return;
  outputView.reset();
  outputView.setData({
    points_train: preview.points.map((p) => [p.x, p.y]),
    labels_train: preview.points.map((p) => p.label),
    domain: preview.domain,
  }, { task: preview.task, numClasses: (preview.class_names || []).length });
}

async function refreshPreview() {
  const name = store.get("dataset");
  try {
    const preview = await api.preview(name, { ...store.get("params"), seed: store.get("data_seed") });
    page.previews.set(name, preview);
    datasetsView.drawPreview(name, preview);
    showPreviewInOutput();
    clearErrors(["dataset"]);
  } catch (err) {
    showApiError(err, "dataset");
  }
}

/** Switch to a data set with its starter setup (the catalogue's `starter`), or, from a server
 * that sends none, a small network for its kind. */
function pickDataset(name) {
  const next = page.datasets.get(name);
  const prev = entry();
  const changes = { dataset: name, params: {}, problem: next.task };
  changes.features = next.kind === "points2d" ? next.default_features || ["x1", "x2"] : propOf("features").def;
  const starter = starterChanges(next, page.schemas);
  if (starter) {
    Object.assign(changes, starter);
  } else {
    const sameShape = prev && prev.kind === next.kind && Boolean(prev.input_tokens) === Boolean(next.input_tokens);
    if (!sameShape) changes.layers = starterLayers(next);
  }
  store.set(changes);
}

// ---- the controls --------------------------------------------------------------------------------

function fillSelect(select, options) {
  select.textContent = "";
  for (const o of options) {
    const name = typeof o === "string" ? o : o.name;
    const opt = new Option(o.label || name.replace(/_/g, " "), name);
    if (o.description) opt.title = o.description;
    select.add(opt);
  }
}

function bindControls() {
  const c = page.catalog;
  fillSelect($("optimizer"), c.optimizers.map((name) => ({
    name, description: c.optimizer_settings?.[name]?.description })));
  fillSelect($("schedule"), c.schedules);
  fillSelect($("activation"), c.activations);
  fillSelect($("regularization"), c.regularizations);
  fillSelect($("init"), c.initializers);
  $("init").title = c.schemas?.job?.$defs?.ModelSpec?.properties?.init?.description
    || "How the weights start; hover an option for what it does";
  fillSelect($("loss"), c.losses.map((name) => ({
    name, label: name === "auto" ? "auto (matches the task)" : undefined,
    description: c.loss_descriptions?.[name] })));
  $("loss").title = c.schemas?.training?.properties?.loss?.description || "";
  for (const f of c.export_formats || []) {
    const opt = new Option(f.name, f.name);
    opt.title = `${f.description} (.${f.extension})`;
    $("export-format").add(opt);
  }
  fillSelect($("problem"), problemOptions());
  const lrSchema = c.schemas?.optimizer?.properties?.learning_rate;
  if (lrSchema?.maximum) $("learning_rate").max = String(lrSchema.maximum);
  if (c.limits?.max_batch_size) $("batch_size").max = String(Math.min(256, c.limits.max_batch_size));

  for (const el of document.querySelectorAll("[data-prop]")) {
    const key = el.dataset.prop;
    const prop = propOf(key);
    // A number box with text that is not a number reads "" (validity.badInput): NaN, not 0.
    const read = () => {
      if (el.type === "checkbox") return el.checked;
      const text = el.value.trim();
      if (el.validity?.badInput) return NaN;
      if (prop.kind === "int?") return text === "" ? null : Number(text);
      if (prop.kind === "int" || prop.kind === "number") return text === "" ? NaN : Number(text);
      return el.value;
    };
    if (el.type === "range") {
      el.addEventListener("input", () => {
        const out = $(`${key}_value`);
        if (out) out.textContent = key.endsWith("_fraction") ? `${Math.round(Number(el.value) * 100)}%` : el.value;
      });
    }
    el.addEventListener("change", () => {
      const value = read();
      // Checked against the catalogue's limits before it reaches the store (and the share link).
      const problem = checkValue(c, key, value);
      if (problem) { showError(key, problem); return; }
      if (key === "early_stopping" && value !== null && !(value >= 1)) { showError(key, t("validate.patience")); return; }
      clearErrors([key]);
      if (key === "activation") {
        const layers = store.get("layers").map((l) => (page.schemas.get(l.type)?.properties?.activation ? { ...l, activation: value } : l));
        store.set({ activation: value, layers });
      } else if (key === "train_fraction" || key === "validation_fraction") {
        // Keep some test data: the share just moved wins, the other one gives way.
        const other = key === "train_fraction" ? "validation_fraction" : "train_fraction";
        const room = Math.round((MAX_TRAIN_PLUS_VALIDATION - value) * 100) / 100;
        store.set({ [key]: value, ...(store.get(other) > room ? { [other]: Math.max(0, room) } : {}) });
      } else if (key === "problem") {
        const keep = entry()?.task === value;
        if (keep) store.set({ problem: value });
        else {
          const first = [...page.datasets.values()].find((d) => d.task === value);
          store.set({ problem: value });
          if (first) pickDataset(first.name);
        }
      } else {
        store.set({ [key]: value });
      }
    });
  }

  $("play").addEventListener("click", togglePlay);
  $("delete-upload").addEventListener("click", deleteUpload);
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
    if (layers.length >= max) { showError("model", `At most ${max} layers.`); return; }
    const last = layers[layers.length - 1];
    const add = last ? { ...last } : starterLayers(entry())[0];
    if (add) store.set({ layers: [...layers, add] });
  });
  $("remove-layer").addEventListener("click", () => {
    const layers = store.get("layers");
    if (layers.length) store.set({ layers: layers.slice(0, -1) });
  });
  $("copy-link").addEventListener("click", async () => {
    const link = location.href;
    try {
      await navigator.clipboard.writeText(link);
      showError("load", "Link copied.");
    } catch {
      window.prompt("Copy this link:", link);
    }
  });
  $("save-spec").addEventListener("click", () => {
    const blob = new Blob([`${JSON.stringify(store.toSpec(), null, 2)}\n`], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `playground-${store.get("dataset")}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
  $("load-spec").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      loadSpec(JSON.parse(await file.text()));
      clearErrors(["load"]);
    } catch (err) {
      showError("load", `Could not load ${file.name}: ${err.message}`);
    }
  });

  document.addEventListener("keydown", (e) => {
    if (e.key !== " " || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest?.("input, select, textarea, button, summary, [role=switch], [role=radio], dialog")) return;
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
    page.job?.stream?.subscribe({ snapshots: !document.hidden });
  });
  // Closing or reloading the tab keeps every run on the server (saved_runs.js finds them again);
  // a job nobody watches pauses on its own. Deleting a run is the runs list's delete button.
  $("download").addEventListener("click", downloadModel);
  $("export-format").addEventListener("change", updateDownload);
  $("import-open").addEventListener("click", () => {
    const form = $("import-form");
    form.hidden = !form.hidden;
    $("import-open").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("import-url").focus();
  });
  $("import-form").addEventListener("submit", (event) => { event.preventDefault(); importLink(); });
  $("import-report-close").addEventListener("click", () => { $("import-report").hidden = true; });
  $("compare-dialog").addEventListener("close", () => compareView.destroy());
  const dialog = $("neuron-zoom");
  dialog.addEventListener("close", () => page.onZoomClose?.());
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
function stateFromLink(hash) {
  const { state, named } = Store.stateFromHash(hash);
  if (!page.datasets.has(state.dataset)) state.dataset = propOf("dataset").def;
  const e = page.datasets.get(state.dataset);
  if (e && !named.problem) state.problem = e.task;
  if (!named.lang) state.lang = store.get("lang");
  return state;
}

/** Apply a loaded job spec: the fields the table knows, with the page-only ones derived. */
function loadSpec(spec) {
  const changes = Store.fromSpec(spec);
  const e = page.datasets.get(changes.dataset);
  if (!e) throw new Error(`the data set '${changes.dataset}' is not on this server`);
  changes.problem = e.task;
  const act = changes.layers.find((l) => l.activation)?.activation;
  if (act) changes.activation = act;
  store.set(changes);
}

// ---- runs: the page's earlier jobs, kept to compare ----------------------------------------------

/** At most this many of the page's runs are kept; older ones are deleted on the server. */
const MAX_RUNS = 8;

function runOf(id) { return page.runs.find((r) => r.id === id); }

/** "circle, 4-2 tanh, lr 0.03": the data set, the hidden layers, the learning rate. */
function runLabel(run) {
  const layers = run.layers.map((l) => (l.type === "dense" ? String(l.units) : l.type)).join("-") || "no hidden layer";
  const act = run.layers.find((l) => l.activation)?.activation;
  return `${run.dataset}, ${layers}${act ? ` ${act}` : ""}, lr ${run.learning_rate}`;
}

function addRun(job, spec) {
  const run = {
    id: job.id, token: job.token, status: job.status, epoch: 0, test_loss: null, test_accuracy: null,
    dataset: spec.dataset.name, layers: spec.model.layers, learning_rate: spec.training.optimizer.learning_rate,
    seed: spec.training.seed, spec,
  };
  run.label = runLabel(run);
  page.runs.push(run);
  while (page.runs.length > MAX_RUNS) {
    const old = page.runs.shift();
    api.deleteJob(old.id, old.token).catch(() => {});
  }
  renderRuns();
}

function dropRun(id) {
  page.runs = page.runs.filter((r) => r.id !== id);
  renderRuns();
}

/** The page moves on from `job`: stop it (a stopped job keeps its history) or, untrained, delete it. */
function keepRun(job) {
  const run = runOf(job.id);
  if (!run || !(job.epoch > 0)) {
    api.deleteJob(job.id, job.token).catch(() => {});
    dropRun(job.id);
    return;
  }
  if (["running", "paused", "queued"].includes(job.status)) {
    run.status = "stopped";
    api.control(job.id, "stop", job.token)
      .then((r) => { if (r?.status) run.status = r.status; })
      .catch(() => {})
      .finally(renderRuns);
  }
  renderRuns();
}

function renderRuns() {
  runsView.render(page.runs.map((r) => ({ ...r, current: r.id === page.job?.id })));
  saveRuns(page.runs, page.job?.id, { classMode: page.classMode });
}

/** Show a run again: its setup becomes the page's and its stream is opened (curves, picture). */
async function openRun(id) {
  const run = runOf(id);
  if (!run || run.id === page.job?.id) return;
  clearErrors(["runs"]);
  let spec = run.spec;
  if (!spec) {
    try { spec = (await api.getJob(run.id, run.token)).spec; } catch (err) { showApiError(err, "runs"); return; }
  }
  if (page.job) resetJob();
  try {
    loadSpec(spec);
  } catch (err) {
    showError("runs", err.message);
    return;
  }
  attach(run, spec);
}

/** Follow `run` as the page's job (after a reload, or when a run is opened from the list). */
function attach(run, spec) {
  page.job = { id: run.id, token: run.token, status: run.status, epoch: run.epoch ?? 0, stream: null };
  window.__playground.job = page.job;
  if (run.token) page.token = run.token;
  setLossChart((spec?.dataset?.validation_fraction ?? 0) > 0);
  clearCharts();
  connect(page.job);
  setStatus(run.status, run.epoch ?? 0);
  renderRuns();
}

/** The runs list's delete button: asks first, then deletes the job on the server. */
async function deleteRun(id) {
  const run = runOf(id);
  if (!run) return;
  if (!window.confirm(t("runs.delete_confirm", { label: run.label }))) return;
  clearErrors(["runs"]);
  try {
    await api.deleteJob(run.id, run.token);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) { showApiError(err, "runs"); return; }
  }
  if (page.job?.id === id) {
    const job = page.job;
    job.stream?.close();
    page.job = null;
    page.wantPlay = false;
    clearCharts();
    outputView.reset();
    setStatus();
    showPreviewInOutput();
  }
  dropRun(id);
}

/** The runs this browser had before the reload (class mode: the student's jobs), and the current one. */
async function restoreRuns() {
  let restored;
  try {
    restored = await restore({ classMode: page.classMode });
  } catch (err) {
    console.warn("The earlier runs could not be listed:", err);
    return;
  }
  page.runs = restored.runs.slice(-MAX_RUNS).map((r) => ({ ...r, label: r.label || runLabel(r) }));
  const owned = page.runs.filter((r) => r.token);
  if (owned.length) page.token = owned[owned.length - 1].token;
  const current = runOf(restored.currentId);
  if (current?.spec) {
    try {
      loadSpec(current.spec);
      attach(current, current.spec);
      return;
    } catch (err) {
      console.warn("The current run could not be shown again:", err);
    }
  }
  renderRuns();
}

async function compareRuns(ids) {
  clearErrors(["compare"]);
  const runs = ids.map(runOf).filter(Boolean);
  let result;
  try {
    result = await api.compare(runs.map((r) => r.id), page.token);
  } catch (err) {
    showError("compare", `Could not compare these runs: ${err.message}`);
    return;
  }
  const labels = result.jobs.map((j) => {
    const k = page.runs.findIndex((r) => r.id === j.id);
    return k < 0 ? j.id : `Run ${k + 1}: ${page.runs[k].label}`;
  });
  const view = $("compare-view");
  view.dataset.pictures = "loading";
  $("compare-dialog").showModal(); // first, so that the charts know their width
  compareView.render(result, labels);
  page.compare = { result, labels, charts: compareView.charts };
  // One stream at a time: each gives its latest picture and is closed again.
  for (const [k, j] of result.jobs.entries()) {
    const run = runOf(j.id) || { id: j.id, token: page.token };
    try {
      const { hello, frame } = await api.firstSnapshot(run);
      compareView.drawPicture(k, hello, frame);
    } catch (err) {
      compareView.drawError(k, `Could not get this run's picture: ${err.message}`);
    }
  }
  view.dataset.pictures = "drawn";
}

// ---- download the trained model, import a TF Playground link --------------------------------------

function updateDownload() {
  const button = $("download");
  const format = $("export-format").value;
  button.disabled = !page.job || !format;
  button.title = !page.job ? "Train a network first: press play"
    : `Download the trained model as ${$("export-format").selectedOptions[0]?.textContent || format}`;
}

async function downloadModel() {
  const job = page.job;
  const format = $("export-format").value;
  if (!job || !format) return;
  clearErrors(["download"]);
  $("download").disabled = true;
  try {
    const { blob, filename } = await api.exportModel(job.id, format, job.token);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  } catch (err) {
    showError("download", err.message);
  } finally {
    updateDownload();
  }
}

async function importLink() {
  const text = $("import-url").value.trim();
  clearErrors(["import"]);
  if (!text) { showError("import", t("import.paste_first")); return; }
  try {
    // The server refuses a text that is not a TF Playground link (422): nothing changes then.
    const result = await api.importTfPlayground(text);
    const toggles = pageToggles(result.ignored);
    loadSpec(result.spec);
    store.set(toggles);
    renderImportReport($("import-report-body"), result, toggles);
    $("import-report").hidden = false;
    $("import-form").hidden = true;
    $("import-open").setAttribute("aria-expanded", "false");
  } catch (err) {
    showError("import", err instanceof ApiError ? err.message : t("import.could_not_use", { message: err.message }));
  }
}

/** TF Playground's "show test data" and "discretize" become the page's own toggles. */
const TF_TOGGLES = { showTestData: "show_test", discretize: "discretize" };

function pageToggles(ignored) {
  const toggles = { show_test: false, discretize: false };
  for (const item of ignored || []) {
    const key = TF_TOGGLES[item?.field];
    if (key) toggles[key] = String(item.value) === "true";
  }
  return toggles;
}

// ---- CSV upload -------------------------------------------------------------------------------------

/** Send a CSV; on success the new set joins the data sets and is picked (with its starter). */
async function uploadCsv(form) {
  const created = await api.uploadDataset(form, page.token);
  page.datasets.set(created.name, created);
  const problem = $("problem");
  if (![...problem.options].some((o) => o.value === created.task)) fillSelect(problem, problemOptions());
  store.set({ problem: created.task });
  pickDataset(created.name);
  renderData();
  return created;
}

/** Delete the shown upload (asks first); the server refuses (409) while a job trains on it. */
async function deleteUpload() {
  const e = entry();
  if (!e?.uploaded) return;
  // The server keeps a set while any job uses it: this page's runs on it go first.
  const runs = page.runs.filter((r) => r.dataset === e.name);
  if (!window.confirm(t("upload.delete_confirm", { name: e.title || e.name, runs: runs.length }))) return;
  clearErrors(["dataset"]);
  if (page.job && runs.some((r) => r.id === page.job.id)) {
    page.job.stream?.close();
    page.job = null;
    page.wantPlay = false;
    setStatus();
  }
  for (const run of runs) {
    try { await api.deleteJob(run.id, run.token); } catch { /* gone already */ }
    dropRun(run.id);
  }
  try {
    await api.deleteDataset(e.name, page.token);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) { showApiError(err, "dataset"); return; }
  }
  page.datasets.delete(e.name);
  page.previews.delete(e.name);
  if (page.job) resetJob();
  const first = [...page.datasets.values()].find((d) => d.task === e.task) || page.datasets.get(propOf("dataset").def);
  fillSelect($("problem"), problemOptions());
  store.set({ problem: first.task });
  pickDataset(first.name);
  renderData();
}

// ---- start ---------------------------------------------------------------------------------------

async function start() {
  translatePage();
  try {
    page.catalog = await api.catalog();
  } catch (err) {
    setConnection("lost", t("connection.catalogue", { message: err.message }));
    setTimeout(start, 2000);
    return;
  }
  setConnection("open");
  for (const l of page.catalog.layers) page.schemas.set(l.type, l.schema);
  for (const d of page.catalog.datasets) page.datasets.set(d.name, d);
  page.previews = new Map();

  layersView = new LayersView($("layers"), {
    schemas: page.schemas,
    onChange: (layers) => store.set({ layers }),
  });
  networkView = new NetworkView($("network"), {
    tooltip,
    zoomCanvas: $("neuron-zoom-canvas"),
    onToggleFeature: toggleFeature,
    onUnits: (i, delta) => {
      const layers = store.get("layers").map((l) => ({ ...l }));
      const max = page.catalog.limits?.max_units ?? 4096;
      layers[i].units = Math.max(1, Math.min(max, layers[i].units + delta));
      store.set({ layers });
    },
    onZoom: (label, onClose) => {
      $("neuron-zoom-caption").textContent = `${label}: its output over the input plane`;
      page.onZoomClose = onClose;
      $("neuron-zoom").showModal();
    },
  });
  datasetsView = new DatasetsView($("datasets"), { onPick: pickDataset });
  new UploadView($("upload"), { onUpload: uploadCsv, maxBytes: page.catalog.limits?.max_upload_bytes });
  setLossChart(false);
  metricChart = {
    chart: null,
    setMetric(name) {
      this.chart?.destroy();
      this.chart = new LineChart($("metric-chart"), { title: name.replace(/_/g, " "), series: curves(name) });
    },
    clear() { this.chart?.destroy(); this.chart = null; $("metric-chart").textContent = ""; },
  };
  lrChart = new LineChart($("lr-chart"), {
    title: "Learning rate", height: 100,
    series: [{ field: "learning_rate", label: "learning rate", stroke: "#f59322" }],
  });

  page.charts.metric = metricChart;
  page.charts.learning_rate = lrChart;
  bindControls();
  // ?lang=zh goes into the share link, so that whoever opens it reads the same language.
  if (new URLSearchParams(location.search).get("lang")) store.set({ lang: language() });
  store.set(stateFromLink(location.hash));
  await showWhoAmI();
  await restoreRuns();
  store.subscribe(onChange);
  history.replaceState(null, "", `${location.pathname}${location.search}#${store.toHash()}`);
  renderControls();
  renderData();
  renderNetwork();
  setStatus();
  renderRuns();
  scheduleCheck();
  outputView.compose();
  // Thumbnails: one preview per data set, in the background.
  for (const name of page.datasets.keys()) {
    const params = name === store.get("dataset") ? { ...store.get("params"), seed: store.get("data_seed") } : {};
    const load = (retries) => api.preview(name, params).then((p) => {
      page.previews.set(name, p);
      datasetsView.drawPreview(name, p);
      if (name === store.get("dataset")) showPreviewInOutput();
    }).catch(() => { if (retries) setTimeout(() => load(retries - 1), 1500); });
    load(2);
  }
  page.ready = true;
  document.body.classList.add("ready");
}

/** Class mode: who the student is joined as, and a sign-out (the runs stay with the class). */
async function showWhoAmI() {
  let info = null;
  try { info = await api.classInfo(); } catch { /* an older server: open mode */ }
  page.classMode = info?.mode === "class";
  const box = $("who");
  if (!page.classMode || !info.name) { box.hidden = true; return; }
  $("who-name").textContent = t("class.joined_as", { name: info.name });
  box.hidden = false;
  $("sign-out").onclick = async () => {
    if (!window.confirm(t("class.sign_out_confirm"))) return;
    try {
      await api.leaveClass();
    } catch (err) {
      showError("who", err.message);
      return;
    }
    page.job?.stream?.close();
    location.assign("/join");
  };
}

start();
