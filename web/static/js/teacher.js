/**
 * The teacher's view (/teacher): every student's jobs as cards with a live thumbnail (the
 * decision boundary for two-dimensional data, the loss curve otherwise), status, epoch and
 * loss; any job opens full size and can be paused, resumed or stopped; the class's students
 * can be removed.
 *
 * Data: GET /api/class (mode, role, class code, limits), GET /api/class/jobs and
 * /api/class/students polled every POLL_MS (GET /api/jobs on an open server), and one stream
 * per live job (controllers/class_jobs.js). Signed in by the HttpOnly cookie that the teacher's
 * login sets, which the fetches and websockets send by themselves. The server's URLs live in
 * api.js; the drawing in the student page's views (the same colours on both pages).
 */

import { api } from "./api.js";
import { ACTIVE, JobCards, jobTitle, LiveView } from "./controllers/class_jobs.js";
import { startChallengePanel } from "./controllers/challenge_panel.js";
import { startClusterPanel } from "./controllers/cluster_panel.js";
import { pageChrome } from "./explain.js";
import { nameOf, t } from "./i18n/index.js";
import { CURVE_COLOURS, LineChart } from "./views/charts.js";

const POLL_MS = 2000;
const WATCH_HZ = 5;

const $ = (id) => document.getElementById(id);
let info = null;
let pollTimer = null;
let roster = null; // the class's students (class mode), from /api/class/students
const cards = new JobCards($("jobs"), { onWatch: watch });

function render(jobs) {
  cards.render(jobs);
  const active = jobs.filter((j) => j.status === "running" || j.status === "queued").length;
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
    const answer = await api.removeStudent(student.id);
    $("students-note").textContent = t("teacher.students.removed", { name: answer.name, n: answer.deleted_jobs });
  } catch (e) {
    $("students-note").textContent = e.message;
  }
  poll();
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    const { jobs } = info.mode === "open" ? await api.listJobs() : await api.classJobs();
    $("class-error").textContent = "";
    if (info.mode !== "open") {
      roster = (await api.students()).students;
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
let lossChart = null;

function watch(job) {
  watching?.close();
  const dialog = $("watch");
  $("watch-title").textContent = `${job.student || t("teacher.no_student")} · ${jobTitle(job)}`;
  const boundary = $("watch-boundary");
  boundary.getContext("2d").clearRect(0, 0, boundary.width, boundary.height);
  const epochText = (epoch) => t("teacher.watch.epoch", { epoch: epoch ?? "\u2013" });
  const setStatus = (s) => {
    if (!s) return;
    $("watch-status").textContent = nameOf("status", s.status);
    $("watch-status").dataset.status = s.status;
    $("watch-info").textContent = [epochText(s.epoch), s.error].filter(Boolean).join(" · ");
  };
  if (!dialog.open) dialog.showModal(); // first, so that the loss chart knows its width
  lossChart?.destroy();
  lossChart = new LineChart($("watch-loss"), {
    title: t("chart.loss"), height: 340,
    series: [
      { field: "train_loss", label: t("chart.training"), stroke: CURVE_COLOURS.training },
      { field: "test_loss", label: t("chart.test"), stroke: CURVE_COLOURS.test },
    ],
  });
  watching = new LiveView(job.id, boundary, {
    hz: WATCH_HZ,
    onStatus: setStatus,
    onHello: (msg) => {
      lossChart.clear();
      lossChart.append(msg.metrics || []);
      boundary.hidden = msg.kind !== "points2d";
    },
    onMetrics: (points, added) => {
      lossChart.append(added);
      const last = points[points.length - 1];
      const value = last && (last.test_loss ?? last.train_loss);
      if (last) {
        $("watch-info").textContent = [epochText(last.epoch),
          typeof value === "number" ? t("teacher.watch.loss", { loss: value.toFixed(4) }) : null].filter(Boolean).join(" · ");
      }
    },
  });
  const act = (action) => api.control(job.id, action).then(setStatus)
    .catch((e) => { $("watch-info").textContent = e.message; });
  $("watch-pause").onclick = () => act("pause");
  $("watch-resume").onclick = () => act("resume");
  $("watch-stop").onclick = () => act("stop");
}

$("watch-close").addEventListener("click", () => $("watch").close());
$("watch").addEventListener("close", () => {
  watching?.close();
  watching = null;
  lossChart?.destroy();
  lossChart = null;
});

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
    dt.textContent = nameOf("limit", k, k.replaceAll("_", " "));
    const dd = document.createElement("dd");
    dd.textContent = k === "quota_key" ? nameOf("quota", v, v) : v;
    return [dt, dd];
  }));
  poll();
  startChallengePanel({ watch });  // issue 14: controllers/challenge_panel.js
  startClusterPanel();  // issue 15: the training machines, on a Ray cluster only
}

async function start() {
  pageChrome("teacher", document.querySelector("header.bar"));
  try {
    info = await api.classInfo();
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
    await api.teacherLogin($("password").value);
    $("password").value = "";
    info = await api.classInfo();
    showClass();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  await api.teacherLogout().catch(() => {});
  cards.clear();
  showLogin();
});

$("stop-all").addEventListener("click", async () => {
  const running = cards.active();
  if (!running.length || !confirm(t("teacher.stop_all_confirm", { n: running.length }))) return;
  await Promise.all(running.map((c) => c.control("stop")));
});

start();
