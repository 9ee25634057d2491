/**
 * The playground in challenge mode (`/?challenge=<code>`): the challenge's setup becomes the
 * page's, the controls the teacher locked are read-only (and refused by the store, whatever
 * tries to change them: a link, a loaded file, the network diagram), the hidden ones are
 * hidden, new jobs are runs of the challenge (api.setJobChallenge), and a banner shows the
 * title, the instructions, the goal and how the shown run stands ("Goal met at epoch 87", or
 * what is still missing), polled from GET /api/challenges/{id}/mine.
 *
 * State: `session.challenge` (the challenge as the server describes it) and
 * `session.challengeRuns` (the student's runs on it); main.js calls `startChallenge` once,
 * after the share link was read and before the earlier runs are restored.
 */

import { api, setJobChallenge } from "../api.js";
import { t } from "../i18n/index.js";
import { saveRuns } from "../saved_runs.js";
import { $, session, store } from "../session.js";
import { Store } from "../store.js";
import { addChallengeStyles, controlLabel, formatValue, goalText, metricLabel } from "../views/challenge.js";
import { loadSpec, renderControls } from "./controls.js";

const POLL_MS = 2000;
/** Page-only keys a challenge never locks. */
const FREE_KEYS = ["show_test", "discretize", "lang"];
/** Elements a control stands for besides its `[data-prop]` input (ids). */
const PARTS = {
  dataset: ["datasets", "dataset-about", "upload-box", "delete-upload"],
  params: ["dataset-params"],
  features: ["features-box"],
  layers: ["layers", "add-layer", "remove-layer"],
  data_seed: ["regenerate"],
};

/** Start challenge mode when the address names a challenge; resolves when the setup is loaded. */
export async function startChallenge() {
  const ref = new URLSearchParams(location.search).get("challenge");
  if (!ref) return;
  addChallengeStyles();
  const banner = makeBanner();
  let challenge;
  try {
    challenge = await api.getChallenge(ref);
  } catch (err) {
    banner.querySelector(".challenge-progress").textContent = t("challenge.not_found", { code: ref, message: err.message });
    banner.classList.add("failed");
    return;
  }
  session.challenge = challenge;
  session.challengeRuns = [];
  setJobChallenge(challenge.id);
  const editable = new Set([...challenge.controls.editable, ...FREE_KEYS]);
  if (!editable.has("dataset")) editable.delete("problem"); else editable.add("problem");
  // The challenge's setup, then what the link says about the controls the student may change.
  const { named } = Store.stateFromHash(location.hash);
  loadSpec(challenge.spec);
  store.set(Object.fromEntries(Object.entries(named).filter(([k]) => editable.has(k))));
  guardStore(editable);
  applyLocks(challenge);
  keepLocked(challenge);
  fillBanner(banner, challenge);
  await pollMine();
  // The run this tab showed before is kept only when it is a run of this challenge.
  const mine = new Set(session.challengeRuns.map((r) => r.job_id));
  let current = null;
  try { current = sessionStorage.getItem("playground.current"); } catch { /* storage off */ }
  if (current && !mine.has(current)) saveRuns([], null, { classMode: true });
  setInterval(() => { if (!document.hidden) pollMine(); }, POLL_MS);
}

function makeBanner() {
  const banner = document.createElement("section");
  banner.id = "challenge-banner";
  banner.className = "challenge-banner";
  banner.setAttribute("aria-label", t("challenge.banner_label"));
  banner.innerHTML = `<div class="challenge-head"><span class="challenge-tag"></span><h2 class="challenge-title"></h2>
    <span class="challenge-code"></span></div><p class="challenge-instructions"></p><p class="challenge-goal"></p>
    <p class="challenge-progress" role="status" aria-live="polite"></p><p class="challenge-best"></p>
    <p class="challenge-note"></p>`;
  banner.querySelector(".challenge-tag").textContent = t("challenge.banner_label");
  document.querySelector("main.columns").before(banner);
  return banner;
}

function fillBanner(banner, c) {
  banner.querySelector(".challenge-title").textContent = c.title;
  banner.querySelector(".challenge-code").textContent = t("challenge.code", { code: c.code });
  banner.querySelector(".challenge-instructions").textContent = c.instructions;
  banner.querySelector(".challenge-instructions").hidden = !c.instructions;
  banner.querySelector(".challenge-goal").textContent = goalText(c.goal);
  banner.classList.toggle("closed", c.state !== "open");
}

/** Refuse changes to locked keys, whoever asks; activation alone may change the layers. */
function guardStore(editable) {
  const set = store.set.bind(store);
  store.set = (changes) => {
    const allowed = {};
    const refused = [];
    for (const [key, value] of Object.entries(changes)) {
      const onlyActivation = key === "layers" && editable.has("activation") && sameButActivation(store.get("layers"), value);
      if (editable.has(key) || onlyActivation) allowed[key] = value;
      else if (JSON.stringify(store.get(key)) !== JSON.stringify(value)) refused.push(key);
    }
    if (refused.length) {
      note(t("challenge.locked_note", { names: refused.map(controlLabel).join(", ") }));
      queueMicrotask(renderControls);
    }
    return set(allowed);
  };
}

function sameButActivation(old, next) {
  if (!Array.isArray(next) || next.length !== old.length) return false;
  const strip = (l) => ({ ...l, activation: undefined });
  return next.every((l, i) => JSON.stringify(strip(l)) === JSON.stringify(strip(old[i])));
}

function note(text) {
  const el = document.querySelector("#challenge-banner .challenge-note");
  if (el) el.textContent = text;
}

/** The elements that show control `name`: its field (or input and label) and its parts. */
function elementsOf(name) {
  const found = (PARTS[name] || []).map((id) => $(id)).filter(Boolean);
  for (const el of document.querySelectorAll(`[data-prop="${name}"]`)) {
    const field = el.closest(".field, label.seed");
    if (field) { found.push(field); continue; }
    found.push(el);
    const label = el.id && document.querySelector(`label[for="${el.id}"]`);
    if (label) found.push(label);
  }
  return found;
}

/** Apply the locks again whenever the panels redraw their controls (data set parameters,
 * feature boxes, layer cards are made anew) or the store changes, once per frame at most. */
function keepLocked(c) {
  let due = false;
  const again = () => {
    if (due) return;
    due = true;
    requestAnimationFrame(() => { due = false; applyLocks(c); });
  };
  store.subscribe(again);
  const observer = new MutationObserver(again);
  for (const id of ["data-panel", "network-panel"]) {
    if ($(id)) observer.observe($(id), { childList: true, subtree: true });
  }
}

/** Locked controls read-only, hidden ones hidden (again after each redraw). */
function applyLocks(c) {
  const locked = new Set(c.controls.locked);
  const hidden = new Set(c.controls.hidden);
  if (locked.has("dataset")) locked.add("problem");
  for (const name of locked) {
    for (const el of elementsOf(name)) {
      el.classList.add("challenge-locked");
      el.title = t("challenge.locked");
      const inputs = el.matches("input, select, button, textarea") ? [el] : el.querySelectorAll("input, select, button, textarea");
      for (const input of inputs) input.disabled = true;
    }
  }
  for (const name of hidden) for (const el of elementsOf(name)) el.hidden = true;
  // The network diagram's feature switches and +/- neuron buttons (redrawn with the network).
  if (locked.has("features")) {
    for (const el of document.querySelectorAll("#network .neuron.input")) {
      el.setAttribute("aria-disabled", "true");
      el.classList.add("challenge-fixed");
    }
  }
  if (locked.has("layers")) for (const b of document.querySelectorAll("#network .unit-buttons button")) b.disabled = true;
}

async function pollMine() {
  const c = session.challenge;
  if (!c) return;
  try {
    const mine = await api.challengeMine(c.id, session.token);
    session.challengeRuns = mine.runs;
    c.state = mine.state;
  } catch { /* the next poll tries again */ }
  showProgress();
}

/** The banner's progress lines: the shown run against the goal, and the student's best. */
export function showProgress() {
  const c = session.challenge;
  const banner = $("challenge-banner");
  if (!c || !banner) return;
  banner.classList.toggle("closed", c.state !== "open");
  const goal = c.goal;
  const runs = session.challengeRuns || [];
  const run = runs.find((r) => r.job_id === session.job?.id);
  let text;
  if (c.state !== "open" && !run) text = t("challenge.closed");
  else if (!session.job) text = t("challenge.progress.none");
  else if (!run) text = t("challenge.progress.other_run");
  else if (run.met) text = t("challenge.progress.met", { epoch: run.met_epoch });
  else if (run.latest_value === null) text = t("challenge.progress.waiting");
  else {
    text = t("challenge.progress.missing", { metric: metricLabel(goal.metric), value: formatValue(run.latest_value),
      op: goal.op === "<=" ? "\u2264" : "\u2265", goal: goal.value });
    if (goal.max_epochs && run.latest_epoch >= goal.max_epochs) text += ` ${t("challenge.progress.past_epochs", { n: goal.max_epochs })}`;
  }
  const progress = banner.querySelector(".challenge-progress");
  progress.textContent = text;
  progress.classList.toggle("met", Boolean(run?.met));
  const best = bestRun(runs, goal);
  const count = t("challenge.runs", { n: runs.length });
  const lines = [];
  if (best?.met) lines.push(t("challenge.progress.best_met", { epoch: best.met_epoch, runs: count }));
  else if (best && best.best_value !== null) lines.push(t("challenge.progress.best", { metric: metricLabel(goal.metric), value: formatValue(best.best_value), runs: count }));
  const params = session.report?.total_parameters;
  if (goal.max_params && Number.isFinite(params)) lines.push(t("challenge.params", { n: params, max: goal.max_params }));
  banner.querySelector(".challenge-best").textContent = lines.join(" ");
  banner.querySelector(".challenge-best").classList.toggle("over", Boolean(goal.max_params && params > goal.max_params));
}

function bestRun(runs, goal) {
  const score = (r) => [r.met ? 0 : 1, r.met ? r.met_epoch : 0,
    r.best_value === null ? Infinity : goal.op === "<=" ? r.best_value : -r.best_value];
  return [...runs].sort((a, b) => {
    const x = score(a); const y = score(b);
    return x[0] - y[0] || x[1] - y[1] || (x[2] === y[2] ? 0 : x[2] < y[2] ? -1 : 1);
  })[0];
}
