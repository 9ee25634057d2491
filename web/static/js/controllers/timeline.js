/**
 * The timeline (issue 16, "See why"): scrub back through a run, and replay it beside another.
 *
 * The page's bar (under the loss curves) lists the epochs whose picture the server keeps
 * (GET /api/jobs/{id}/timeline, polled while the page shows a job); dragging it, or its arrow
 * keys, draws the kept picture of that epoch (GET /api/jobs/{id}/timeline/{epoch}: the
 * stream's binary frame, decoded by wire.js) in the output map (or the images or sequences
 * view) and a marker line on the curves. While it scrubs, live frames are kept but not drawn;
 * "Live" (or Escape) draws the newest one again. Everything comes from the server, so it
 * survives a reload.
 *
 * "Replay beside" makes a run of the page's setup (change a setting first) with the shown
 * run's seeds, so both start from the same initial weights, and opens the comparison of the
 * two; the comparison gets a shared scrubber that draws every compared run's picture at the
 * same epoch (the epochs all of them keep) and marks the curves there.
 *
 * The two routes are named here (they are the timeline's own; api.js knows the others).
 */

import { api } from "../api.js";
import { t } from "../i18n/index.js";
import { $, session, store, views } from "../session.js";
import { TimelineBar } from "../views/timeline.js";
import { decodeFrame } from "../wire.js";
import { showError } from "./errors.js";
import { addRun, compareRuns, runOf } from "./runs.js";

const POLL_MS = 1500;
const listUrl = (id) => `/api/jobs/${encodeURIComponent(id)}/timeline`;
const pictureUrl = (id, epoch) => `${listUrl(id)}/${epoch}`;

const pictures = new Map(); // "id:epoch" -> decoded frame (a kept picture never changes)
const state = { bar: null, jobId: null, key: null, seq: 0, live: {}, draw: {} };

async function get(url, token) {
  const response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response;
}

export async function timelineOf(id, token) {
  return (await get(listUrl(id), token)).json();
}

export async function pictureOf(id, epoch, token) {
  const key = `${id}:${epoch}`;
  if (!pictures.has(key)) {
    const frame = decodeFrame(await (await get(pictureUrl(id, epoch), token)).arrayBuffer());
    if (pictures.size > 600) pictures.delete(pictures.keys().next().value);
    pictures.set(key, frame);
  }
  return pictures.get(key);
}

/** The view that draws a frame of this kind. */
const viewOf = (kind) => (kind === "points2d" ? "output" : kind === "image" ? "images" : "sequences");

function markCurves(charts, epoch) {
  for (const chart of charts) chart?.setMarker?.(epoch);
}

function pageCharts() {
  const { loss, metric, learning_rate: lr } = session.charts;
  return [loss, metric?.chart, lr];
}

/** Live frames wait while the bar scrubs (the views' own draw is kept in state.draw). */
function gateLiveFrames() {
  for (const name of ["output", "images", "sequences"]) {
    const view = views[name];
    if (!view) continue;
    const draw = view.draw.bind(view);
    state.draw[name] = draw;
    view.draw = (frame) => {
      if (state.bar?.scrubbing) { state.live[name] = frame; return; }
      draw(frame);
    };
  }
}

async function scrub(epoch) {
  const job = session.job;
  if (!job) return;
  const seq = ++state.seq;
  markCurves(pageCharts(), epoch);
  try {
    const frame = await pictureOf(job.id, epoch, job.token);
    if (seq !== state.seq || !state.bar.scrubbing || session.job !== job) return;
    state.draw[viewOf(frame.header.kind)]?.(frame);
    state.bar.setNote("");
  } catch (err) {
    if (seq === state.seq) state.bar.setNote(t("timeline.failed", { message: err.message }));
  }
}

function goLive() {
  state.seq++;
  state.bar.showLive();
  state.bar.setNote("");
  markCurves(pageCharts(), null);
  for (const [name, frame] of Object.entries(state.live)) state.draw[name]?.(frame);
  state.live = {};
}

async function refresh() {
  const job = session.job;
  if (job?.id !== state.jobId) {
    state.jobId = job?.id ?? null;
    state.key = null;
    if (state.bar.scrubbing) goLive();
    state.bar.setEpochs([]);
  }
  if (!job || document.hidden) return;
  const key = `${job.id}:${job.status}:${job.epoch}`;
  if (key === state.key) return;
  try {
    const timeline = await timelineOf(job.id, job.token);
    if (session.job !== job) return;
    state.key = key;
    const at = state.bar.scrubbing ? Number(state.bar.root.dataset.epoch) : null;
    if (at !== null && !timeline.epochs.includes(at)) goLive(); // reset: that picture is gone
    state.bar.setEpochs(timeline.epochs);
  } catch {
    state.key = null; // the job is being created or is gone: the next poll asks again
  }
}

/** A run of the page's setup from the shown run's initial weights, compared with it. */
async function replayBeside() {
  const job = session.job;
  if (!job) return;
  try {
    const shown = await api.getJob(job.id, job.token);
    const spec = store.toSpec({ start: true });
    spec.training.seed = shown.spec.training.seed;
    spec.dataset.seed = shown.spec.dataset.seed;
    spec.name = t("timeline.replay_name", { name: shown.name || job.id });
    const created = await api.createJob(spec, session.token);
    addRun({ id: created.id, token: created.token, status: created.status }, spec);
    // Both specs as the server filled them in: the same network on the same inputs and the
    // same seed give the same initial weights (the data's noise or the optimizer do not count).
    const replay = await api.getJob(created.id, created.token);
    const same = [(s) => s.model, (s) => s.dataset.name, (s) => s.dataset.features, (s) => s.training.seed]
      .every((f) => JSON.stringify(f(shown.spec)) === JSON.stringify(f(replay.spec)));
    state.replayNote = same ? t("timeline.same_weights") : t("timeline.other_weights");
    await compareRuns([job.id, created.id]);
  } catch (err) {
    showError("compare", t("timeline.replay_failed", { message: err.message }));
  }
}

// -- the comparison's shared scrubber ------------------------------------------------------

const hellos = new Map(); // job id -> its stream's hello (the data under its pictures)
const shared = { bar: null, timer: null, seq: 0, latest: [] };

function comparedJobs() {
  return (session.compare?.result?.jobs || []).map((j) => ({ id: j.id, token: runOf(j.id)?.token || session.token }));
}

async function drawCompared(epochs) {
  const seq = ++shared.seq;
  const jobs = comparedJobs();
  const frames = await Promise.all(jobs.map((j, k) => pictureOf(j.id, epochs[k], j.token).catch(() => null)));
  if (seq !== shared.seq) return;
  frames.forEach((frame, k) => {
    if (frame) views.compare.drawPicture(k, hellos.get(jobs[k].id), frame);
  });
}

async function refreshShared() {
  const jobs = comparedJobs();
  if (!shared.bar || !$("compare-dialog").open || !jobs.length) return stopShared();
  try {
    const lists = await Promise.all(jobs.map((j) => timelineOf(j.id, j.token)));
    const reached = lists.map((l) => l.epoch).join(",");
    if (reached !== shared.reached) await refreshCurves(jobs); // the first time too
    shared.reached = reached;
    shared.latest = lists.map((l) => l.epochs[l.epochs.length - 1] ?? 0);
    const common = lists[0].epochs.filter((e) => lists.every((l) => l.epochs.includes(e)));
    shared.bar.setEpochs(common);
  } catch (err) {
    shared.bar.setNote(t("timeline.failed", { message: err.message }));
  }
}

/** The compared curves again while a run (the replay) trains on: one record per epoch. */
async function refreshCurves(jobs) {
  const result = await api.compare(jobs.map((j) => j.id), session.token);
  for (const [metric, chart] of Object.entries(views.compare.charts || {})) {
    chart.clear();
    chart.append(result.epochs.map((epoch, i) => {
      const record = { epoch };
      result.jobs.forEach((j, k) => { record[`run${k}`] = j.metrics?.[metric]?.[i] ?? null; });
      return record;
    }));
  }
}

function stopShared() {
  clearInterval(shared.timer);
  shared.timer = null;
}

function addSharedBar() {
  const view = $("compare-view");
  if (view.dataset.pictures !== "drawn" || view.querySelector(".compare-timeline")) return;
  const root = document.createElement("div");
  root.className = "compare-timeline";
  view.prepend(root);
  shared.bar = new TimelineBar(root, {
    id: "compare-timeline",
    label: t("timeline.shared"),
    onScrub: (epoch) => {
      markCurves(Object.values(views.compare.charts || {}), epoch);
      drawCompared(comparedJobs().map(() => epoch));
    },
    onLive: () => {
      shared.bar.showLive();
      markCurves(Object.values(views.compare.charts || {}), null);
      drawCompared(shared.latest);
    },
  });
  shared.bar.setNote(state.replayNote || "");
  state.replayNote = "";
  stopShared();
  shared.reached = null;
  shared.timer = setInterval(refreshShared, POLL_MS);
  refreshShared();
}

/** Wire the page's bar (under the loss curves) and the comparison's shared scrubber. */
export function bindTimeline() {
  const root = $("timeline");
  if (!root) return;
  state.bar = new TimelineBar(root, {
    id: "timeline", label: t("timeline.label"), onScrub: scrub, onLive: goLive, onReplay: replayBeside,
  });
  root.hidden = false;
  gateLiveFrames();
  const firstSnapshot = api.firstSnapshot;
  api.firstSnapshot = async (run, options) => {
    const answer = await firstSnapshot(run, options);
    hellos.set(run.id, answer.hello);
    return answer;
  };
  new MutationObserver(addSharedBar).observe($("compare-view"), { attributes: true, attributeFilter: ["data-pictures"] });
  $("compare-dialog").addEventListener("close", stopShared);
  setInterval(refresh, POLL_MS);
  refresh();
}
