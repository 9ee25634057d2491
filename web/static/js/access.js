/**
 * Access on the playground page: the colour palette setting, the "more settings" panel of the
 * compact top bar, the network's neurons as buttons (access_network.js), and a live region
 * that tells screen readers what the job does ("epoch 120, test loss 0.031" at most every
 * PROGRESS_EVERY_MS while it trains; "paused", "completed", "failed: ..." when its status
 * changes).
 *
 * Loaded by index.html beside main.js; it shares main.js's store, session and views (same
 * modules) and only watches them: the store's `palette` field, the job's status and epoch.
 */

import { t } from "./i18n/index.js";
import { $, session, store, views } from "./session.js";
import { bindNetworkAccess } from "./access_network.js";
import { repaintCharts } from "./views/charts.js";
import { paletteName, setPalette } from "./views/heatmap.js";

export const PROGRESS_EVERY_MS = 3000;
const WATCH_EVERY_MS = 400;

// ---- the palette ----------------------------------------------------------------------------

/** Redraw what shows the palette's colours: the boundary, the network, thumbnails, curves. */
export function repaint() {
  views.output?.compose();
  if (views.network?.lastFrame && views.network.columns?.length) views.network.draw(views.network.lastFrame);
  if (views.datasets) for (const [name, preview] of session.previews) views.datasets.drawPreview(name, preview);
  repaintCharts();
}

function applyPalette({ remember = false } = {}) {
  const name = store.get("palette");
  const changed = setPalette(name, { remember });
  const box = $("palette-cb");
  if (box) box.checked = paletteName() === "cb";
  if (changed) repaint();
}

function bindPalette() {
  const box = $("palette-cb");
  box?.addEventListener("change", () => {
    store.set({ palette: box.checked ? "cb" : "default" });
    applyPalette({ remember: true });
  });
  store.subscribe((changed) => { if (changed.includes("palette")) applyPalette(); });
  applyPalette();
}

// ---- the "more settings" panel ----------------------------------------------------------------

function bindMoreSettings() {
  const toggle = $("more-settings-toggle");
  const panel = $("more-settings-panel");
  if (!toggle || !panel) return;
  const show = (open, { focusToggle = false } = {}) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (!open && focusToggle) toggle.focus();
  };
  toggle.addEventListener("click", () => show(panel.hidden));
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); show(false, { focusToggle: true }); }
  });
  toggle.addEventListener("keydown", (e) => { if (e.key === "Escape") show(false); });
  document.addEventListener("pointerdown", (e) => {
    if (!panel.hidden && !panel.contains(e.target) && !toggle.contains(e.target)) show(false);
  });
  // A setting in the panel that the server refused: open the panel, so its message is seen.
  new MutationObserver(() => {
    if ([...panel.querySelectorAll(".error")].some((el) => el.textContent.trim())) show(true);
  }).observe(panel, { subtree: true, childList: true, characterData: true });
}

// ---- the live region --------------------------------------------------------------------------

/** The sentence for a job's state, or "" when there is nothing to say. */
export function statusSentence(status, epoch, loss, error) {
  const where = loss === null || loss === undefined ? t("access.at_epoch", { epoch })
    : t("access.at_epoch_loss", { epoch, loss: loss.toFixed(3) });
  switch (status) {
    case "running": return t("access.status_running");
    case "paused": return t("access.status_paused", { where });
    case "completed": return t("access.status_completed", { where });
    case "stopped": return t("access.status_stopped", { where });
    case "failed": return error ? t("access.status_failed", { message: error }) : t("access.status_failed_plain");
    default: return "";
  }
}

/** Watches the page's job and speaks through a polite live region. */
class Announcer {
  constructor() {
    this.el = document.createElement("div");
    this.el.id = "announcer";
    this.el.className = "visually-hidden";
    this.el.setAttribute("role", "status");
    this.el.setAttribute("aria-live", "polite");
    this.el.setAttribute("aria-atomic", "true");
    document.body.append(this.el);
    this.job = null;
    this.status = "";
    this.spokenAt = 0;
    this.spokenEpoch = null;
    setInterval(() => this.watch(), WATCH_EVERY_MS);
  }

  say(text) {
    if (!text) return;
    this.el.textContent = text;
    this.spokenAt = performance.now();
  }

  watch() {
    const job = session.job;
    if (job !== this.job) { this.job = job; this.status = job ? "" : this.status; }
    if (!job) return;
    const epoch = job.epoch ?? 0;
    const loss = session.runs.find((r) => r.id === job.id)?.test_loss;
    const status = job.status || "";
    if (status !== this.status) {
      this.status = status;
      const error = document.querySelector('[data-error-for="play"]')?.textContent.trim();
      this.say(statusSentence(status, epoch, loss, error));
      this.spokenEpoch = epoch;
      return;
    }
    if (status === "running" && epoch !== this.spokenEpoch && performance.now() - this.spokenAt >= PROGRESS_EVERY_MS) {
      this.spokenEpoch = epoch;
      this.say(loss === null || loss === undefined ? t("access.progress_epoch", { epoch })
        : t("access.progress", { epoch, loss: loss.toFixed(3) }));
    }
  }
}

function start() {
  bindPalette();
  bindMoreSettings();
  bindNetworkAccess($("network"));
  // For the browser tests: the live region's watcher and the views it repaints.
  window.__access = { announcer: new Announcer(), views };
}

start();
