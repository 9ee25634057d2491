/**
 * The teacher's job cards: one card per job with a live thumbnail, its student, data set,
 * status, epoch and loss, and Watch and Stop buttons; and the live view of one job that draws
 * those thumbnails and the full-size view.
 *
 * A live view follows a job over api.js's JobStream at a low rate and draws with the student
 * page's views: the decision boundary with views/output.js (the same class colours), the loss
 * of other data as a small chart (views/charts.js).
 */

import { api, JobStream } from "../api.js";
import { nameOf, t } from "../i18n/index.js";
import { drawSparkline, MAX_CHART_POINTS, thinned } from "../views/charts.js";
import { OutputView } from "../views/output.js";

const THUMB_HZ = 1;
const MAX_LIVE = 48; // thumbnails with a socket of their own; more cards show their last state
/** The statuses of a job that may still change (it can be stopped). */
export const ACTIVE = new Set(["running", "queued", "paused"]);

/**
 * A stream of one job drawing onto `canvas`: the output over the plane for two-dimensional data,
 * else the loss curves. `once`: draw the latest state and close (a finished job; given up after
 * 10 s). Handlers: onHello(msg), onMetrics(all, added), onStatus(status).
 */
export class LiveView {
  constructor(jobId, canvas, { hz, once = false, onHello, onMetrics, onStatus } = {}) {
    Object.assign(this, { canvas, once, onHello, onMetrics, onStatus });
    this.hello = null;
    this.output = null;
    this.points = [];
    this.stream = new JobStream({ id: jobId }, {
      hello: (msg) => this.receiveHello(msg),
      metrics: (added) => {
        this.points.push(...added);
        this.points = thinned(this.points, MAX_CHART_POINTS);
        if (!this.isPoints()) drawSparkline(this.canvas, this.points, t("teacher.no_epoch"));
        this.onMetrics?.(this.points, added);
      },
      status: (msg) => this.onStatus?.(msg),
      snapshot: (frame) => {
        this.output?.draw(frame);
        this.stream.ack();
        if (this.once) this.close();
      },
      // A one-shot view does not come back after its socket closes.
      connection: (state) => { if (state !== "open" && this.once) this.close(); },
    }, { subscribe: { hz } });
    this.stream.connect();
    // A finished job may have no picture to send: a one-shot view gives up after a while.
    if (once) this.deadline = setTimeout(() => this.close(), 10000);
  }

  receiveHello(msg) {
    this.hello = msg;
    this.points = msg.metrics || [];
    if (this.isPoints()) {
      this.output ??= new OutputView(this.canvas, { pointRadius: Math.max(1.5, this.canvas.width / 120) });
      this.output.setData(msg.data || {}, { task: msg.task, numClasses: msg.num_classes });
    } else {
      drawSparkline(this.canvas, this.points, t("teacher.no_epoch"));
      this.stream.subscribe({ snapshots: false });
      if (this.once) this.close();
    }
    this.onHello?.(msg);
    this.onStatus?.(msg.status);
  }

  isPoints() { return this.hello?.kind === "points2d"; }

  close() {
    clearTimeout(this.deadline);
    this.stream.close();
  }
}

function lossOf(job) {
  const m = job.metrics || {};
  const loss = m.test_loss ?? m.train_loss;
  return typeof loss === "number" ? loss.toFixed(3) : "\u2013";
}

/** The data set a job trains on (or its name, or its id). */
export function jobTitle(job) {
  const dataset = job.spec?.dataset?.name;
  return job.name || (dataset ? nameOf("dataset", dataset) : job.id);
}

/** One job's card; `onWatch(job)` opens the full-size view. */
class Card {
  constructor(job, onWatch) {
    this.el = document.createElement("article");
    this.el.className = "job";
    this.el.dataset.jobId = job.id;
    this.el.innerHTML = `
      <canvas class="thumb" width="120" height="120"></canvas>
      <div class="meta">
        <div class="who"></div>
        <div class="what"></div>
        <div><span class="status"></span> ${t("teacher.card.epoch")} <span class="epoch"></span> · ${t("teacher.card.loss")} <span class="loss"></span></div>
        <div class="buttons">
          <button type="button" class="open"></button>
          <button type="button" class="stop"></button>
        </div>
        <div class="error" role="alert"></div>
      </div>`;
    this.canvas = this.el.querySelector("canvas");
    const open = this.el.querySelector(".open");
    const stop = this.el.querySelector(".stop");
    open.textContent = t("teacher.card.watch");
    stop.textContent = t("teacher.card.stop");
    open.addEventListener("click", () => onWatch(this.job));
    stop.addEventListener("click", () => this.control("stop"));
    this.view = null;
    this.drawn = false;
    this.update(job);
  }

  async control(action) {
    this.el.querySelector(".error").textContent = "";
    try {
      this.update({ ...this.job, ...(await api.control(this.job.id, action)) });
    } catch (e) {
      this.el.querySelector(".error").textContent = e.message;
    }
  }

  update(job) {
    this.job = job;
    const q = (s) => this.el.querySelector(s);
    q(".who").textContent = job.student || t("teacher.no_student");
    q(".what").textContent = jobTitle(job);
    q(".status").textContent = nameOf("status", job.status);
    q(".status").dataset.status = job.status;
    q(".epoch").textContent = job.progress ? job.progress.epoch : 0;
    q(".loss").textContent = lossOf(job);
    q(".stop").disabled = !ACTIVE.has(job.status);
    this.el.dataset.status = job.status;
  }

  /** Keep a live socket while the job is active and a place is free; draw once otherwise. */
  follow(live) {
    if (live && !this.view) {
      this.view = new LiveView(this.job.id, this.canvas, { hz: THUMB_HZ });
      this.drawn = true;
    } else if (!live && this.view) {
      this.view.close();
      this.view = null;
    }
    if (!live && !this.drawn) {
      this.drawn = true;
      new LiveView(this.job.id, this.canvas, { hz: THUMB_HZ, once: true });
    }
  }

  remove() {
    this.view?.close();
    this.el.remove();
  }
}

/** The cards in `box`, kept in step with the job list (a card per job, live while active). */
export class JobCards {
  constructor(box, { onWatch }) {
    this.box = box;
    this.onWatch = onWatch;
    this.cards = new Map(); // job id -> Card
  }

  render(jobs) {
    const seen = new Set();
    let live = 0;
    for (const job of jobs) {
      seen.add(job.id);
      let card = this.cards.get(job.id);
      if (!card) {
        card = new Card(job, this.onWatch);
        this.cards.set(job.id, card);
        this.box.append(card.el);
      } else {
        card.update(job);
      }
      const wantLive = ACTIVE.has(job.status) && live < MAX_LIVE;
      if (wantLive) live += 1;
      card.follow(wantLive);
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) { card.remove(); this.cards.delete(id); }
    }
  }

  /** The cards of jobs that may still change. */
  active() { return [...this.cards.values()].filter((c) => ACTIVE.has(c.job.status)); }

  clear() {
    for (const card of this.cards.values()) card.remove();
    this.cards.clear();
  }
}
