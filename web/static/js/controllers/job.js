/**
 * The page's job: creating one (play, step) or attaching to one (a run opened again), its
 * stream (hello, metrics, status and snapshot messages handed to the views and charts), and the
 * controls play, pause, step and reset. A live setting (the learning rate, ...) is patched into
 * the running job; a change that needs a new job resets it.
 */

import { api, JobStream } from "../api.js";
import { nameOf, t } from "../i18n/index.js";
import { $, frameStats, session, store, views } from "../session.js";
import { showPreviewInOutput } from "./data.js";
import { clearAllErrors, clearErrors, setConnection, showApiError, showError } from "./errors.js";
import { updateDownload } from "./files.js";
import { clearHealth, hideRewind, onHealth, onJobStatus } from "./rewind.js";
import { addRun, dropRun, keepRun, renderRuns, runLabel, runOf } from "./runs.js";
import { clearCharts, earlyStopText, onHello, onMetrics, onSnapshot, onStatus, setLossChart } from "./stream.js";

/** What the page asks of its job's stream: at most 100 metric points a message (10 a second),
 * spread evenly with the newest, so that a job training thousands of epochs a second sends its
 * curves, not every epoch (the charts keep 4,000 points at most anyway, views/charts.js). */
const STREAM_SUBSCRIPTION = { max_points: 100 };

const PLAY_ICON = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="currentColor" d="M8 5v14l11-7z"/></svg>';
const PAUSE_ICON = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true"><path fill="currentColor" d="M6 5h4v14H6zM14 5h4v14h-4z"/></svg>';

/** Record the job's status and epoch (when given) and show them: the play button, the status,
 * the epoch counter, the runs list and the download button. */
export function setStatus(status, epoch) {
  const job = session.job;
  if (job) {
    if (status) job.status = status;
    if (epoch !== undefined && epoch !== null) job.epoch = epoch;
  }
  const s = job?.status || "";
  const running = s === "running" || s === "queued";
  const play = $("play");
  play.setAttribute("aria-pressed", String(running));
  play.setAttribute("aria-label", running ? t("play.pause") : t("play.play"));
  play.innerHTML = running ? PAUSE_ICON : PLAY_ICON;
  play.classList.toggle("playing", running);
  const early = earlyStopText(job);
  const statusEl = $("job-status");
  statusEl.textContent = early ? t("early.status", { best: job.bestEpoch ?? "?" }) : s && s !== "running" ? nameOf("status", s) : "";
  statusEl.title = early;
  statusEl.classList.toggle("early", Boolean(early));
  $("early-stop").hidden = !early;
  $("early-stop").textContent = early ? t("early.notice", { text: early }) : "";
  const run = job && runOf(job.id);
  if (run && (run.status !== job.status || run.epoch !== job.epoch)) {
    run.status = job.status;
    run.epoch = job.epoch;
    renderRuns();
  }
  updateDownload();
  const e = job?.epoch ?? 0;
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
  const job = session.job;
  const per = job && batchesPerEpoch(job);
  const step = job?.step;
  if (!job || !Number.isInteger(step) || !per) { el.hidden = true; el.textContent = ""; return; }
  const within = step - (job.epochEndStep ?? (job.epoch ?? 0) * per);
  el.hidden = !(within > 0 && within < per);
  el.textContent = el.hidden ? "" : t("step.counter", { step, batch: within, batches: per });
}

async function createJob(start) {
  if (session.creating) return session.creating;
  clearAllErrors();
  const spec = store.toSpec({ start });
  // The job's name in the page's language: the teacher's cards and the job's view show it.
  spec.name = t("job.name", { dataset: nameOf("dataset", store.get("dataset")), n: store.get("layers").length });
  session.creating = (async () => {
    try {
      const created = await api.createJob(spec, session.token);
      session.token = created.token;
      session.job = { id: created.id, token: created.token, status: created.status, epoch: 0, stream: null };
      addRun(session.job, spec);
      setLossChart(spec.dataset.validation_fraction > 0);
      clearCharts();
      connect(session.job);
      setStatus(created.status, 0);
      // Paused (space or the button) while the job was being created: pause it now.
      if (start && !session.wantPlay) await control("pause");
      return session.job;
    } catch (err) {
      showApiError(err, "play");
      session.wantPlay = false;
      setStatus();
      return null;
    } finally {
      session.creating = null;
    }
  })();
  return session.creating;
}

/** Follow `run` as the page's job (after a reload, or when a run is opened from the list). */
export function attach(run, spec) {
  session.job = { id: run.id, token: run.token, status: run.status, epoch: run.epoch ?? 0, stream: null };
  if (run.token) session.token = run.token;
  setLossChart((spec?.dataset?.validation_fraction ?? 0) > 0);
  clearCharts();
  connect(session.job);
  setStatus(run.status, run.epoch ?? 0);
  renderRuns();
}

/** Let go of the page's job without keeping it (it was deleted): its stream closes. */
export function forgetJob() {
  session.job?.stream?.close();
  session.job = null;
  session.wantPlay = false;
}

function connect(job) {
  job.stream = new JobStream(job, {
    connection: (state, reason) => {
      if (job !== session.job) return;
      if (state === "closed") {
        // The job is gone (deleted, or lost with the server's data): the next play starts anew.
        setConnection("closed", t("connection.job_gone", { reason }));
        job.stream = null;
        session.job = null;
        dropRun(job.id);
        session.wantPlay = false;
        setStatus();
        return;
      }
      setConnection(state, reason);
    },
    hello: (msg) => { if (job === session.job) { onHello(msg); onJobStatus(msg.status); } },
    metrics: (points) => { if (job === session.job) onMetrics(points); },
    status: (msg) => { if (job === session.job) { onStatus(msg); onJobStatus(msg); } },
    snapshot: (frame) => {
      if (job !== session.job) return;
      onSnapshot(frame);
      if (frame.header.health !== undefined) onHealth(frame.header.health); // rewind.js
      job.stream?.ack();
    },
    error: (msg) => {
      if (job !== session.job) return;
      // A pause or stop that came just after the run ended (a family spends a small budget in
      // milliseconds): the status already says how it ended; the server's sentence adds nothing.
      if (msg.request === "control" && ENDED.includes(job.status)) return;
      showError("play", msg.message);
    },
  }, { subscribe: STREAM_SUBSCRIPTION });
  job.stream.connect();
}

async function play() {
  session.wantPlay = true;
  if (!session.job) setConnection("open");
  const job = session.job;
  if (job && (job.status === "paused" || job.status === "queued")) {
    await control("resume");
    return;
  }
  if (job && job.status === "running") return;
  if (job) await resetJob();
  await createJob(true);
}

async function pause() {
  session.wantPlay = false;
  if (session.job && (session.job.status === "running" || session.job.status === "queued")) await control("pause");
}

/** Step: one epoch (as TF Playground), or one mini-batch when "one batch" is ticked. */
export async function step() {
  session.wantPlay = false;
  if (session.job && session.job.status === "running") await control("pause");
  if (!session.job || !["paused", "queued", "running"].includes(session.job.status)) {
    if (session.job) await resetJob();
    const job = await createJob(false);
    if (!job) return;
  }
  await control("step", $("step-batch").checked ? "batch" : "epoch");
}

const ENDED = ["completed", "stopped", "failed"];

async function control(action, unit) {
  const job = session.job;
  if (!job) return;
  clearErrors(["play"]);
  if (action === "stop") job.stopRequested = true;
  // Over the open stream when there is one (its `status` message follows); else over REST.
  // A step names its unit, which only the REST control takes; the stream still brings the
  // metrics, the snapshot and the status that follow it.
  if (!unit && job.stream?.control(action)) return;
  try {
    const result = await api.control(job.id, action, job.token, unit);
    if (job === session.job && result?.status) {
      if (Number.isInteger(result.step)) job.step = result.step;
      setStatus(result.status, result.epoch ?? result.progress?.epoch);
    }
  } catch (err) {
    if (err.status === 409 && (action === "pause" || action === "stop")) {
      // The run ended before the pause came (a family spends a small budget in
      // milliseconds): show how it ended, not the server's sentence.
      const info = await api.getJob(job.id, job.token).catch(() => null);
      if (info && job === session.job && ENDED.includes(info.status)) {
        setStatus(info.status, info.progress?.epoch);
        return;
      }
    }
    showApiError(err, "play");
  }
}

/** The play button and the space bar: pause a running job, else play. */
export function togglePlay() {
  const s = session.job?.status;
  if (s === "running" || s === "queued" || (session.creating && session.wantPlay)) pause(); else play();
}

/** The page moves on from its job (kept in the runs list, or deleted when untrained). */
export async function resetJob() {
  const job = session.job;
  session.job = null;
  $("run-notice").hidden = true;
  session.wantPlay = false;
  if (job) {
    job.stream?.close();
    keepRun(job);
  }
  setConnection("open");
  hideRewind();
  clearHealth();
  clearCharts();
  views.output.reset();
  views.histogram.reset();
  frameStats.reset();
  setStatus();
  showPreviewInOutput();
  renderRuns();
}

/** Send the live settings `keys` to the running job. */
export async function patchJob(keys) {
  const job = session.job;
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
