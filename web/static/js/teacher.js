/**
 * The teacher's view (/teacher): every student's jobs as cards with a live thumbnail (the
 * decision boundary for two-dimensional data, the loss curve otherwise), status, epoch and
 * loss; any job opens full size and can be paused, resumed or stopped.
 *
 * Data: GET /api/class (mode, role, class code, limits), GET /api/class/jobs polled every
 * POLL_MS (GET /api/jobs on an open server), and one websocket per live job (docs/STREAM.md)
 * at a low rate, decoded with wire.js. Signed in by the HttpOnly cookie that
 * POST /api/class/teacher/login sets, which the fetches and websockets send by themselves.
 * The URLs live in `server` below and nowhere else in this file.
 */

import { t } from "./i18n/index.js";
import { decodeFrame, dequantize } from "./wire.js";

const POLL_MS = 2000;
const THUMB_HZ = 1;
const WATCH_HZ = 5;
const MAX_LIVE = 48; // thumbnails with a socket of their own; more cards show their last state
const ACTIVE = new Set(["running", "queued", "paused"]);
const ORANGE = [245, 147, 34];
const BLUE = [8, 119, 189];
const PALETTE = [ORANGE, BLUE, [46, 160, 67], [214, 39, 40], [148, 103, 189], [140, 86, 75],
  [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];

class HttpError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : `The server answered ${status}`);
    this.status = status;
  }
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw new HttpError(response.status, data && data.detail);
  return data;
}

const server = {
  info: () => call("GET", "/api/class"),
  login: (password) => call("POST", "/api/class/teacher/login", { password }),
  logout: () => call("POST", "/api/class/teacher/logout"),
  classJobs: () => call("GET", "/api/class/jobs"),
  allJobs: () => call("GET", "/api/jobs"),
  control: (id, action) => call("POST", `/api/jobs/${encodeURIComponent(id)}/control`, { action }),
  students: () => call("GET", "/api/class/students"),
  removeStudent: (id) => call("DELETE", `/api/class/students/${encodeURIComponent(id)}`),
  streamUrl: (id) => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}` +
    `/api/jobs/${encodeURIComponent(id)}/stream`,
};

const $ = (id) => document.getElementById(id);
let info = null;
const cards = new Map(); // job id -> Card
let pollTimer = null;
let roster = null; // the class's students (class mode), from /api/class/students

// -- drawing ---------------------------------------------------------------------------------

function mix(a, b, t) { return a.map((v, i) => Math.round(v + (b[i] - v) * t)); }

/** Orange (-1) through white (0) to blue (+1). */
function diverging(t) {
  t = Math.max(-1, Math.min(1, t));
  return t < 0 ? mix([255, 255, 255], ORANGE, -t) : mix([255, 255, 255], BLUE, t);
}

function boundaryImage(frame) {
  const array = frame.arrays["output.boundary"];
  if (!array) return null;
  const [outputs, h, w] = array.shape;
  const values = dequantize(array);
  const image = new ImageData(w, h);
  const transform = frame.header.output_transform;
  let lo = Infinity;
  let hi = -Infinity;
  if (transform === "identity") for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  for (let p = 0; p < w * h; p++) {
    let rgb;
    if (outputs > 1) {
      let best = 0;
      for (let k = 1; k < outputs; k++) if (values[k * w * h + p] > values[best * w * h + p]) best = k;
      const confidence = (values[best * w * h + p] - 1 / outputs) / (1 - 1 / outputs);
      rgb = mix([255, 255, 255], PALETTE[best % PALETTE.length], Math.max(0, confidence) * 0.8);
    } else if (transform === "identity") {
      rgb = diverging(hi > lo ? ((values[p] - lo) / (hi - lo)) * 2 - 1 : 0);
    } else {
      rgb = diverging((values[p] * 2 - 1) * 0.8);
    }
    image.data.set([...rgb, 255], p * 4);
  }
  return image;
}

function pointColor(label, data, task) {
  if (task === "regression") {
    const [lo, hi] = data.label_range || [-1, 1];
    return diverging(hi > lo ? ((label - lo) / (hi - lo)) * 2 - 1 : 0);
  }
  return PALETTE[label % PALETTE.length];
}

function drawBoundary(canvas, frame, hello) {
  const ctx = canvas.getContext("2d");
  const image = frame && boundaryImage(frame);
  if (!image) return false;
  const tmp = document.createElement("canvas");
  tmp.width = image.width;
  tmp.height = image.height;
  tmp.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  const data = hello && hello.data;
  if (!data || !data.points_train || !data.grid) return true;
  const [x0, x1] = data.grid.x;
  const [y0, y1] = data.grid.y;
  const r = Math.max(1.5, canvas.width / 120);
  const labels = data.labels_train || [];
  if (hello.task === "regression" && !data.label_range && labels.length) {
    data.label_range = [Math.min(...labels), Math.max(...labels)];
  }
  data.points_train.forEach(([x, y], i) => {
    const px = ((x - x0) / (x1 - x0)) * canvas.width;
    const py = ((y1 - y) / (y1 - y0)) * canvas.height;
    ctx.beginPath();
    ctx.arc(px, py, r, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${pointColor(labels[i], data, hello.task).join(",")})`;
    ctx.fill();
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    ctx.lineWidth = 0.6;
    ctx.stroke();
  });
  return true;
}

function drawLoss(canvas, points) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const series = [["train_loss", "#333"], ["test_loss", BLUE]];
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const values = points.flatMap((p) => series.map(([k]) => p[k]).filter(finite));
  if (!values.length) {
    ctx.fillStyle = "#999";
    ctx.font = `${Math.max(10, w / 16)}px system-ui`;
    ctx.textAlign = "center";
    ctx.fillText("no epoch yet", w / 2, h / 2);
    return;
  }
  const top = Math.max(...values) * 1.05 || 1;
  const n = Math.max(points.length - 1, 1);
  for (const [key, color] of series) {
    ctx.beginPath();
    let started = false;
    points.forEach((p, i) => {
      if (!finite(p[key])) return;
      const x = (i / n) * (w - 4) + 2;
      const y = h - 2 - (p[key] / top) * (h - 4);
      if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      started = true;
    });
    ctx.strokeStyle = Array.isArray(color) ? `rgb(${color.join(",")})` : color;
    ctx.lineWidth = Math.max(1, w / 150);
    ctx.stroke();
  }
  if (w >= 200) { // the full-size view: say which line is which, and the scale
    ctx.font = "13px system-ui";
    ctx.textAlign = "right";
    ctx.fillStyle = "#333";
    ctx.fillText("train loss", w - 8, 18);
    ctx.fillStyle = `rgb(${BLUE.join(",")})`;
    ctx.fillText("test loss", w - 8, 36);
    ctx.textAlign = "left";
    ctx.fillStyle = "#777";
    ctx.fillText(top.toPrecision(3), 6, 16);
    ctx.fillText(`epoch ${points[points.length - 1].epoch ?? points.length}`, 6, h - 8);
  }
}

// -- one job's live view ---------------------------------------------------------------------

/** A websocket to one job that redraws `canvas` (boundary, or loss for other data). */
class LiveView {
  constructor(jobId, canvas, { hz, once = false, onStatus } = {}) {
    Object.assign(this, { jobId, canvas, hz, once, onStatus });
    this.hello = null;
    this.points = [];
    this.closed = false;
    this.connect();
    // A finished job may have no picture to send: a one-shot view gives up after a while.
    if (once) this.deadline = setTimeout(() => this.close(), 10000);
  }

  connect() {
    const socket = new WebSocket(server.streamUrl(this.jobId));
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "subscribe", hz: this.hz }));
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.closed || this.once || [4401, 4403, 4404].includes(event.code)) return;
      this.retry = setTimeout(() => this.connect(), 3000);
    };
  }

  receive(data) {
    if (typeof data !== "string") {
      const frame = decodeFrame(data);
      if (this.isPoints()) drawBoundary(this.canvas, frame, this.hello);
      this.send({ type: "ack" });
      if (this.once) this.close();
      return;
    }
    const msg = JSON.parse(data);
    if (msg.type === "hello") {
      this.hello = msg;
      this.points = msg.metrics || [];
      if (!this.isPoints()) {
        drawLoss(this.canvas, this.points);
        this.send({ type: "subscribe", snapshots: false });
        if (this.once) this.close();
      }
      this.onStatus?.(msg.status);
    } else if (msg.type === "metrics") {
      this.points.push(...(msg.points || []));
      if (!this.isPoints()) drawLoss(this.canvas, this.points);
      this.onMetrics?.(this.points);
    } else if (msg.type === "status") {
      this.onStatus?.(msg);
    }
  }

  isPoints() { return this.hello && this.hello.kind === "points2d"; }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.deadline);
    this.socket?.close(1000);
  }
}

// -- the cards -------------------------------------------------------------------------------

function lossOf(job) {
  const m = job.metrics || {};
  const loss = m.test_loss ?? m.train_loss;
  return typeof loss === "number" ? loss.toFixed(3) : "–";
}

class Card {
  constructor(job) {
    this.el = document.createElement("article");
    this.el.className = "job";
    this.el.dataset.jobId = job.id;
    this.el.innerHTML = `
      <canvas class="thumb" width="120" height="120"></canvas>
      <div class="meta">
        <div class="who"></div>
        <div class="what"></div>
        <div><span class="status"></span> epoch <span class="epoch"></span> · loss <span class="loss"></span></div>
        <div class="buttons">
          <button type="button" class="open">Watch</button>
          <button type="button" class="stop">Stop</button>
        </div>
        <div class="error" role="alert"></div>
      </div>`;
    this.canvas = this.el.querySelector("canvas");
    this.el.querySelector(".open").addEventListener("click", () => watch(this.job));
    this.el.querySelector(".stop").addEventListener("click", () => this.control("stop"));
    this.view = null;
    this.drawn = false;
    this.update(job);
  }

  async control(action) {
    this.el.querySelector(".error").textContent = "";
    try {
      this.update({ ...this.job, ...(await server.control(this.job.id, action)) });
    } catch (e) {
      this.el.querySelector(".error").textContent = e.message;
    }
  }

  update(job) {
    this.job = job;
    const q = (s) => this.el.querySelector(s);
    q(".who").textContent = job.student || t("teacher.no_student");
    q(".what").textContent = job.name || (job.spec && job.spec.dataset && job.spec.dataset.name) || job.id;
    q(".status").textContent = job.status;
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

function render(jobs) {
  const seen = new Set();
  const box = $("jobs");
  let live = 0;
  const active = jobs.filter((j) => j.status === "running" || j.status === "queued").length;
  for (const job of jobs) {
    seen.add(job.id);
    let card = cards.get(job.id);
    if (!card) {
      card = new Card(job);
      cards.set(job.id, card);
      box.append(card.el);
    } else {
      card.update(job);
    }
    const wantLive = ACTIVE.has(job.status) && live < MAX_LIVE;
    if (wantLive) live += 1;
    card.follow(wantLive);
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) { card.remove(); cards.delete(id); }
  }
  // Students who joined (two of the same name are two), else the names that have jobs.
  const students = roster ? roster.filter((s) => s.state !== "left").length
    : new Set(jobs.map((j) => j.student).filter(Boolean)).size;
  $("summary").textContent = t("teacher.summary", {
    jobs: t("teacher.jobs", { n: jobs.length }), active, students: t("class.students", { n: students }) });
  $("empty").hidden = jobs.length > 0;
}

// -- the students (issue 12: the teacher sees and removes a student) ---------------------------

function renderStudents(students) {
  $("students-title").textContent = `${t("teacher.students.title")} (${students.length})`;
  $("students-empty").textContent = t("teacher.students.none");
  $("students-empty").hidden = students.length > 0;
  $("students").replaceChildren(...students.map((s) => {
    const li = document.createElement("li");
    li.dataset.studentId = s.id;
    const name = document.createElement("strong");
    name.className = "name";
    name.textContent = s.name;
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = [
      t("teacher.students.jobs", { jobs: t("teacher.jobs", { n: s.jobs }), active: s.active_jobs }),
      s.address || t("teacher.students.unknown_address"),
      s.state === "left" ? t("teacher.students.left") : null,
    ].filter(Boolean).join(" · ");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = t("teacher.students.remove");
    remove.addEventListener("click", () => removeStudent(s));
    li.append(name, " ", detail, " ", remove);
    return li;
  }));
}

async function removeStudent(student) {
  if (!confirm(t("teacher.students.remove_confirm", {
    name: student.name, jobs: t("teacher.jobs", { n: student.jobs }) }))) return;
  try {
    const answer = await server.removeStudent(student.id);
    $("students-note").textContent = t("teacher.students.removed", { name: answer.name, n: answer.deleted_jobs });
  } catch (e) {
    $("students-note").textContent = e.message;
  }
  poll();
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    const { jobs } = info.mode === "open" ? await server.allJobs() : await server.classJobs();
    $("class-error").textContent = "";
    if (info.mode !== "open") {
      roster = (await server.students()).students;
      renderStudents(roster);
    }
    render(jobs);
  } catch (e) {
    if (e.status === 401 || e.status === 403) { showLogin(); return; }
    $("class-error").textContent = e.message || t("connection.unreachable");
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

// -- the full-size view ----------------------------------------------------------------------

let watching = null;

function watch(job) {
  watching?.close();
  const dialog = $("watch");
  const what = job.name || (job.spec && job.spec.dataset && job.spec.dataset.name) || job.id;
  $("watch-title").textContent = `${job.student || t("teacher.no_student")} · ${what}`;
  const boundary = $("watch-boundary");
  const loss = $("watch-loss");
  boundary.getContext("2d").clearRect(0, 0, boundary.width, boundary.height);
  const setStatus = (s) => {
    if (!s) return;
    $("watch-status").textContent = s.status;
    $("watch-status").dataset.status = s.status;
    $("watch-info").textContent = `epoch ${s.epoch ?? "–"}${s.error ? ` · ${s.error}` : ""}`;
  };
  watching = new LiveView(job.id, boundary, { hz: WATCH_HZ, onStatus: setStatus });
  watching.onMetrics = (points) => {
    drawLoss(loss, points);
    const last = points[points.length - 1];
    const value = last && (last.test_loss ?? last.train_loss);
    if (last) {
      $("watch-info").textContent = `epoch ${last.epoch}` +
        (typeof value === "number" ? ` · loss ${value.toFixed(4)}` : "");
    }
  };
  const original = watching.receive.bind(watching);
  watching.receive = (data) => {
    original(data);
    if (typeof data === "string") drawLoss(loss, watching.points);
    boundary.hidden = !watching.isPoints();
  };
  const act = (action) => server.control(job.id, action).then(setStatus)
    .catch((e) => { $("watch-info").textContent = e.message; });
  $("watch-pause").onclick = () => act("pause");
  $("watch-resume").onclick = () => act("resume");
  $("watch-stop").onclick = () => act("stop");
  if (!dialog.open) dialog.showModal();
}

$("watch-close").addEventListener("click", () => $("watch").close());
$("watch").addEventListener("close", () => { watching?.close(); watching = null; });

// -- sign-in and start -----------------------------------------------------------------------

function showLogin() {
  clearTimeout(pollTimer);
  $("login").hidden = false;
  $("class").hidden = true;
  $("actions").hidden = true;
  $("code-box").hidden = true;
  $("join-at").hidden = true;
  $("password").focus();
}

function showClass() {
  $("login").hidden = true;
  $("class").hidden = false;
  $("actions").hidden = false;
  $("logout").hidden = info.mode === "open";
  if (info.class_code) {
    $("code-box").hidden = false;
    $("class-code").textContent = info.class_code;
  }
  if (info.student_urls) {
    $("join-at").hidden = false;
    $("student-urls").replaceChildren(...info.student_urls.map((u) => {
      const a = document.createElement("a");
      a.href = u;
      a.textContent = u;
      return a;
    }));
  }
  const limits = info.limits || {};
  $("limits").replaceChildren(...Object.entries(limits).flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k.replaceAll("_", " ");
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
  poll();
}

async function start() {
  try {
    info = await server.info();
  } catch (e) {
    $("class-error").textContent = e.message;
  }
  if (!info) return;
  if (info.mode === "class" && info.role !== "teacher") showLogin(); else showClass();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    await server.login($("password").value);
    $("password").value = "";
    info = await server.info();
    showClass();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  await server.logout().catch(() => {});
  for (const card of cards.values()) card.remove();
  cards.clear();
  showLogin();
});

$("stop-all").addEventListener("click", async () => {
  const running = [...cards.values()].filter((c) => ACTIVE.has(c.job.status));
  if (!running.length || !confirm(`Stop ${running.length} jobs?`)) return;
  await Promise.all(running.map((c) => c.control("stop")));
});

start();
