/**
 * Errors shown next to the control that caused them, and the connection banner.
 *
 * Each error slot is an element with `data-error-for="<key>"` (a store key such as
 * "learning_rate", or an area: "play", "model", "runs", ...). A server error (ApiError) is placed
 * by its 422 locations: on a layer card, a data set parameter, or the control of the spec field;
 * what has no place goes to the fallback slot. While the server is away the banner says so and
 * the page asks /api/health every 2 s until it answers.
 */

import { api, ApiError } from "../api.js";
import { t } from "../i18n/index.js";
import { $, session, views } from "../session.js";
import { Store } from "../store.js";
import { refreshPreview, scheduleCheck } from "./data.js";

function errorSlot(key) {
  return document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
}

/** Show `message` beside the control `key` (the play button's slot when it has none); "" clears. */
export function showError(key, message) {
  const slot = errorSlot(key) || errorSlot("play");
  if (slot) { slot.textContent = message; slot.classList.toggle("shown", Boolean(message)); }
}

export function clearErrors(keys) {
  for (const key of keys) showError(key, "");
}

export function clearAllErrors() {
  document.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.classList.remove("shown"); });
  views.layers?.showErrors([]);
}

/** Place a server error: 422 locations on their control or layer, the rest on `fallback`. */
export function showApiError(err, fallback = "play") {
  if (!(err instanceof ApiError)) { showError(fallback, String(err.message || err)); console.error(err); return; }
  if (err.status === 0) setConnection("lost", err.message);
  const layerErrors = [];
  const rest = [];
  for (const d of err.locations) {
    const rel = d.loc[0] === "body" ? d.loc.slice(1) : d.loc;
    if (rel[0] === "model" && rel[1] === "layers" && Number.isInteger(rel[2])) {
      layerErrors.push([rel[2], d.msg]);
    } else if (rel[0] === "dataset" && rel[1] === "params" && rel[2]) {
      showError(`params.${rel[2]}`, d.msg);
    } else if (rel[0] === "query" && typeof rel[1] === "string") {
      // A preview's query holds the set's params and its seed: the same slots as the spec's,
      // so the model check and the preview show one message, not two.
      showError(rel[1] === "seed" ? "data_seed" : `params.${rel[1]}`, d.msg);
    } else {
      const prop = Store.propForLoc(d.loc);
      if (prop && errorSlot(prop.key)) showError(prop.key, d.msg);
      else rest.push(d.msg);
    }
  }
  const unplaced = views.layers.showErrors(layerErrors);
  rest.push(...unplaced);
  if (!err.locations.length) rest.push(err.message);
  if (rest.length) showError(fallback, rest.join("; "));
}

/** A reason as a sentence: its own end mark kept ("...running?"), else a full stop added. */
const sentence = (text) => (/[.?!\u2026\u3002\uff1f\uff01]$/.test(text) ? text : `${text}.`);

/** The connection banner: "open" hides it, "lost" says so and watches for the server's return. */
export function setConnection(state, reason) {
  const el = $("connection");
  if (state === "open") { el.hidden = true; el.textContent = ""; clearTimeout(session.healthTimer); session.healthTimer = null; return; }
  el.hidden = false;
  el.className = `connection ${state}`;
  el.textContent = state === "lost" ? t("connection.reconnecting", { reason: sentence(reason || t("connection.lost")) }) : reason || "";
  if (state === "lost" && !session.healthTimer) watchHealth();
}

/** While the server is away, ask it every 2 s; when it answers, clear the banner and check again. */
function watchHealth() {
  session.healthTimer = setTimeout(async () => {
    try {
      await api.health();
    } catch {
      watchHealth();
      return;
    }
    session.healthTimer = null;
    if (!session.ready) return; // start() is retrying the catalogue itself
    if (!session.job?.stream || session.job.stream.socket?.readyState === WebSocket.OPEN) setConnection("open");
    scheduleCheck();
    if (!session.job) refreshPreview();
  }, 2000);
}
