/**
 * The timeline scrubber (issue 16): a slider over the epochs whose picture a job keeps, the
 * epoch it shows, a "Live" button and, on the page's bar, "Replay beside". The slider's value
 * is an index into the kept epochs, so each arrow key moves to the next picture; Home and End
 * go to the first and the last, Escape back to live. It only draws and reports: the
 * controller (controllers/timeline.js) fetches the pictures.
 */

import { t } from "../i18n/index.js";

export class TimelineBar {
  /**
   * @param {HTMLElement} root
   * @param {{id: string, label: string, onScrub: (epoch: number) => void, onLive: () => void,
   *          onReplay?: () => void}} options
   */
  constructor(root, { id, label, onScrub, onLive, onReplay }) {
    this.root = root;
    this.epochs = [];
    this.scrubbing = false;
    root.classList.add("timeline");
    const name = document.createElement("label");
    name.htmlFor = `${id}-range`;
    name.className = "timeline-label";
    name.textContent = label;
    this.range = document.createElement("input");
    this.range.type = "range";
    this.range.id = `${id}-range`;
    this.range.min = "0";
    this.range.max = "0";
    this.range.step = "1";
    this.range.disabled = true;
    this.range.title = t("timeline.keys");
    this.readout = document.createElement("output");
    this.readout.className = "timeline-epoch";
    this.readout.htmlFor = this.range.id;
    this.readout.setAttribute("aria-live", "polite");
    this.live = document.createElement("button");
    this.live.type = "button";
    this.live.className = "timeline-live";
    this.live.textContent = t("timeline.live");
    this.live.disabled = true;
    root.append(name, this.range, this.readout, this.live);
    if (onReplay) {
      this.replay = document.createElement("button");
      this.replay.type = "button";
      this.replay.className = "timeline-replay";
      this.replay.textContent = t("timeline.replay");
      this.replay.title = t("timeline.replay_tip");
      this.replay.disabled = true;
      this.replay.addEventListener("click", onReplay);
      root.append(this.replay);
    }
    this.note = document.createElement("span");
    this.note.className = "timeline-note muted";
    root.append(this.note);
    this.range.addEventListener("input", () => {
      const epoch = this.epochs[Number(this.range.value)];
      if (epoch === undefined) return;
      this.show(epoch, true);
      onScrub(epoch);
    });
    this.range.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && this.scrubbing) { ev.preventDefault(); onLive(); }
    });
    this.live.addEventListener("click", onLive);
    this.setEpochs([]);
  }

  /** The epochs kept now (ascending). The slider keeps its epoch while scrubbing. */
  setEpochs(epochs) {
    const at = this.scrubbing ? this.epochs[Number(this.range.value)] : null;
    this.epochs = epochs.slice();
    this.range.max = String(Math.max(0, epochs.length - 1));
    this.range.disabled = epochs.length === 0;
    if (this.replay) this.replay.disabled = epochs.length === 0;
    if (at !== null && at !== undefined) {
      const k = this.epochs.indexOf(at);
      if (k >= 0) this.range.value = String(k);
    } else {
      this.range.value = this.range.max;
      this.showLive();
    }
  }

  /** The slider at `epoch`; `scrubbing` true shows that epoch, false the live view. */
  show(epoch, scrubbing) {
    this.scrubbing = scrubbing;
    this.live.disabled = !scrubbing;
    this.root.dataset.scrubbing = scrubbing ? "true" : "false";
    this.readout.textContent = t("timeline.epoch", { epoch });
    this.range.setAttribute("aria-valuetext", this.readout.textContent);
    this.root.dataset.epoch = String(epoch);
  }

  showLive() {
    this.scrubbing = false;
    this.live.disabled = true;
    this.root.dataset.scrubbing = "false";
    delete this.root.dataset.epoch;
    this.range.value = this.range.max;
    this.readout.textContent = this.epochs.length ? t("timeline.live_now") : t("timeline.none");
    this.range.setAttribute("aria-valuetext", this.readout.textContent);
  }

  setNote(text) { this.note.textContent = text || ""; }
}
