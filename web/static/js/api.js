/**
 * The only module that knows the server's URLs and messages (shared/API.md, docs/STREAM.md).
 *
 * REST calls return parsed JSON or throw an ApiError that carries the HTTP status and FastAPI's
 * `detail` (a list of {loc, msg} for 422, a sentence otherwise). JobStream follows one job over
 * the websocket: it decodes binary snapshots with wire.js, reconnects when the connection drops
 * and says so, and sends acks, controls and live settings. MultiStream watches many jobs over
 * one socket (/api/streams, the class wall): the same messages, per job, from one connection.
 */

import { t } from "./i18n/index.js";
import * as wire from "./wire.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(ApiError.sentence(status, detail));
    this.status = status;
    this.detail = detail;
  }

  /** A readable sentence from FastAPI's detail (a string or a list of {loc, msg}). */
  static sentence(status, detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    if (status === 0) return t("connection.unreachable");
    return t("api.answered", { status });
  }

  /** The entries of a 422 detail list ({loc, msg}); [] for other errors. */
  get locations() {
    return Array.isArray(this.detail) ? this.detail.filter((d) => Array.isArray(d.loc)) : [];
  }
}

/** The body of an answer (JSON when it is JSON), or an ApiError with the server's detail. */
async function answer(response) {
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw new ApiError(response.status, data && typeof data === "object" ? data.detail : data);
  return data;
}

async function request(method, path, { body, token, query, keepalive = false } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null) q.set(k, typeof v === "object" ? JSON.stringify(v) : String(v));
    }
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, {
      method, headers, keepalive, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  return answer(response);
}

/** The challenge the page's new jobs are runs of (controllers/challenge.js), or null. */
let jobChallenge = null;

/** Make the jobs created from now on runs of challenge `id` (null: plain jobs). */
export function setJobChallenge(id) { jobChallenge = id || null; }

export const api = {
  health: () => request("GET", "/api/health"),
  catalog: () => request("GET", "/api/catalog"),
  /** The OpenAPI document: enums of the job spec that the catalogue may not list. */
  openapi: () => request("GET", "/openapi.json"),
  datasets: () => request("GET", "/api/datasets"),
  preview: (name, params) => request("GET", `/api/datasets/${encodeURIComponent(name)}/preview`, {
    query: params,
  }),
  checkModel: (body) => request("POST", "/api/models/check", { body }),
  /** With the token of an earlier job, the new job is created under it (one owner per page). */
  createJob: (spec, token) => request("POST", "/api/jobs", { body: spec, token, query: { challenge: jobChallenge } }),
  getJob: (id, token) => request("GET", `/api/jobs/${id}`, { token }),
  /** `keepalive` lets the request finish while the page is being closed. */
  deleteJob: (id, token, { keepalive = false } = {}) => request("DELETE", `/api/jobs/${id}`, { token, keepalive }),
  /** `unit` ("epoch" or "batch") says how far a step goes; other actions take none. */
  control: (id, action, token, unit) => request("POST", `/api/jobs/${id}/control`, {
    body: unit ? { action, unit } : { action }, token,
  }),
  /** The caller's jobs: in class mode a student's (their cookie), on an open server every job. */
  listJobs: (token) => request("GET", "/api/jobs", { token }),
  /** Who the caller is and the mode: {mode, role, name, limits}. */
  classInfo: () => request("GET", "/api/class"),
  /** A student signs out of the class (the server clears their cookie). */
  leaveClass: () => request("POST", "/api/class/leave", { body: {} }),
  patch: (id, body, token) => request("PATCH", `/api/jobs/${id}`, { body, token }),
  /** A TF Playground link (or its hash) as a job spec: {spec, unmapped, ignored, notes}. */
  importTfPlayground: (url) => request("POST", "/api/import/tfplayground", { body: { url } }),
  /** A sweep: one job per variant of `base` (docs/JOBS_API.md); answers {id, token, jobs}. */
  createSweep: (body, token) => request("POST", "/api/sweeps", { body, token }),
  /** A sweep and its variants: [{job, values, status, epoch, metrics}]. */
  getSweep: (id, token) => request("GET", `/api/sweeps/${encodeURIComponent(id)}`, { token }),
  /** pause, resume or stop every variant of a sweep. */
  controlSweep: (id, action, token) => request("POST", `/api/sweeps/${encodeURIComponent(id)}/control`, { body: { action }, token }),
  deleteSweep: (id, token) => request("DELETE", `/api/sweeps/${encodeURIComponent(id)}`, { token }),
  /** The glass box: set one weight or bias of a paused job ({layer, param, index, value}). */
  editWeight: (id, body, token) => request("POST", `/api/jobs/${id}/weights`, { body, token }),
  /** The forward pass of one sample ({split, index}, {point: [x, y]} or {x}). */
  inspect: (id, body, token) => request("POST", `/api/jobs/${id}/inspect`, { body, token }),
  /** The first `limit` misclassified test samples: {count, total, indices, true, predicted, images?}. */
  misclassified: (id, limit, token) => request("GET", `/api/jobs/${id}/misclassified`, { query: { limit }, token }),
  /** Aligned histories, summaries and spec differences of two or more jobs. */
  compare: (ids, token) => request("GET", "/api/compare", { query: { ids: ids.join(",") }, token }),
  exportModel,
  firstSnapshot,
  uploadDataset,
  /** Delete an upload (its owner, or the teacher). */
  deleteDataset: (name, token) => request("DELETE", `/api/datasets/${encodeURIComponent(name)}`, { token }),
  /** The teacher's calls (class mode; signed in by the HttpOnly cookie that login sets). */
  teacherLogin: (password) => request("POST", "/api/class/teacher/login", { body: { password } }),
  teacherLogout: () => request("POST", "/api/class/teacher/logout"),
  /** Every student's jobs: {jobs: [...]}, each with its student's name. */
  classJobs: () => request("GET", "/api/class/jobs"),
  /** The class's students: {students: [{id, name, address, state, jobs, active_jobs}]}. */
  students: () => request("GET", "/api/class/students"),
  /** Challenges (docs/JOBS_API.md): the teacher makes and manages them, students read them. */
  challenges: () => request("GET", "/api/challenges"),
  /** One challenge by its id or its code. */
  getChallenge: (ref) => request("GET", `/api/challenges/${encodeURIComponent(ref)}`),
  createChallenge: (body) => request("POST", "/api/challenges", { body }),
  closeChallenge: (id) => request("POST", `/api/challenges/${encodeURIComponent(id)}/close`),
  reopenChallenge: (id) => request("POST", `/api/challenges/${encodeURIComponent(id)}/reopen`),
  deleteChallenge: (id) => request("DELETE", `/api/challenges/${encodeURIComponent(id)}`),
  /** {challenge, rows: [{student_id, student, best_job, met, met_epoch, value, runs, setup}]}. */
  challengeResults: (id) => request("GET", `/api/challenges/${encodeURIComponent(id)}/results`),
  challengeCsvUrl: (id) => `/api/challenges/${encodeURIComponent(id)}/results.csv`,
  /** The caller's own runs on a challenge, each with how it stands against the goal. */
  challengeMine: (id, token) => request("GET", `/api/challenges/${encodeURIComponent(id)}/mine`, { token }),
  /** Remove a student: their jobs are deleted and their sign-in stops working. */
  removeStudent: (id) => request("DELETE", `/api/class/students/${encodeURIComponent(id)}`),
};

/** POST /api/datasets: a CSV as multipart (file, target, optional task and name); the new entry. */
async function uploadDataset({ file, target, task, name }, token) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("target", target);
  if (task) form.append("task", task);
  if (name) form.append("name", name);
  let response;
  try {
    response = await fetch("/api/datasets", { method: "POST", body: form, headers: token ? { Authorization: `Bearer ${token}` } : {} });
  } catch {
    throw new ApiError(0, null);
  }
  return answer(response);
}

/**
 * The trained model of a job as a file: {blob, filename} (the name from Content-Disposition).
 * Binary, so not through `request`; errors are ApiErrors as there.
 */
async function exportModel(id, format, token) {
  const url = `/api/jobs/${id}/model?${new URLSearchParams({ format })}`;
  let response;
  try {
    response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) {
    const text = await response.text();
    let data = text;
    try { data = JSON.parse(text); } catch { /* a plain-text answer */ }
    throw new ApiError(response.status, data && typeof data === "object" ? data.detail : data);
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const filename = match ? decodeURIComponent(match[1]) : `job-${id}.${format}`;
  return { blob: await response.blob(), filename };
}

/**
 * The latest picture of a job: opens its stream, keeps `hello` (the data to draw under the
 * picture) and the first binary snapshot (the engine sends one on subscribe, also for paused,
 * stopped and completed jobs), then closes the socket. Resolves {hello, frame}; `frame` is null
 * when none came within `timeoutMs`. Rejects with an ApiError when the stream is refused.
 */
function firstSnapshot(job, { timeoutMs = 8000 } = {}) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = job.token ? `?token=${encodeURIComponent(job.token)}` : "";
  const socket = new WebSocket(`${proto}//${location.host}/api/jobs/${job.id}/stream${query}`);
  socket.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    let hello = null;
    let done = false;
    const finish = (frame, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.onclose = null;
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
      if (error) reject(error); else resolve({ hello, frame });
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") {
        try { finish(wire.decodeFrame(event.data)); } catch (err) { finish(null, err); }
        return;
      }
      const msg = JSON.parse(event.data);
      if (msg.type === "hello") hello = msg;
    };
    socket.onclose = (event) => finish(null, new ApiError(event.code, event.reason || `The stream closed (${event.code})`));
  });
}

/** The close codes after which reconnecting cannot help (docs/STREAM.md). */
const FINAL_CLOSE = new Set([4401, 4403, 4404]);

/** The websocket URL of `path` on this server, with a class member's `token` if any. */
function socketUrl(path, token) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  return `${proto}//${location.host}${path}${query}`;
}

/**
 * Opens `owner`'s socket (a JobStream or MultiStream: its socket, closed, retries, timer,
 * receive(data) and connect()) and, when it drops, tells `tell("lost", reason)` and connects
 * again after 0.3 s, doubling up to 5 s; after a close code reconnecting cannot help,
 * `tell("closed", reason)` and no more.
 */
function openSocket(owner, url, onOpen, tell) {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  owner.socket = socket;
  if (onOpen) socket.onopen = onOpen;
  socket.onmessage = (event) => owner.receive(event.data);
  socket.onclose = (event) => {
    if (owner.socket !== socket) return;
    owner.socket = null;
    if (owner.closed) return;
    if (FINAL_CLOSE.has(event.code)) {
      owner.closed = true;
      tell("closed", event.reason || `closed (${event.code})`);
      return;
    }
    const delay = Math.min(5000, 300 * 2 ** owner.retries);
    owner.retries += 1;
    tell("lost", event.reason || t("connection.lost"));
    owner.timer = setTimeout(() => owner.connect(), delay);
  };
}

/**
 * Follows one job. Handlers: hello(msg), metrics(points), snapshot(frame) (must call ack() when
 * drawn), status(msg), error(msg), connection(state, reason) with state "open" | "lost" | "closed".
 */
export class JobStream {
  /** `subscribe`: options sent in a `subscribe` message each time the socket opens ({hz: 1}). */
  constructor(job, handlers, { subscribe = null } = {}) {
    this.job = job;
    this.handlers = handlers;
    this.subscribeOnOpen = subscribe;
    this.socket = null;
    this.closed = false;
    this.retries = 0;
    this.nextId = 1;
    this.timer = null;
  }

  url() { return socketUrl(`/api/jobs/${this.job.id}/stream`, this.job.token); }

  connect() {
    if (this.closed) return;
    const open = this.subscribeOnOpen ? () => this.subscribe(this.subscribeOnOpen) : null;
    openSocket(this, this.url(), open, (state, reason) => this.handlers.connection?.(state, reason));
  }

  receive(data) {
    if (typeof data !== "string") {
      const frame = wire.decodeFrame(data);
      this.handlers.snapshot?.(frame);
      return;
    }
    const msg = JSON.parse(data);
    switch (msg.type) {
      case "hello":
        this.retries = 0;
        this.handlers.connection?.("open");
        this.handlers.hello?.(msg);
        break;
      case "metrics": this.handlers.metrics?.(msg.points || []); break;
      case "status": this.handlers.status?.(msg); break;
      case "error": this.handlers.error?.(msg); break;
      case "reply": this.handlers.reply?.(msg); break;
      default: break; // fields and messages may be added within protocol 1
    }
  }

  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  ack() { return this.send({ type: "ack" }); }

  control(action) { return this.send({ type: "control", action, id: this.nextId++ }); }

  /** A live settings change (the body of PATCH /api/jobs/{id}). */
  set(patch) { return this.send({ type: "set", ...patch, id: this.nextId++ }); }

  subscribe(options) { return this.send({ type: "subscribe", ...options }); }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) { const s = this.socket; this.socket = null; s.close(1000); }
  }
}

/**
 * Watches many jobs over one socket (`/api/streams`, docs/STREAM.md "The multi-job stream"):
 * one subscription (its options apply to every job), one bundle of frames at a time.
 *
 * `watch(jobId, handlers, {snapshots})` / `unwatch(jobId)` / `setSnapshots(jobId, wanted)` /
 * `setOptions(subscription)` change what is wanted; the changes made in one tick go out as ONE
 * `subscribe` with the complete job set and the complete `without_snapshots` (the watched jobs
 * that want no frames: a wall tile that shows only a loss curve), sent again each time the
 * socket reopens. Each job's handlers are JobStream's: hello(msg), metrics(points),
 * status(msg), error(msg), reply(msg), snapshot(frame), connection(state, reason). `stream`
 * handlers (the constructor's) get what belongs to no job: bundle(frames) after a bundle's
 * frames went to their jobs (the caller then draws and calls ack() once, also when no frame
 * was for a watched job), reply(msg) to subscribes, error(msg) without a job,
 * connection(state, reason) of the socket. A job the server refuses, or deleted, leaves the set
 * and its handlers hear connection("closed", reason), as a JobStream closed with 4404 would.
 */
export class MultiStream {
  /** `token`: a class member's token (none: the cookie); `subscribe`: the first options. */
  constructor(stream = {}, { token = null, subscribe = {} } = {}) {
    this.stream = stream;
    this.token = token;
    this.options = { ...subscribe };
    this.jobs = new Map(); // job id -> its handlers, in the order watched
    this.withoutSnapshots = new Set(); // watched jobs that want no snapshot frames
    this.socket = null;
    this.closed = false;
    this.retries = 0;
    this.nextId = 1;
    this.timer = null;
    this.queued = false; // a subscribe goes out at the end of this tick
    this.sent = null; // the last subscribe sent on this socket (JSON, without its id)
    this.unacked = false; // a bundle came that was not acknowledged yet
  }

  url() { return socketUrl("/api/streams", this.token); }

  connect() {
    if (this.closed || this.socket) return;
    this.sent = null;
    this.unacked = false;
    openSocket(this, this.url(), () => this.subscribeNow(), (state, reason) => this.tell(state, reason));
  }

  /** The connection's state, to the stream's handler and every watched job's. */
  tell(state, reason) {
    this.stream.connection?.(state, reason);
    for (const handlers of this.jobs.values()) handlers.connection?.(state, reason);
  }

  /** Follow `jobId` (its handlers replace any it had; `snapshots: false`: no frames for it,
   * metrics and statuses only); the server hears at the end of the tick. */
  watch(jobId, handlers, { snapshots = true } = {}) {
    this.jobs.set(String(jobId), handlers);
    this.setSnapshots(jobId, snapshots);
    this.queue();
  }

  unwatch(jobId) {
    this.withoutSnapshots.delete(String(jobId));
    if (this.jobs.delete(String(jobId))) this.queue();
  }

  /** Whether a watched job gets snapshot frames (its metrics and statuses come either way). */
  setSnapshots(jobId, wanted) {
    const id = String(jobId);
    if (!this.jobs.has(id) || wanted === !this.withoutSnapshots.has(id)) return;
    if (wanted) this.withoutSnapshots.delete(id);
    else this.withoutSnapshots.add(id);
    this.queue();
  }

  /** Subscription fields (hz, detail, fields, metrics_hz, max_points, snapshots, metrics) for
   * every job; the ones not given keep their values. */
  setOptions(subscription) {
    Object.assign(this.options, subscription);
    this.queue();
  }

  queue() {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => { this.queued = false; this.subscribeNow(); });
  }

  /** Send the complete subscription now, unless this socket already has exactly it (a new
   * socket watches nothing: no message until there is a job to ask for). */
  subscribeNow() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    if (this.sent === null && this.jobs.size === 0) return false;
    const jobs = [...this.jobs.keys()];
    const without = jobs.filter((id) => this.withoutSnapshots.has(id));
    const wanted = JSON.stringify({ jobs, without_snapshots: without, ...this.options });
    if (wanted === this.sent) return false;
    this.sent = wanted;
    this.socket.send(JSON.stringify({ type: "subscribe", id: this.nextId++, ...JSON.parse(wanted) }));
    return true;
  }

  receive(data) {
    if (typeof data !== "string") {
      this.unacked = true;
      let frames = [];
      try {
        frames = wire.decodeBundle(data);
      } catch (err) { // said, and acknowledged like any bundle: the next one may be readable
        this.stream.error?.({ type: "error", job_id: null, request: null, message: err.message });
      }
      for (const frame of frames) this.jobs.get(String(frame.header.job_id))?.snapshot?.(frame);
      this.stream.bundle?.(frames);
      return;
    }
    const msg = JSON.parse(data);
    if (msg.type === "metrics_batch") {
      for (const [id, points] of Object.entries(msg.jobs || {})) this.jobs.get(id)?.metrics?.(points || []);
      return;
    }
    if (msg.type === "reply" && msg.request === "subscribe" && msg.job_id == null) {
      this.retries = 0;
      for (const [id, reason] of Object.entries(msg.refused || {})) this.drop(id, reason);
      this.stream.reply?.(msg);
      return;
    }
    const handlers = msg.job_id == null ? null : this.jobs.get(String(msg.job_id));
    if (!handlers) {
      if (msg.job_id == null && (msg.type === "error" || msg.type === "reply")) this.stream[msg.type]?.(msg);
      return; // a job no longer watched: nothing more about it
    }
    switch (msg.type) {
      case "hello":
        handlers.connection?.("open");
        handlers.hello?.(msg);
        break;
      case "status":
        handlers.status?.(msg);
        if (msg.status === "deleted") this.drop(msg.job_id, "Job not found");
        break;
      case "error": handlers.error?.(msg); break;
      case "reply": handlers.reply?.(msg); break;
      default: break; // fields and messages may be added within protocol 1
    }
  }

  /** The server left `jobId` out of the set (refused, deleted): it is no longer asked for. */
  drop(jobId, reason) {
    const id = String(jobId);
    const handlers = this.jobs.get(id);
    if (!handlers) return;
    this.jobs.delete(id);
    this.withoutSnapshots.delete(id);
    if (this.sent) { // what the server has now: an unchanged set is not sent again
      const sent = JSON.parse(this.sent);
      sent.jobs = sent.jobs.filter((j) => j !== id);
      sent.without_snapshots = sent.without_snapshots.filter((j) => j !== id);
      this.sent = JSON.stringify(sent);
    }
    handlers.connection?.("closed", reason);
  }

  /** The last bundle is drawn: the next may come. One ack per bundle; false when none waits. */
  ack() {
    if (!this.unacked || !this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.unacked = false;
    this.socket.send(JSON.stringify({ type: "ack" }));
    return true;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) { const s = this.socket; this.socket = null; s.close(1000); }
  }
}
