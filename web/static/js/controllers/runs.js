/**
 * The runs list: the page's earlier jobs (the last 8), kept on the server to open again,
 * compare or delete; saved in the browser (saved_runs.js) so that a reload finds them again.
 */

import { api, ApiError } from "../api.js";
import { nameOf, t } from "../i18n/index.js";
import { restore, saveRuns } from "../saved_runs.js";
import { $, session, views } from "../session.js";
import { showPreviewInOutput } from "./data.js";
import { clearErrors, showApiError, showError } from "./errors.js";
import { attach, forgetJob, resetJob, setStatus } from "./job.js";
import { loadSpec } from "./controls.js";
import { clearCharts } from "./stream.js";

/** At most this many of the page's runs are kept; older ones are deleted on the server. */
const MAX_RUNS = 8;

export function runOf(id) { return session.runs.find((r) => r.id === id); }

/** "circle, 4-2 tanh, lr 0.03": the data set, the hidden layers, the learning rate. */
export function runLabel(run) {
  const layers = run.layers.map((l) => (l.type === "dense" ? String(l.units) : nameOf("layer", l.type))).join("-") || t("runs.no_hidden_layer");
  const act = run.layers.find((l) => l.activation)?.activation;
  return t("runs.label", { dataset: nameOf("dataset", run.dataset), layers, activation: act ? ` ${act}` : "", lr: run.learning_rate });
}

/** A new job joins the list (the oldest run beyond MAX_RUNS is deleted on the server). */
export function addRun(job, spec) {
  const run = {
    id: job.id, token: job.token, status: job.status, epoch: 0, test_loss: null, test_accuracy: null,
    dataset: spec.dataset.name, layers: spec.model.layers, learning_rate: spec.training.optimizer.learning_rate,
    seed: spec.training.seed, spec,
  };
  run.label = runLabel(run);
  session.runs.push(run);
  while (session.runs.length > MAX_RUNS) {
    const old = session.runs.shift();
    api.deleteJob(old.id, old.token).catch(() => {});
  }
  renderRuns();
}

export function dropRun(id) {
  session.runs = session.runs.filter((r) => r.id !== id);
  renderRuns();
}

/** The page moves on from `job`: stop it (a stopped job keeps its history) or, untrained, delete it.
 * A completed job has trained, whatever this page's epoch counter says: a run of a few epochs
 * may complete before its first metrics message reaches the page. */
export function keepRun(job) {
  const run = runOf(job.id);
  if (!run || !(job.epoch > 0 || job.status === "completed")) {
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

export function renderRuns() {
  views.runs.render(session.runs.map((r) => ({ ...r, current: r.id === session.job?.id })));
  saveRuns(session.runs, session.job?.id, { classMode: session.classMode });
}

/** Show a run again: its setup becomes the page's and its stream is opened (curves, picture). */
export async function openRun(id) {
  const run = runOf(id);
  if (!run || run.id === session.job?.id) return;
  clearErrors(["runs"]);
  let spec = run.spec;
  if (!spec) {
    try { spec = (await api.getJob(run.id, run.token)).spec; } catch (err) { showApiError(err, "runs"); return; }
  }
  if (session.job) resetJob();
  try {
    loadSpec(spec);
  } catch (err) {
    showError("runs", err.message);
    return;
  }
  attach(run, spec);
}

/** The runs list's delete button: asks first, then deletes the job on the server. */
export async function deleteRun(id) {
  const run = runOf(id);
  if (!run) return;
  if (!window.confirm(t("runs.delete_confirm", { label: run.label }))) return;
  clearErrors(["runs"]);
  try {
    await api.deleteJob(run.id, run.token);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) { showApiError(err, "runs"); return; }
  }
  if (session.job?.id === id) {
    forgetJob();
    clearCharts();
    views.output.reset();
    setStatus();
    showPreviewInOutput();
  }
  dropRun(id);
}

/** The runs this browser had before the reload (class mode: the student's jobs), and the current one. */
export async function restoreRuns() {
  let restored;
  try {
    restored = await restore({ classMode: session.classMode });
  } catch (err) {
    console.warn("The earlier runs could not be listed:", err);
    return;
  }
  session.runs = restored.runs.slice(-MAX_RUNS).map((r) => ({ ...r, label: r.label || runLabel(r) }));
  const owned = session.runs.filter((r) => r.token);
  if (owned.length) session.token = owned[owned.length - 1].token;
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

/** Compare the ticked runs: their settings and curves, then each one's latest picture. */
export async function compareRuns(ids) {
  clearErrors(["compare"]);
  const runs = ids.map(runOf).filter(Boolean);
  let result;
  try {
    result = await api.compare(runs.map((r) => r.id), session.token);
  } catch (err) {
    showError("compare", t("compare.failed", { message: err.message }));
    return;
  }
  const labels = result.jobs.map((j) => {
    const k = session.runs.findIndex((r) => r.id === j.id);
    return k < 0 ? j.id : t("compare.run_label", { n: k + 1, label: session.runs[k].label });
  });
  const view = $("compare-view");
  view.dataset.pictures = "loading";
  $("compare-dialog").showModal(); // first, so that the charts know their width
  views.compare.render(result, labels);
  session.compare = { result, labels, charts: views.compare.charts };
  // One stream at a time: each gives its latest picture and is closed again.
  for (const [k, j] of result.jobs.entries()) {
    const run = runOf(j.id) || { id: j.id, token: session.token };
    try {
      const { hello, frame } = await api.firstSnapshot(run);
      views.compare.drawPicture(k, hello, frame);
    } catch (err) {
      views.compare.drawError(k, t("compare.picture_failed", { message: err.message }));
    }
  }
  view.dataset.pictures = "drawn";
}
