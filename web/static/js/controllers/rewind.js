/**
 * When training goes wrong (issue 16, "See why"): the rewind banner and the health hints.
 *
 * A job whose loss became NaN or infinite, or exploded, is paused by the server at its last
 * good epoch with a `diverged` diagnosis (the status message, or GET /api/jobs/{id} after a
 * reload). `onJobStatus(msg)` shows the banner `#rewind-banner` in the output panel: what went
 * wrong, in which layer (its outputs or its gradients) and at which epoch and step, where it
 * was paused, and two buttons: retry with a tenfold smaller learning rate, or with gradient
 * clipping (each PATCHes the job, then resumes it). The live region (#announcer, access.js)
 * says it. `onHealth(health)` shows a frame's `health` hints (a dead ReLU layer, vanishing
 * gradients) under the network in `#health-hints`, without stopping anything.
 */

import { api } from "../api.js";
import { t } from "../i18n/index.js";
import { $, session, store } from "../session.js";
import { showApiError } from "./errors.js";
import { togglePlay } from "./job.js";

const CLIP_NORM = 1; // the max norm of the first "retry with gradient clipping"

let shown = null; // { jobId, spec, diverged } of the banner on screen

/** A learning rate or norm as people write it: 0.003, not 0.0030000000000000005. */
const tidy = (v) => Number(v.toPrecision(3));

/** "hidden layer 2" or "the output layer" for the model's layer `index`. */
function layerName(index) {
  const hidden = store.get("layers")?.length ?? 0;
  return index >= hidden ? t("rewind.output_layer") : t("rewind.hidden_layer", { n: index + 1 });
}

const whatName = (what) => t(what === "NaN" ? "rewind.what_nan" : "rewind.what_infinite");

/** The diagnosis as sentences in the page's language. */
export function diagnosisText(d) {
  const parts = [];
  if (d.loss === "exploding") parts.push(t("rewind.exploded", { epoch: d.epoch }));
  else parts.push(t("rewind.loss_became", { what: whatName(d.loss), epoch: d.epoch }));
  if (Number.isInteger(d.layer)) {
    const layer = layerName(d.layer);
    if (d.loss === "exploding") parts.push(t("rewind.largest_gradients", { layer }));
    else {
      const key = d.where === "gradients" ? "rewind.layer_gradients" : "rewind.layer_values";
      parts.push(t(key, { layer, what: whatName(d.what), step: d.step ?? "?" }));
    }
  }
  if (d.rewound_to) parts.push(t("rewind.rewound", { epoch: d.rewound_to.epoch }));
  if (d.repeated > 1) parts.push(t("rewind.repeated"));
  return parts.join(" ");
}

function banner() { return $("rewind-banner"); }

/** Hide the banner (a new job, a reset, training again). */
export function hideRewind() {
  shown = null;
  const el = banner();
  if (el) { el.hidden = true; el.textContent = ""; }
}

/** A status message of the page's job (or hello's status): the banner follows it. */
export async function onJobStatus(msg) {
  const job = session.job;
  if (!job || !msg) return;
  if (!(msg.status === "paused" && msg.stop_reason === "diverged")) {
    if (msg.status) hideRewind();
    return;
  }
  let diverged = msg.diverged || null;
  let spec = null;
  try {
    const row = await api.getJob(job.id, job.token);
    spec = row.spec;
    diverged = diverged || row.diverged;
  } catch (err) {
    console.error(err);
  }
  if (job !== session.job || !diverged) return;
  showBanner(job, spec, diverged);
}

function showBanner(job, spec, d) {
  shown = { jobId: job.id, spec, diverged: d };
  const el = banner();
  el.textContent = "";
  const title = document.createElement("h3");
  title.id = "rewind-title";
  title.textContent = t("rewind.title");
  const text = document.createElement("p");
  text.className = "rewind-text";
  text.textContent = diagnosisText(d);
  const buttons = document.createElement("div");
  buttons.className = "rewind-buttons";
  const training = spec?.training || {};
  const lr = tidy((training.optimizer?.learning_rate ?? store.get("learning_rate")) / 10);
  const clip = training.gradient_clip ? tidy(training.gradient_clip / 10) : CLIP_NORM;
  const byRate = button("rewind-lr", t("rewind.retry_lr", { lr }), () => retry(job, { optimizer: { learning_rate: lr } }, { learning_rate: lr }));
  const byClip = button("rewind-clip", t("rewind.retry_clip", { norm: clip }), () => retry(job, { gradient_clip: clip }));
  byRate.title = t("rewind.retry_lr_title");
  byClip.title = t("rewind.retry_clip_title");
  buttons.append(byRate, byClip);
  const status = document.createElement("p");
  status.className = "rewind-status";
  status.setAttribute("role", "status");
  el.append(title, text, buttons, status);
  el.setAttribute("aria-labelledby", "rewind-title");
  el.hidden = false;
  announce(t("rewind.announce", { text: diagnosisText(d) }));
}

function button(id, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.id = id;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

/** PATCH the job with `training`, then resume it; `storeChanges` keep the page's controls true. */
async function retry(job, training, storeChanges) {
  if (job !== session.job) return;
  const el = banner();
  el.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  const epoch = shown?.diverged?.rewound_to?.epoch ?? job.epoch ?? 0;
  el.querySelector(".rewind-status").textContent = t("rewind.retrying", { epoch });
  try {
    await api.patch(job.id, { training }, job.token);
    if (storeChanges) store.set(storeChanges); // the control shows it (its own PATCH repeats it)
    announce(t("rewind.retrying", { epoch }));
    if (job === session.job && job.status === "paused") togglePlay();
  } catch (err) {
    el.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    el.querySelector(".rewind-status").textContent = "";
    showApiError(err, "play");
  }
}

/** Say `text` in the live region, so that the status watcher does not talk over it. */
function announce(text) {
  const a = window.__access?.announcer;
  if (!a) return;
  a.job = session.job;
  a.status = session.job?.status || a.status;
  a.say(text);
}

/** A frame's health hints under the network: a dead ReLU layer, vanishing gradients. */
export function onHealth(health) {
  const el = $("health-hints");
  if (!el) return;
  const items = [];
  for (const dead of health?.dead_relu || []) {
    items.push(t("health.dead_relu", { layer: layerName(dead.layer), units: dead.units }));
  }
  if (items.length) items.push(t("health.dead_relu_why"));
  const v = health?.vanishing;
  if (v) {
    items.push(t("health.vanishing", {
      first: layerName(v.first_layer), last: layerName(v.last_layer), ratio: v.ratio === 0 ? "0" : v.ratio.toExponential(1),
    }));
  }
  const key = items.join("\n");
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.textContent = "";
  el.hidden = !items.length;
  if (!items.length) return;
  const title = document.createElement("h3");
  title.textContent = t("health.title");
  const list = document.createElement("ul");
  for (const text of items) {
    const li = document.createElement("li");
    li.textContent = text;
    list.append(li);
  }
  el.append(title, list);
}

/** Forget the hints (a new job or a reset). */
export function clearHealth() { onHealth(null); }
