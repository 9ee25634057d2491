/**
 * The teacher's "Training machines" panel (/teacher, issue 15): when the server trains on a Ray
 * cluster (docs/CLUSTER.md), each engine actor with its machine's address, device, jobs, running
 * jobs and steps/s, and how many jobs wait for a machine. Hidden on a server that trains in its
 * own process.
 *
 * Data: GET /api/class/cluster ({enabled, actors: [{actor, node, address, device, alive, jobs,
 * active, steps_per_second, load}], waiting}), polled every POLL_MS; the cookie the teacher's
 * login set is sent by the browser. teacher.js calls `startClusterPanel` once signed in.
 */

import { t } from "../i18n/index.js";

const POLL_MS = 3000;
const $ = (id) => document.getElementById(id);
let timer = null;

function cell(tag, text, numeric = false) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (numeric) el.className = "num";
  return el;
}

function render(cluster) {
  const panel = $("cluster-panel");
  panel.hidden = !cluster.enabled;
  if (!cluster.enabled) return false;
  const head = document.createElement("tr");
  head.append(cell("th", t("cluster.machine")), cell("th", t("cluster.engine")),
    cell("th", t("cluster.device")), cell("th", t("cluster.jobs"), true),
    cell("th", t("cluster.running"), true), cell("th", t("cluster.steps"), true));
  const rows = cluster.actors.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.actor = a.actor;
    tr.append(cell("td", a.address), cell("td", a.actor), cell("td", a.device),
      cell("td", String(a.jobs), true), cell("td", String(a.active), true),
      cell("td", a.steps_per_second.toFixed(1), true));
    return tr;
  });
  $("cluster-table").replaceChildren(head, ...rows);
  $("cluster-note").textContent = !cluster.actors.length ? t("cluster.none")
    : cluster.waiting ? t("cluster.waiting", { n: cluster.waiting }) : "";
  return true;
}

async function poll() {
  clearTimeout(timer);
  try {
    const response = await fetch("/api/class/cluster", { credentials: "same-origin" });
    if (!response.ok) return;  // signed out: teacher.js shows the sign-in
    if (!render(await response.json())) return;  // one server: nothing to follow
  } catch {
    // The server is away: the page's own poll says so; try again later.
  }
  timer = setTimeout(poll, POLL_MS);
}

/** Show the panel when the server trains on a cluster and keep it current. */
export function startClusterPanel() {
  poll();
}
