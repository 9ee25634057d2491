/**
 * What the job's stream brings, shown: the hello (the data to draw on), the metrics (the loss,
 * metric and learning-rate charts, the scores), the status (and why a run stopped) and each
 * snapshot (handed to the views of its kind, its draw time counted in frameStats).
 */

import { classLabel, nameOf, t } from "../i18n/index.js";
import { $, frameStats, session, store, views } from "../session.js";
import { CURVE_COLOURS, LineChart } from "../views/charts.js";
import { entry } from "./data.js";
import { showError } from "./errors.js";
import { setStatus } from "./job.js";
import { renderRuns, runOf } from "./runs.js";

/** Training and test curves of a metric, and validation when the job holds some data out. */
function curves(name) {
  const series = [
    { field: `train_${name}`, label: t("chart.training"), stroke: CURVE_COLOURS.training },
    { field: `test_${name}`, label: t("chart.test"), stroke: CURVE_COLOURS.test },
  ];
  if (session.validation) series.push({ field: `validation_${name}`, label: t("chart.validation"), stroke: CURVE_COLOURS.validation, dash: [6, 3] });
  return series;
}

/** The loss chart of the next job: with a validation curve when its spec holds data out. */
export function setLossChart(validation) {
  if (session.charts.loss && session.validation === validation) return;
  session.validation = validation;
  session.charts.loss?.destroy();
  session.charts.loss = new LineChart($("loss-chart"), { title: t("chart.loss"), series: curves("loss") });
}

/** The metric chart (made when the first metrics name the metric) and the learning-rate chart. */
export function makeCharts() {
  setLossChart(false);
  session.charts.metric = {
    chart: null,
    setMetric(name) {
      this.chart?.destroy();
      this.chart = new LineChart($("metric-chart"), { title: nameOf("metric", name, name.replace(/_/g, " ")), series: curves(name) });
    },
    clear() { this.chart?.destroy(); this.chart = null; $("metric-chart").textContent = ""; },
  };
  session.charts.learning_rate = new LineChart($("lr-chart"), {
    title: t("chart.learning_rate"), height: 100,
    series: [{ field: "learning_rate", label: t("chart.learning_rate_curve"), stroke: "#f59322" }],
  });
}

/** "stopped early at epoch 14; best epoch 11 put back", or "" for any other end. */
export function earlyStopText(job) {
  if (job?.stopReason !== "early_stopping") return "";
  const best = job.bestEpoch ? t("early.best_put_back", { epoch: job.bestEpoch }) : "";
  const curve = session.validation ? t("chart.validation") : t("chart.test");
  return t("early.stopped", { epoch: job.epoch, curve, best });
}

export function onHello(msg) {
  clearCharts();
  const data = msg.data || {};
  const job = session.job;
  if (job) {
    job.batchSize = msg.spec?.training?.batch_size ?? null;
    job.trainCount = Array.isArray(data.points_train) ? data.points_train.length : null;
    job.step = msg.status?.step ?? job.step;
    job.epochEndStep = 0;
  }
  onMetrics(msg.metrics || []);
  if (msg.kind === "points2d") {
    const oneInput = entry()?.input_shape?.length === 1 && entry().input_shape[0] === 1;
    views.output.setData(data, { task: msg.task, numClasses: msg.num_classes, curve: oneInput && msg.task === "regression" });
    views.output.setOptions({ showTest: store.get("show_test"), discretize: store.get("discretize") });
  } else if (msg.kind === "image") {
    views.images.setData(data, (msg.class_names || []).map(classLabel));
  } else {
    views.sequences.setData(data, {
      task: msg.task, classNames: (msg.class_names || []).map(classLabel), kind: msg.kind, tokens: Boolean(entry()?.input_tokens),
      tokenNames: data.token_names ?? session.previews.get(store.get("dataset"))?.token_names,
    });
  }
  views.confusion.setClasses((msg.class_names || []).map(classLabel));
  views.histogram.reset();
  onStatus(msg.status || {});
}

export function onStatus(msg) {
  if (session.job && msg.status) session.job.stopReason = msg.stop_reason || null;
  if (session.job && Number.isInteger(msg.step)) session.job.step = msg.step;
  setStatus(msg.status, msg.epoch);
  showStopNotice(msg);
  if (msg.status === "failed") {
    showError("play", msg.error || t("job.failed"));
    session.wantPlay = false;
  } else if (msg.status === "completed" || msg.status === "stopped") {
    session.wantPlay = false;
  }
}

/**
 * Tell a student when their run was stopped by someone else: the teacher ("stopped by
 * request" that this page did not send) or the class's idle rule (its own stop_reason).
 */
function showStopNotice(msg) {
  const el = $("run-notice");
  const job = session.job;
  if (showMovedNotice(el, msg)) return;  // issue 15: training on a Ray cluster
  if (!job || msg.status !== "stopped" || job.stopRequested || !session.classMode) {
    if (msg.status && msg.status !== "stopped") { el.hidden = true; el.textContent = ""; }
    return;
  }
  const reason = (msg.stop_reason || "").replace(/^stopped:\s*/, "");
  el.textContent = reason === "stopped by request" || !reason ? t("class.stopped_by_teacher") : t("class.stopped_because", { reason });
  el.hidden = false;
}

let movedUntil = 0;
const MOVED_NOTICE_MS = 10000;

/**
 * Issue 15 (docs/CLUSTER.md): the machine training this job stopped and the job goes on on
 * another from its last checkpoint (a status whose stop_reason starts "moved:"): say so for a
 * few seconds, through the statuses that follow. True while the notice stands.
 */
function showMovedNotice(el, msg) {
  if ((msg.stop_reason || "").startsWith("moved:")) {
    el.textContent = t("cluster.moved", { epoch: msg.epoch ?? 0 });
    el.hidden = false;
    movedUntil = Date.now() + MOVED_NOTICE_MS;
    setTimeout(() => {
      if (Date.now() >= movedUntil) { el.hidden = true; el.textContent = ""; }
    }, MOVED_NOTICE_MS);
    return true;
  }
  return Date.now() < movedUntil && msg.status !== "stopped" && msg.status !== "failed";
}

export function clearCharts() {
  const { loss, metric, learning_rate: lr } = session.charts;
  for (const c of [loss, metric, lr]) c?.clear();
  $("scores").textContent = "";
  $("hint").hidden = false;
  $("early-stop").hidden = true;
  session.metricField = null;
}

function metricFieldOf(points) {
  if (session.metricField) return session.metricField;
  for (const r of points) {
    const names = Object.keys(r).filter((k) => k.startsWith("test_") && k !== "test_loss" && typeof r[k] === "number");
    if (names.length) {
      session.metricField = names.includes("test_accuracy") ? "accuracy" : names[0].slice(5);
      session.charts.metric.setMetric(session.metricField);
      return session.metricField;
    }
  }
  return null;
}

export function onMetrics(points) {
  if (!points.length) return;
  const { loss, metric, learning_rate: lr } = session.charts;
  loss.append(points);
  lr.append(points);
  metricFieldOf(points);
  metric.chart?.append(points);
  $("hint").hidden = true;
  const last = points[points.length - 1];
  const job = session.job;
  if (job && last.best_epoch) job.bestEpoch = last.best_epoch;
  if (job && last.epoch > 0 && last.step > 0) {
    job.stepsPerEpoch ??= Math.round(last.step / last.epoch);
    job.epochEndStep = last.step; // the step count when the last finished epoch ended
  }
  const run = job && runOf(job.id);
  if (run) {
    run.test_loss = last.test_loss ?? run.test_loss;
    run.test_accuracy = last.test_accuracy ?? run.test_accuracy;
    renderRuns();
  }
  if (job && last.epoch !== undefined) setStatus(undefined, last.epoch);
  showScores(last);
}

/** The last epoch's numbers beside the charts: losses, the metric and the best epoch. */
function showScores(last) {
  const field = session.metricField;
  const rows = [[t("scores.test_loss"), last.test_loss], [t("scores.validation_loss"), last.validation_loss],
    [t("scores.training_loss"), last.train_loss]];
  if (field) rows.push([t("scores.test_metric", { name: nameOf("metric", field, field.replace(/_/g, " ")) }), last[`test_${field}`]]);
  if (last.best_epoch) rows.push([t("scores.best_epoch"), last.best_epoch, true]);
  const dl = $("scores");
  dl.textContent = "";
  for (const [name, v, whole] of rows) {
    if (typeof v !== "number") continue;
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = whole && Number.isInteger(v) ? String(v) : v.toFixed(3);
    dl.append(dt, dd);
  }
}

export function onSnapshot(frame) {
  const t0 = performance.now();
  try {
    const k = frame.header.kind;
    if (k === "points2d") {
      if (views.network.columns.length) views.network.draw(frame);
      views.output.draw(frame);
    } else if (k === "image") {
      views.images.draw(frame);
    } else {
      views.sequences.draw(frame);
    }
    if (k !== "points2d") {
      if (frame.arrays.confusion) views.confusion.draw(frame.arrays.confusion);
      views.histogram.draw(frame);
    }
    if (Number.isInteger(frame.header.step) && session.job) session.job.step = frame.header.step;
    if (frame.header.epoch !== undefined) setStatus(undefined, frame.header.epoch);
  } catch (err) {
    console.error(err);
  }
  frameStats.add(performance.now() - t0);
}
