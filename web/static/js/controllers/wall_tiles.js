/**
 * The class wall's tiles: one tile per student, following that student's current run over the
 * wall's one multi-job stream (api.js MultiStream, docs/STREAM.md) and drawing it with the
 * student page's views.
 *
 * - `currentRuns(jobs)`: each student's current run, the job they were most recently active on.
 * - `Tile`: one student's tile. Two-dimensional data shows the decision boundary
 *   (views/output.js) and a loss sparkline; other data shows the loss curve as its main view:
 *   once its hello says so, the tile tells the stream it wants no frames for this job
 *   (MultiStream.setSnapshots, the subscribe's `without_snapshots`), so the server stops
 *   building them (and a frame that came before is ignored). A new run of the student replaces the old
 *   one: the tile unwatches the old job and watches the new one on the same stream.
 * - `Painter`: one animation-frame loop for all tiles (and the spotlight). A snapshot only marks
 *   its tile; the loop draws the newest frame of each marked tile and then acknowledges the
 *   bundle (or frame) those frames came in, once, so the server sends the next one only once
 *   the last is on the screen (never a queue of old frames). News without a picture (metrics,
 *   a status) waits for the next snapshot's paint, or SLOW_MS at most: the page repaints about
 *   as often as pictures come, not once per message.
 *
 * What the wall costs the server (issue 14: thirty tiles must not slow training): one socket
 * for every tile, about one message a tick (a bundle of frames, a batch of metrics) and one
 * ack; the `tile` detail (the decision boundary only, on a 50 x 50 grid; the spotlight's own
 * stream asks for `boundary`, 100 x 100) and lighter metrics (TILE_METRICS: only the fields a
 * tile shows, a few points a message, two messages a second; the spotlight asks for every
 * point while it is open). The numbers under a tile touch the DOM only when their text
 * changes, and its loss strip draws at most one point per pixel column.
 *
 * Counts for the benchmark and tests: `Tile.frames` (snapshots drawn) and `Tile.updates`
 * (redraws of any kind), read through window.__wallStats (wall.js).
 */

import { t } from "../i18n/index.js";
import { drawSparkline, thinned } from "../views/charts.js";
import { OutputView } from "../views/output.js";

export const TILE_SIZE = 200; // canvas pixels of a tile's main view at least (CSS scales it)
const MAX_CANVAS = 640; // ... and at most (one or two tiles on a large screen)
const MAX_POINTS = 2000; // metric records a tile keeps (older ones are thinned)
const SPARK_MS = 400; // a tile's loss curve is redrawn at most this often
const SLOW_MS = 250; // news without a picture is painted within this many ms
/** The metrics the tiles' stream asks for (server.stream.hub Subscription): the fields the
 * tiles show, at most `max_points` points per message, `metrics_hz` a second. */
export const TILE_METRICS = {
  fields: ["train_loss", "test_loss", "train_accuracy", "test_accuracy", "test_r2"],
  metrics_hz: 2, max_points: 8,
};
/** The spotlight's own stream: every point, ten messages a second (its chart shows the loss
 * by epoch). */
export const SPOT_METRICS = { ...TILE_METRICS, metrics_hz: 10, max_points: null };

/** The subscription of the wall's one MultiStream: `hz` bundles a second at most. */
export function tileSubscription(hz) {
  return { hz, detail: "tile", snapshots: true, metrics: true, ...TILE_METRICS };
}

/** Statuses of a run that is training or may train again soon. */
const ACTIVE = new Set(["running", "queued"]);

function time(iso) { return iso ? Date.parse(iso) || 0 : 0; }

/**
 * student id -> their current run: a running or queued job beats any other (the newest such
 * one when there are several), else the job updated last. Jobs without a student (the
 * teacher's, a script's) are left out; `everyJob` (an open server, no students) keys every
 * active or paused job by its own id instead.
 */
export function currentRuns(jobs, { everyJob = false } = {}) {
  const runs = new Map();
  const rank = (j) => [ACTIVE.has(j.status) ? 1 : 0,
    ACTIVE.has(j.status) ? time(j.created_at) : time(j.updated_at) || time(j.created_at)];
  for (const job of jobs) {
    const key = everyJob ? (["running", "queued", "paused"].includes(job.status) ? `job:${job.id}` : null)
      : job.student_id;
    if (!key) continue;
    const held = runs.get(key);
    if (!held) { runs.set(key, job); continue; }
    const [a, b] = [rank(job), rank(held)];
    if (a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])) runs.set(key, job);
  }
  return runs;
}

/** The number a tile shows: its last record's loss (test, else training). */
export function lossOf(record) {
  const v = record?.test_loss ?? record?.train_loss;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** [message key of its short name, its value as text, key of its long name] of the metric a
 * tile shows beside the loss. */
export function metricOf(record, task) {
  if (task === "regression") {
    const v = record?.test_r2;
    return ["wall.metric.r2", typeof v === "number" ? v.toFixed(3) : "\u2013", "wall.metric.r2"];
  }
  const v = record?.test_accuracy ?? record?.train_accuracy;
  return ["wall.metric.accuracy", typeof v === "number" ? `${(100 * v).toFixed(1)}%` : "\u2013",
    "wall.metric.accuracy_long"];
}

/** The one animation-frame loop that draws every tile (and the spotlight) that has news: a
 * new picture at the next screen refresh, other news (`urgent` false) within SLOW_MS. After
 * drawing, it acknowledges each stream that `ackAfter` named: once, whatever the number of
 * frames a bundle held. */
export class Painter {
  constructor() {
    this.dirty = new Set();
    this.acks = new Set(); // streams (with an ack()) whose last message waits for this paint
    this.scheduled = false; // an animation frame is asked for
    this.timer = null; // ... or will be, SLOW_MS after the last paint
    this.paintedAt = -Infinity;
  }

  mark(tile, urgent = false) {
    this.dirty.add(tile);
    if (this.scheduled) return;
    if (!urgent) {
      this.timer ??= setTimeout(() => this.soon(), Math.max(0, this.paintedAt + SLOW_MS - performance.now()));
      return;
    }
    this.soon();
  }

  /** A bundle (or frame) of `stream` arrived: ack it after the next paint. */
  ackAfter(stream) {
    this.acks.add(stream);
    this.soon();
  }

  soon() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.paint());
  }

  paint() {
    this.scheduled = false;
    this.paintedAt = performance.now();
    const tiles = [...this.dirty];
    const acks = [...this.acks];
    this.dirty.clear();
    this.acks.clear();
    try {
      for (const tile of tiles) tile.paint();
    } finally {
      for (const stream of acks) stream.ack(); // a failed paint must not stall the stream
    }
  }
}

export class Tile {
  /**
   * `student`: {key, id, name}; `painter`: the shared Painter; `streams`: the wall's
   * MultiStream; `onOpen(tile)`: the tile was clicked or chosen with Enter or Space.
   */
  constructor(student, { painter, streams, onOpen }) {
    Object.assign(this, { student, painter, streams, onOpen });
    this.job = null;
    this.watching = null; // the job id watched on `streams`
    this.live = false; // its hello came (and the stream did not drop since)
    this.hello = null;
    this.points = [];
    this.status = null;
    this.frame = null; // the newest snapshot not drawn yet
    this.lastFrame = null;
    this.frames = 0;
    this.updates = 0;
    this.curveAt = -Infinity; // when the loss curve was drawn last (performance.now())
    this.curveTimer = null;
    this.shown = ""; // the numbers' text now under the picture (written only when it changes)
    this.el = document.createElement("article");
    this.el.className = "tile";
    this.el.tabIndex = 0;
    this.el.setAttribute("role", "button");
    this.el.dataset.studentId = student.id ?? "";
    this.el.innerHTML = `
      <canvas class="main" width="${TILE_SIZE}" height="${TILE_SIZE}"></canvas>
      <div class="caption"><span class="number"></span><span class="name"></span><span class="dot"></span></div>
      <div class="numbers"><span class="loss"></span><span class="metric"></span></div>
      <canvas class="spark" width="${TILE_SIZE}" height="28"></canvas>`;
    this.canvas = this.el.querySelector("canvas.main");
    this.spark = this.el.querySelector("canvas.spark");
    this.output = new OutputView(this.canvas, { pointRadius: 1.6 });
    this.el.addEventListener("click", () => this.onOpen(this));
    this.el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); this.onOpen(this); }
    });
    this.el.querySelector(".name").textContent = student.name || "";
    this.showEmpty();
  }

  /** The tile's place on the wall (1, 2, ...) and whether it shows the student's name. */
  label(number, showNames) {
    this.number = number;
    this.el.querySelector(".number").textContent = String(number);
    this.el.querySelector(".name").hidden = !showNames;
    this.el.setAttribute("aria-label", showNames && this.student.name
      ? t("wall.tile.label", { n: number, name: this.student.name }) : t("wall.tile.anonymous", { n: number }));
  }

  rename(name) {
    this.student.name = name;
    this.el.querySelector(".name").textContent = name || "";
  }

  /** Follow `job` (this student's current run), or none: a new run replaces the old one. */
  follow(job) {
    if (job?.id === this.job?.id) {
      if (job) this.setStatus(this.status && this.live ? this.status : job.status);
      return;
    }
    this.unwatch();
    this.job = job;
    this.hello = null;
    this.points = job?.metrics ? [job.metrics] : [];
    this.frame = this.lastFrame = null;
    this.el.dataset.jobId = job?.id ?? "";
    if (!job) { this.showEmpty(); return; }
    this.el.classList.remove("empty");
    this.setStatus(job.status);
    this.output.setData({}, { task: "classification", numClasses: 2 });
    this.mark();
    this.watching = String(job.id);
    this.streams.watch(this.watching, {
      hello: (msg) => this.receiveHello(msg),
      metrics: (added) => this.receivePoints(added),
      status: (msg) => this.setStatus(msg.status),
      snapshot: (frame) => this.receiveFrame(frame),
      connection: (state) => {
        if (state !== "open") this.live = false;
        this.el.classList.toggle("lost", state !== "open");
      },
    });
  }

  /** Stop watching the current run (the stream hears at the end of the tick). */
  unwatch() {
    if (this.watching) this.streams.unwatch(this.watching);
    this.watching = null;
    this.live = false;
  }

  receiveHello(msg) {
    this.hello = msg;
    this.live = true;
    this.points = (msg.metrics || []).slice(-MAX_POINTS);
    if (this.isPoints()) {
      this.output.setData(msg.data || {}, { task: msg.task, numClasses: msg.num_classes });
    } else {
      this.frame = null; // the loss curve needs no pictures
    }
    this.streams.setSnapshots(this.watching, this.isPoints());
    this.el.classList.toggle("curve", !this.isPoints());
    this.setStatus(msg.status?.status);
    this.mark(Boolean(this.frame));
  }

  /** A frame of this run: drawn at the next paint for 2-D points; kept until hello says what
   * the data is if it came first; ignored for other data (the main view is the loss curve). */
  receiveFrame(frame) {
    if (this.hello && !this.isPoints()) return;
    this.frame = frame;
    if (this.hello) this.mark(true);
  }

  receivePoints(added) {
    this.points.push(...added);
    this.points = thinned(this.points, MAX_POINTS);
    this.mark();
  }

  setStatus(status) {
    if (!status) return;
    this.status = status;
    this.el.dataset.status = status;
    this.el.querySelector(".dot").title = t(`wall.status.${status}`);
    this.mark();
  }

  isPoints() { return this.hello?.kind === "points2d"; }

  mark(urgent = false) { this.painter.mark(this, urgent); }

  /** Draw what came since the last paint (the Painter calls it once per screen refresh). */
  paint() {
    this.updates += 1;
    const frame = this.isPoints() ? this.frame : null;
    if (frame) {
      this.frame = null;
      this.lastFrame = frame;
      this.output.draw(frame);
      this.frames += 1;
    }
    if (!this.job) return;
    const last = this.points[this.points.length - 1];
    const loss = lossOf(last);
    const [metricKey, metric] = metricOf(last, this.hello?.task);
    this.numbers(loss === null ? "\u2013" : loss.toFixed(3), metricKey, metric);
    this.drawCurve();
  }

  /** The loss curve (the main view of other data, else the strip under the boundary), at
   * most every SPARK_MS: thirty tiles of long curves need not be redrawn with every epoch. */
  drawCurve() {
    const wait = this.curveAt + SPARK_MS - performance.now();
    if (wait > 0) {
      this.curveTimer ??= setTimeout(() => { this.curveTimer = null; this.mark(); }, wait);
      return;
    }
    this.curveAt = performance.now();
    const onMain = this.hello && !this.isPoints();
    const canvas = onMain ? this.canvas : this.spark;
    // One point per pixel column at most: more cannot be seen, and cost time on every redraw.
    const every = Math.ceil(this.points.length / Math.max(1, canvas.width));
    const points = every > 1 ? this.points.filter((_, i) => (this.points.length - 1 - i) % every === 0) : this.points;
    drawSparkline(canvas, points, onMain ? t("teacher.no_epoch") : "");
  }

  /** The loss and the metric under the picture, each with its label (hidden on small tiles). */
  numbers(loss, metricKey, metric) {
    const shown = `${loss}|${metricKey}|${metric}`;
    if (shown === this.shown) return; // no DOM write, no layout: most paints change nothing here
    this.shown = shown;
    const put = (selector, label, value) => {
      const el = this.el.querySelector(selector);
      if (label === null) { el.replaceChildren(); return; }
      const span = document.createElement("span");
      span.className = "label";
      span.textContent = `${label} `;
      el.replaceChildren(span, value);
    };
    put(".loss", loss === null ? null : t("wall.loss_short"), loss);
    put(".metric", metricKey === null ? null : t(metricKey), metric);
  }

  showEmpty() {
    this.el.classList.add("empty");
    delete this.el.dataset.status;
    const ctx = this.canvas.getContext("2d");
    ctx.fillStyle = "#2a2d31";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.fillStyle = "#9aa0a6";
    ctx.font = `${Math.round(this.canvas.width / 9)}px system-ui`; // readable when scaled down
    ctx.textAlign = "center";
    ctx.fillText(t("wall.tile.no_run"), this.canvas.width / 2, this.canvas.height / 2);
    this.numbers(null, null, null);
    this.spark.getContext("2d").clearRect(0, 0, this.spark.width, this.spark.height);
  }

  /** Match the canvases to the tile's `side` on screen (CSS pixels), in steps of 40 device
   * pixels between TILE_SIZE and MAX_CANVAS, so that a few big tiles stay sharp. */
  resize(side) {
    const ratio = globalThis.devicePixelRatio || 1;
    const size = Math.max(TILE_SIZE, Math.min(MAX_CANVAS, Math.round((side * ratio) / 40) * 40));
    if (size === this.canvas.width) return;
    this.canvas.width = this.canvas.height = size; // (the loss strip keeps its size: CSS stretches it)
    this.output = new OutputView(this.canvas, { pointRadius: Math.max(1.6, size / 125) });
    if (this.isPoints()) this.output.setData(this.hello.data || {}, { task: this.hello.task, numClasses: this.hello.num_classes });
    if (this.lastFrame) this.output.draw(this.lastFrame);
    if (!this.job) this.showEmpty();
    this.curveAt = -Infinity;
    this.mark();
  }

  close() {
    clearTimeout(this.curveTimer);
    this.unwatch();
    this.el.remove();
  }
}
