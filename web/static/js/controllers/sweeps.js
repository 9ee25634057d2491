/**
 * Sweeps on the page: the sweep buttons beside the controls open the dialog
 * (views/sweeps_dialog.js); Start sends POST /api/sweeps with the page's job spec as the base;
 * the sweep panel then shows one tile per variant (views/sweeps_grid.js), each fed by its own
 * low-rate stream while it is on screen (3 pictures a second, 1 while the page's own run trains;
 * see balance() for the limit),
 * the metric chart (views/sweeps_chart.js) from GET /api/sweeps/{id} (asked every 1.5 s while
 * a variant trains), and pause, resume, stop and delete for the whole sweep. A tile's click opens
 * its variant as a normal run (the runs list). The page's last sweep is kept in localStorage and
 * shown again after a reload.
 */

import { api, ApiError, JobStream } from "../api.js";
import { t } from "../i18n/index.js";
import { $, session, store } from "../session.js";
import { buildSweepPanel, SweepChart } from "../views/sweeps_chart.js";
import { SweepDialog } from "../views/sweeps_dialog.js";
import { metricLabel, SweepGrid } from "../views/sweeps_grid.js";
import { addSweepButtons, sweepableControls, watchControls } from "../views/sweeps_controls.js";
import { clearErrors, showError } from "./errors.js";
import { addRun, openRun, runOf } from "./runs.js";

/** Pictures a second for each tile (the main view asks for 10). */
const TILE_HZ = 3;
/** ... and while the page's own run trains. */
const TILE_HZ_BESIDE_RUN = 1;
/** Tile streams open at once (the server's max_sockets_per_client is 8; the run takes one). */
const MAX_TILE_STREAMS = 6;
/** A running tile's stream gives its place to a waiting tile after this long. */
const ROTATE_MS = 4000;
/** A finished variant's stream is closed after this long even without its last picture. */
const SETTLE_MS = 8000;
const POLL_MS = 1500;
const SAVED_KEY = "playground.sweep";
/** Epochs of each variant when the page trains "until paused". */
const DEFAULT_EPOCHS = 100;
const FINAL = new Set(["completed", "stopped", "failed", "deleted"]);

/** The current sweep: {id, token, axes: [{path, label}], streams: Map, timer, visible: Map}. */
let current = null;
let dialog = null;
let grid = null;
let chart = null;

/**
 * The spec path the top bar's activation sweeps. It sets every hidden layer's activation, and an
 * axis names one field: so it is offered when one layer has an activation (the layer cards'
 * activation controls sweep each layer's own).
 */
function activationPath(spec) {
  const at = (spec.model?.layers || []).flatMap((l, i) => (l.activation ? [i] : []));
  return at.length === 1 ? `model.layers.${at[0]}.activation` : null;
}

function controls() {
  const spec = store.toSpec({ start: true });
  return sweepableControls(spec, { activationPath: activationPath(spec) });
}

function refreshButtons() {
  addSweepButtons(controls(), openDialog);
}

function openDialog(el) {
  const control = controls().find((c) => c.el === el);
  if (!control) return;
  dialog.open(control, { epochs: store.get("epochs") ?? DEFAULT_EPOCHS });
}

/** The server's 422 locations as the dialog's slots: an axis by its index, else the form. */
function dialogErrors(err, body) {
  if (!(err instanceof ApiError)) return [{ axis: null, message: String(err.message || err) }];
  if (!err.locations.length) return [{ axis: null, message: err.message }];
  return err.locations.map((d) => {
    const rel = d.loc[0] === "body" ? d.loc.slice(1) : d.loc;
    const axis = rel[0] === "axes" && Number.isInteger(rel[1]) && rel[1] < body.axes.length ? rel[1] : null;
    return { axis, message: d.msg };
  });
}

async function start(body, epochs) {
  const base = store.toSpec({ start: true });
  base.training.epochs = epochs > 0 ? epochs : null;
  const full = { base, ...body };
  let created;
  try {
    created = await api.createSweep(full, session.token);
  } catch (err) {
    dialog.showErrors(dialogErrors(err, body));
    return false;
  }
  // In class mode the student's cookie authorizes the sweep: its token is not kept (saved_runs.js).
  const token = session.classMode ? null : created.token;
  if (token && !session.token) session.token = token;
  const labels = Object.fromEntries(controls().map((c) => [c.path, c.label]));
  const axes = body.axes.map((a) => ({ path: a.path, label: labels[a.path] || a.path.split(".").pop() }));
  await close({ keepSaved: false });
  remember({ id: created.id, token, axes });
  await show({ id: created.id, token, axes });
  $("sweeps-panel").scrollIntoView({ behavior: "smooth", block: "start" });
  return true;
}

function remember(saved) {
  try { localStorage.setItem(SAVED_KEY, JSON.stringify(saved)); } catch { /* storage off */ }
}

function forget() {
  try { localStorage.removeItem(SAVED_KEY); } catch { /* storage off */ }
}

/** Show a sweep: its tiles, their streams, the chart; poll it while it trains. */
async function show({ id, token, axes }) {
  let sweep;
  try {
    sweep = await api.getSweep(id, token);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 403)) forget();
    else showError("sweep", err.message);
    return;
  }
  current = { id, token, axes, streams: new Map(), visible: new Map(), timer: null, variants: sweep.variants };
  $("sweeps-panel").hidden = false;
  grid.reset(axes, sweep.variants);
  applySweep(sweep);
}

/**
 * Open and close the tiles' streams. A tile wants one while it is on screen (and the tab
 * visible) and its variant trains, or until it has drawn its final picture. The server lets one
 * client hold `max_sockets_per_client` (8) streams, the page's own run takes one: at most
 * MAX_TILE_STREAMS are open, in the tiles' shown order; when more tiles want one, the longest
 * open of the running ones gives its place up after ROTATE_MS, so every shown tile moves.
 * A tile without a stream keeps its curve and shows the sweep's latest metrics (the poll).
 */
function balance() {
  if (!current) return;
  const sweep = current;
  const now = performance.now();
  const order = grid.sorted();
  const wants = (tile) => sweep.visible.get(tile.job) && !document.hidden &&
    (!FINAL.has(tile.status) || !tile.settled);
  for (const [jobId, open] of sweep.streams) {
    const tile = grid.tile(jobId);
    // A finished variant whose last picture does not come (it failed first) lets go too.
    if (tile && FINAL.has(tile.status) && now - open.since > SETTLE_MS) tile.settled = true;
    if (!tile || !wants(tile)) { open.stream.close(); sweep.streams.delete(jobId); }
  }
  const starved = order.filter((tile) => wants(tile) && !sweep.streams.has(tile.job));
  if (starved.length && sweep.streams.size >= MAX_TILE_STREAMS) {
    const oldest = [...sweep.streams.entries()]
      .filter(([, open]) => open.frames > 0 && now - open.since > ROTATE_MS)
      .sort((a, b) => a[1].since - b[1].since)
      .slice(0, Math.min(2, starved.length));
    for (const [jobId, open] of oldest) { open.stream.close(); sweep.streams.delete(jobId); }
  }
  for (const tile of starved) {
    if (sweep.streams.size >= MAX_TILE_STREAMS) break;
    connect(tile.job);
  }
  // While the page's own run trains, the tiles ask for fewer pictures: the engine's frame
  // budget is shared by every watched job, and the main view comes first.
  const hz = tileHz();
  for (const open of sweep.streams.values()) {
    if (open.stream.subscribeOnOpen.hz === hz) continue;
    open.stream.subscribeOnOpen = { ...open.stream.subscribeOnOpen, hz };
    open.stream.subscribe({ hz });
  }
}

function tileHz() {
  const s = session.job?.status;
  return s === "running" || s === "queued" ? TILE_HZ_BESIDE_RUN : TILE_HZ;
}

function connect(jobId) {
  const sweep = current;
  const tile = () => grid.tile(jobId);
  const open = { stream: null, since: performance.now(), frames: 0 };
  /** A finished variant's tile is settled once its last picture (or its curve) is drawn. */
  const settle = () => {
    const x = tile();
    if (x && FINAL.has(x.status)) { x.settled = true; queueMicrotask(balance); }
  };
  open.stream = new JobStream({ id: jobId, token: sweep.token }, {
    hello: (msg) => {
      tile()?.hello(msg);
      grid.schedule();
      if (msg.kind !== "points2d") settle();
    },
    metrics: (points) => { tile()?.metrics(points); grid.schedule(); },
    status: (msg) => {
      const x = tile();
      if (!x || !msg.status) return;
      x.status = msg.status;
      grid.schedule();
      if (open.frames > 0) { settle(); return; } // the last epoch's picture came before its status
      // Finished before any picture reached this stream: a new stream gets the last one (once).
      if (FINAL.has(msg.status) && !x.reopened && sweep.streams.get(jobId) === open) {
        x.reopened = true;
        open.stream.close();
        sweep.streams.delete(jobId);
        queueMicrotask(balance);
      }
    },
    snapshot: (frame) => {
      const t0 = performance.now();
      tile()?.draw(frame);
      tileDraws.add(performance.now() - t0);
      open.frames += 1;
      open.stream.ack();
      settle();
    },
    connection: (state) => { if (state === "closed" && tile()) { tile().status = "deleted"; tile().settled = true; grid.schedule(); } },
  }, { subscribe: { hz: tileHz(), snapshots: true, metrics: true, detail: "boundary" } });
  sweep.streams.set(jobId, open);
  open.stream.connect();
  setTimeout(balance, SETTLE_MS + 100);
}

/** A tile came into view or left it: its stream opens or closes (balance). */
function onVisible(jobId, visible) {
  if (!current) return;
  current.visible.set(jobId, visible);
  queueMicrotask(balance);
}

/** What GET /api/sweeps/{id} said: statuses, metrics, the summary, the chart; poll again? */
function applySweep(sweep) {
  if (!current || sweep.id !== current.id) return;
  current.variants = sweep.variants;
  grid.update(sweep.variants);
  const counts = {};
  for (const v of sweep.variants) counts[v.status] = (counts[v.status] || 0) + 1;
  const parts = Object.entries(counts).map(([status, n]) => `${n} ${t(`sweeps.status.${status}`)}`);
  $("sweep-summary").textContent = t("sweeps.summary", { n: sweep.variants.length, parts: parts.join(", ") });
  const active = sweep.variants.some((v) => !FINAL.has(v.status));
  const paused = sweep.variants.length > 0 && sweep.variants.every((v) => v.status === "paused" || FINAL.has(v.status)) && active;
  $("sweep-pause").hidden = !active || paused;
  $("sweep-resume").hidden = !paused;
  $("sweep-stop").disabled = !active;
  clearTimeout(current.timer);
  balance();
  if (active) current.timer = setTimeout(poll, POLL_MS);
}

async function poll() {
  if (!current || current.stopped) return;
  const { id, token } = current;
  try {
    const asked = api.getSweep(id, token);
    current.inflight = asked.catch(() => null);
    const sweep = await asked;
    if (!current?.stopped) applySweep(sweep);
  } catch (err) {
    if (!current || current.id !== id) return;
    if (err instanceof ApiError && err.status === 404) { await close({ keepSaved: false }); return; }
    current.timer = setTimeout(poll, POLL_MS * 2);
  }
}

/** The sort list (the sweep's order, then every metric the variants report) and the chart. */
function redrawChart() {
  if (!current) return;
  const select = $("sweep-sort");
  const fields = grid.fields();
  const have = [...select.options].map((o) => o.value);
  const want = ["order", ...fields];
  if (want.join() !== have.join()) {
    const picked = select.value;
    select.textContent = "";
    select.add(new Option(t("sweeps.sort_order"), "order"));
    for (const f of fields) select.add(new Option(metricLabel(f), f));
    select.value = want.includes(picked) ? picked : "order";
  }
  const field = select.value === "order" ? (fields.includes(grid.metricField) ? grid.metricField : fields[0] || "test_loss") : select.value;
  const rows = [...grid.tiles.values()].map((tile) => ({ values: tile.values, metric: tile.metric(field) }));
  chart.draw(current.axes, rows, field);
}

async function control(action) {
  if (!current) return;
  clearErrors(["sweep"]);
  try {
    await api.controlSweep(current.id, action, current.token);
  } catch (err) {
    showError("sweep", err.message);
  }
  await poll();
}

/** Stop following the sweep (its streams close); `keepSaved: false` also forgets it here. */
async function close({ keepSaved = true } = {}) {
  if (!current) return;
  clearTimeout(current.timer);
  for (const open of current.streams.values()) open.stream.close();
  current = null;
  grid.destroy();
  $("sweeps-panel").hidden = true;
  if (!keepSaved) forget();
}

async function remove() {
  if (!current) return;
  if (!window.confirm(t("sweeps.delete_confirm", { n: current.variants.length }))) return;
  clearErrors(["sweep"]);
  const { id, token } = current;
  if (current.variants.some((v) => v.job === session.job?.id)) {
    showError("sweep", t("sweeps.delete_shown"));
    return;
  }
  // No poll may be under way when the sweep goes (it would meet a 404).
  const sweep = current;
  sweep.stopped = true;
  clearTimeout(sweep.timer);
  await sweep.inflight;
  try {
    await api.deleteSweep(id, token);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) {
      showError("sweep", err.message);
      sweep.stopped = false;
      poll();
      return;
    }
  }
  await close({ keepSaved: false });
}

/** Open a variant as the page's run: it joins the runs list and its setup becomes the page's. */
async function openVariant(jobId) {
  if (!current) return;
  clearErrors(["sweep"]);
  if (!runOf(jobId)) {
    let job;
    try {
      job = await api.getJob(jobId, current.token);
    } catch (err) {
      showError("sweep", err.message);
      return;
    }
    addRun({ id: jobId, token: current.token, status: job.status }, job.spec);
    const run = runOf(jobId);
    run.epoch = job.progress?.epoch ?? 0;
    run.test_loss = job.metrics?.test_loss ?? null;
    run.test_accuracy = job.metrics?.test_accuracy ?? null;
  }
  await openRun(jobId);
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function buildPanel() {
  const { tiles, canvas, caption } = buildSweepPanel($("sweeps-panel"), {
    onSort: (field) => { grid.sortBy(field); redrawChart(); },
    actions: {
      pause: () => control("pause"), resume: () => control("resume"), stop: () => control("stop"),
      delete: remove, hide: () => close({ keepSaved: false }),
    },
  });
  grid = new SweepGrid(tiles, { onOpen: openVariant, onVisible });
  grid.onRendered = redrawChart;
  chart = new SweepChart(canvas, caption);
}

/** Set up sweeps on the page (after the controls are bound), and show the last sweep again. */
export function initSweeps() {
  buildPanel();
  dialog = new SweepDialog($("sweep-dialog"), { controls, onStart: start });
  refreshButtons();
  watchControls(refreshButtons);
  store.subscribe(() => queueMicrotask(refreshButtons));
  document.addEventListener("visibilitychange", balance);
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(SAVED_KEY) || "null"); } catch { saved = null; }
  if (saved?.id && Array.isArray(saved.axes)) show(saved);
}

/** The tiles' draw times (ms): how much of the page's time the sweep takes. */
const tileDraws = {
  count: 0, total: 0, max: 0,
  add(dt) { this.count += 1; this.total += dt; this.max = Math.max(this.max, dt); },
  get mean() { return this.count ? this.total / this.count : 0; },
};

/** For the browser tests and benchmarks: the sweep the page follows, the tiles' draw times. */
window.__sweeps = { get current() { return current; }, draws: tileDraws };
