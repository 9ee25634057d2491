/**
 * The class wall (/teacher/wall, teacher only): every student's current run as a live tile for
 * the projector, names shown or hidden with one switch (kept in the URL as `?names=hidden`), a
 * leaderboard for the open challenge, and a spotlight that enlarges one tile (click, or Enter;
 * Esc returns, the arrow keys move to the next or previous student).
 *
 * Data: GET /api/class (mode, role), GET /api/class/jobs and /api/class/students polled every
 * POLL_MS (GET /api/jobs on an open server: every active job is a tile), ONE multi-job stream
 * for every tile (/api/streams, api.js MultiStream; each tile watches its run on it,
 * controllers/wall_tiles.js), while a tile is enlarged one job stream of its own for the
 * spotlight (the full `boundary` picture and every point; closed when it returns), and GET
 * /api/challenges with /api/challenges/{id}/results every BOARD_MS for the leaderboard; a
 * server without challenges (404) hides the panel.
 * `?hz=` sets the bundles of snapshots a second the wall asks for (1-30, default TILE_HZ).
 */

import { api, JobStream, MultiStream } from "./api.js";
import {
  currentRuns, lossOf, metricOf, Painter, SPOT_METRICS, Tile, tileSubscription,
} from "./controllers/wall_tiles.js";
import { t, translatePage } from "./i18n/index.js";
import { CURVE_COLOURS, LineChart } from "./views/charts.js";
import { OutputView } from "./views/output.js";
import { Board } from "./views/wall_board.js";

const POLL_MS = 2000;
const BOARD_MS = 5000;
// Asked per tile: the engine's frame budget decides what comes (8-9 a second measured with 30
// tiles on 2 cores). 10 is the rate of a family's turns (server.engine.scheduler ROTATION_S):
// frames then come at the end of whole slices; 8 cut every other slice short, and cost
// training more than the frames themselves (bench/wall_bench.py).
const TILE_HZ = 10;
const SPOT_HZ = 15;
const GAP = 8; // px between tiles (wall.css)
const CAPTION = 52; // px under a tile's picture: name, numbers, sparkline (wall.css)
const SMALL_TILE = 150; // px: smaller tiles show their numbers without labels

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const hz = Math.min(30, Math.max(1, Number(params.get("hz")) || TILE_HZ));
let showNames = params.get("names") !== "hidden";
let info = null;
let pollTimer = null;
const painter = new Painter();
/** Every tile's run, over one socket; each bundle is acknowledged once, after the paint. */
const streams = new MultiStream({ bundle: () => painter.ackAfter(streams) }, { subscribe: tileSubscription(hz) });
const tiles = new Map(); // student key -> Tile, in the wall's order
const board = new Board($("board"));
let boardState = "unknown"; // "unknown" | "absent" (no challenges on this server) | "shown"
let lastResults = null;

// -- tiles -----------------------------------------------------------------------------------

function jobName(job) { return job.name || job.spec?.dataset?.name || job.id; }

/** The students to show, in join order: [{key, id, name}] and their current runs. */
function wallEntries(jobs, students) {
  if (info.mode === "open") {
    const runs = currentRuns(jobs, { everyJob: true });
    return { entries: [...runs].map(([key, job]) => ({ key, id: null, name: jobName(job) })), runs };
  }
  const runs = currentRuns(jobs);
  const entries = students.filter((s) => s.state !== "left" || runs.has(s.id))
    .map((s) => ({ key: s.id, id: s.id, name: s.name }));
  return { entries, runs };
}

function sync(jobs, students) {
  const { entries, runs } = wallEntries(jobs, students);
  const keep = new Set(entries.map((e) => e.key));
  for (const [key, tile] of tiles) {
    if (!keep.has(key)) {
      if (spot.tile === tile) closeSpotlight();
      tile.close();
      tiles.delete(key);
    }
  }
  const box = $("tiles");
  entries.forEach((entry, i) => {
    let tile = tiles.get(entry.key);
    if (!tile) {
      tile = new Tile(entry, { painter, streams, onOpen: openSpotlight });
      tiles.set(entry.key, tile);
    } else if (tile.student.name !== entry.name) {
      tile.rename(entry.name);
    }
    if (box.children[i] !== tile.el) box.insertBefore(tile.el, box.children[i] || null);
    tile.follow(runs.get(entry.key) || null);
    tile.label(i + 1, showNames);
    if (spot.tile === tile && spot.job !== (tile.job?.id ?? null)) openSpotlight(tile); // a new run
  });
  // Keep the Map in the wall's order (the arrow keys of the spotlight walk it).
  const ordered = entries.map((e) => [e.key, tiles.get(e.key)]);
  tiles.clear();
  for (const [k, v] of ordered) tiles.set(k, v);
  const training = [...runs.values()].filter((j) => j.status === "running").length;
  $("wall-summary").textContent = t("wall.summary", {
    students: t("class.students", { n: entries.length }), running: training });
  $("wall-empty").hidden = entries.length > 0;
  layout();
}

/** The largest square tiles that fit the screen with every tile visible. */
function layout() {
  const box = $("tiles");
  const n = Math.max(1, tiles.size);
  const width = box.clientWidth - GAP;
  const height = box.clientHeight - GAP;
  let best = 60;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const side = Math.min(width / cols - GAP, height / rows - GAP - CAPTION);
    best = Math.max(best, Math.floor(side));
  }
  box.style.setProperty("--tile", `${best}px`);
  for (const tile of tiles.values()) tile.resize(best);
  box.classList.toggle("small", best < SMALL_TILE);
}

async function poll() {
  clearTimeout(pollTimer);
  try {
    if (info.mode === "open") {
      sync((await api.listJobs()).jobs, []);
    } else {
      const [{ jobs }, { students }] = await Promise.all([api.classJobs(), api.students()]);
      sync(jobs, students);
    }
    $("wall-error").textContent = "";
  } catch (e) {
    if (e.status === 401 || e.status === 403) { location.assign("/teacher"); return; }
    $("wall-error").textContent = e.message || t("connection.unreachable");
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

// -- names -----------------------------------------------------------------------------------

function setNames(shown) {
  showNames = shown;
  $("names").checked = shown;
  const url = new URL(location.href);
  if (shown) url.searchParams.delete("names"); else url.searchParams.set("names", "hidden");
  history.replaceState(null, "", url);
  document.body.classList.toggle("names-hidden", !shown);
  [...tiles.values()].forEach((tile, i) => tile.label(i + 1, shown));
  if (spot.tile) spotTitle(spot.tile);
  if (lastResults) showBoard(lastResults);
}

$("names").addEventListener("change", (event) => setNames(event.target.checked));

// -- the leaderboard -------------------------------------------------------------------------

function numberOf(studentId) {
  const tile = studentId ? tiles.get(studentId) : null;
  return tile ? tile.number : null;
}

function showBoard(results) {
  board.show(results, { numberOf, showNames });
  layout();
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw Object.assign(new Error(`${path}: ${response.status}`), { status: response.status });
  return response.json();
}

async function pollBoard() {
  if (boardState === "absent") return;
  let list;
  try {
    list = await getJson("/api/challenges");
  } catch (e) {
    if (e.status === 404) { // this server has no challenges: no panel, no more asking
      boardState = "absent";
      board.hide();
      layout();
      return;
    }
  }
  try {
    if (!list) throw new Error("no list");
    // The open challenge (the newest, if several are open).
    const open = (Array.isArray(list) ? list : list.challenges || [])
      .filter((c) => c.open === true || c.state === "open")
      .sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
    if (!open.length) {
      lastResults = null;
      board.hide();
      layout();
    } else {
      lastResults = await getJson(`/api/challenges/${encodeURIComponent(open[open.length - 1].id)}/results`);
      showBoard(lastResults);
      boardState = "shown";
    }
  } catch {
    // Not reachable now, or the challenge went away meanwhile: asked again next time.
  }
  setTimeout(pollBoard, BOARD_MS);
}

// -- the spotlight ---------------------------------------------------------------------------

/** The enlarged tile: its own job stream (the full boundary, every point) while it is open;
 * drawn by the Painter like a tile (`paint`), its frames acknowledged after the paint. */
const spot = {
  tile: null, job: null, stream: null, view: null, chart: null,
  frame: null, frames: 0, last: null, status: null, task: null,
  paint() {
    if (!this.tile) return;
    const frame = this.frame;
    if (frame && this.view) {
      this.frame = null;
      this.view.draw(frame);
      this.frames += 1;
    }
    spotNumbers(this.tile);
  },
};

function spotTitle(tile) {
  $("spot-number").textContent = String(tile.number);
  $("spot-name").textContent = showNames && tile.student.name ? tile.student.name
    : t("wall.tile.anonymous", { n: tile.number });
  $("spot-what").textContent = tile.job ? jobName(tile.job) : t("wall.tile.no_run");
}

function openSpotlight(tile) {
  if (spot.tile) closeSpotlight({ keepOpen: true });
  const dialog = $("spotlight");
  if (!dialog.open) dialog.showModal(); // first, so that the chart knows its width
  Object.assign(spot, { tile, job: tile.job?.id ?? null, frame: null, frames: 0,
    last: tile.points[tile.points.length - 1] ?? null, status: null, task: tile.hello?.task ?? null });
  spotTitle(tile);
  const canvas = $("spot-main");
  spot.view = new OutputView(canvas, { pointRadius: 3.2 });
  spot.chart = new LineChart($("spot-chart"), {
    title: t("chart.loss"), height: 260,
    series: [
      { field: "train_loss", label: t("chart.training"), stroke: CURVE_COLOURS.training },
      { field: "test_loss", label: t("chart.test"), stroke: CURVE_COLOURS.test },
    ],
  });
  const onHello = (msg, points) => {
    canvas.hidden = msg.kind !== "points2d";
    if (!canvas.hidden) spot.view.setData(msg.data || {}, { task: msg.task, numClasses: msg.num_classes });
    spot.task = msg.task;
    spot.chart.clear();
    spot.chart.append(points);
    if (points.length) spot.last = points[points.length - 1];
  };
  // What the tile has, at once (its last picture, its thinned curve) ...
  if (tile.hello) onHello(tile.hello, tile.points); else canvas.hidden = !tile.job;
  if (tile.lastFrame && !canvas.hidden) spot.view.draw(tile.lastFrame);
  // ... then the run's own stream: the full picture and every point, while enlarged.
  if (tile.job) {
    const stream = new JobStream({ id: tile.job.id }, {
      hello: (msg) => {
        onHello(msg, msg.metrics || []);
        spot.status = msg.status?.status ?? null;
        painter.mark(spot);
      },
      metrics: (added) => {
        spot.chart.append(added);
        if (added.length) spot.last = added[added.length - 1];
        painter.mark(spot);
      },
      status: (msg) => { spot.status = msg.status; painter.mark(spot); },
      snapshot: (frame) => {
        spot.frame = frame;
        painter.mark(spot, true);
        painter.ackAfter(stream);
      },
    }, { subscribe: { hz: SPOT_HZ, detail: "boundary", ...SPOT_METRICS } });
    spot.stream = stream;
    stream.connect();
  }
  spotNumbers(tile);
  dialog.dataset.studentId = tile.student.id ?? "";
}

function spotNumbers(tile) {
  const status = spot.status || tile.status;
  const last = spot.last;
  $("spot-status").textContent = status ? t(`wall.status.${status}`) : "";
  $("spot-status").dataset.status = status || "";
  $("spot-epoch").textContent = last?.epoch ?? "\u2013";
  const loss = lossOf(last);
  $("spot-loss").textContent = loss === null ? "\u2013" : loss.toFixed(4);
  const [, value, name] = metricOf(last, spot.task ?? tile.hello?.task);
  $("spot-metric-name").textContent = t(name);
  $("spot-metric").textContent = value;
}

function closeSpotlight({ keepOpen = false } = {}) {
  spot.stream?.close();
  spot.stream = null;
  spot.tile = null;
  spot.job = null;
  spot.frame = null;
  spot.chart?.destroy();
  spot.chart = null;
  spot.view = null;
  if (!keepOpen && $("spotlight").open) $("spotlight").close();
}

$("spotlight").addEventListener("close", () => {
  const tile = spot.tile;
  closeSpotlight();
  tile?.el.focus(); // the keyboard goes back to where it was
});
$("spot-close").addEventListener("click", () => $("spotlight").close());
$("spotlight").addEventListener("keydown", (event) => {
  const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
  if (!step || !spot.tile) return;
  event.preventDefault();
  const order = [...tiles.values()];
  const next = order[(order.indexOf(spot.tile) + step + order.length) % order.length];
  if (next && next !== spot.tile) openSpotlight(next);
});

// -- start -----------------------------------------------------------------------------------

$("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen?.().catch(() => {});
});
window.addEventListener("resize", layout);

/** For the benchmark and the tests: what each tile has drawn so far. */
window.__wallStats = () => [...tiles.values()].map((tile) => ({
  student: tile.student.id, number: tile.number, job: tile.job?.id ?? null,
  status: tile.status, kind: tile.hello?.kind ?? null, frames: tile.frames, updates: tile.updates,
}));
/** ... and the spotlight: the job it follows and the frames of its own stream it drew. */
window.__wallSpot = () => ({ job: spot.job, frames: spot.frames, open: Boolean(spot.tile) });

async function start() {
  translatePage();
  document.body.classList.toggle("names-hidden", !showNames);
  $("names").checked = showNames;
  try {
    info = await api.classInfo();
  } catch (e) {
    $("wall-error").textContent = e.message;
    return;
  }
  if (info.mode === "class" && info.role !== "teacher") { location.assign("/teacher"); return; }
  streams.connect();
  poll();
  pollBoard();
}

start();
