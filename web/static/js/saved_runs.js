/**
 * The page's runs survive a reload or a closed tab.
 *
 * Open mode: the runs (id, token and what their row shows) are kept in localStorage, the run
 * this tab was showing in sessionStorage (per tab, kept over a reload). Class mode: the
 * student's jobs are listed again from GET /api/jobs, which the student's cookie authorizes (the
 * page never sees that token; requests without one carry the cookie). Nothing here touches
 * the DOM; main.js turns what `restore()` gives back into its runs list and re-opens the
 * current run's stream.
 */

import { api, ApiError } from "./api.js";

const RUNS_KEY = "playground.runs";
const CURRENT_KEY = "playground.current";
/** The fields of a run that are kept: enough to list it, authorize it and label it. */
const KEPT = ["id", "token", "dataset", "layers", "learning_rate", "seed", "label"];

function storage(kind) {
  try { return kind === "session" ? window.sessionStorage : window.localStorage; } catch { return null; }
}

function readJson(kind, key, fallback) {
  try { return JSON.parse(storage(kind)?.getItem(key) ?? "null") ?? fallback; } catch { return fallback; }
}

let lastWritten = "";

/** Keep `runs` (open mode) and which one this tab shows (both modes). */
export function saveRuns(runs, currentId, { classMode = false } = {}) {
  if (!classMode) {
    const text = JSON.stringify(runs.map((r) => Object.fromEntries(KEPT.map((k) => [k, r[k] ?? null]))));
    if (text !== lastWritten) {
      try { storage("local")?.setItem(RUNS_KEY, text); lastWritten = text; } catch { /* storage full or off */ }
    }
  }
  try {
    if (currentId) storage("session")?.setItem(CURRENT_KEY, currentId);
    else storage("session")?.removeItem(CURRENT_KEY);
  } catch { /* storage off */ }
}

/** A run row from a job as the server describes it (GET /api/jobs). */
function fromJob(job, token) {
  const spec = job.spec || {};
  return {
    id: job.id, token, status: job.status, epoch: job.progress?.epoch ?? 0,
    dataset: spec.dataset?.name, layers: spec.model?.layers || [],
    learning_rate: spec.training?.optimizer?.learning_rate, seed: spec.training?.seed ?? 0,
    test_loss: job.metrics?.test_loss ?? null, test_accuracy: job.metrics?.test_accuracy ?? null,
    spec, created_at: job.created_at,
  };
}

/**
 * The runs to show again, oldest first, and the id of the run this tab showed (or null).
 * `classMode`: list the student's jobs from the server; else read localStorage and ask the
 * server for each (a run the server no longer has is dropped).
 */
export async function restore({ classMode }) {
  let currentId = null;
  try { currentId = storage("session")?.getItem(CURRENT_KEY) ?? null; } catch { /* storage off */ }
  if (classMode) {
    const { jobs } = await api.listJobs();
    const runs = jobs.map((j) => fromJob(j, null));
    runs.sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
    return { runs, currentId };
  }
  const saved = readJson("local", RUNS_KEY, []);
  const runs = [];
  for (const r of Array.isArray(saved) ? saved : []) {
    if (!r || typeof r.id !== "string") continue;
    try {
      const job = await api.getJob(r.id, r.token);
      runs.push({ ...fromJob(job, r.token), label: r.label });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 0) throw err; // the server is away: try later
      // 404 / 403: the job is gone (deleted, or the server's data was reset).
    }
  }
  return { runs, currentId };
}
