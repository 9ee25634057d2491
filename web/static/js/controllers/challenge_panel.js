/**
 * The teacher's Challenges panel (/teacher): make a challenge from a setup (a share link, a
 * job spec, or one of the class's jobs), choose for each control whether students may change
 * it, see it locked or not see it, set the goal, title and instructions; list the challenges
 * with their codes and links, close, reopen or delete them; and the results of one: each
 * student's best run (Open shows it in the teacher's watch view) and the CSV download.
 *
 * Data: GET /api/challenges and GET /api/challenges/{id}/results, polled every POLL_MS while
 * the panel is open; GET /api/class/jobs for "from a job". teacher.js calls `startChallengePanel`
 * once signed in, with its `watch(job)`.
 */

import { api } from "../api.js";
import { t } from "../i18n/index.js";
import { Store } from "../store.js";
import {
  addChallengeStyles, ChallengeResultsView, CONTROLS, controlLabel, goalText, lowerIsBetter, metricLabel,
} from "../views/challenge.js";

const POLL_MS = 3000;
const METRICS = ["test_accuracy", "test_loss", "test_f1", "test_precision", "test_recall", "test_auc",
  "test_r2", "test_mae", "validation_accuracy", "validation_loss", "train_accuracy", "train_loss"];
/** What a new challenge lets students change until the teacher says otherwise. */
const DEFAULT_EDITABLE = ["layers", "activation", "learning_rate", "regularization", "regularization_rate", "batch_size"];

const $ = (id) => document.getElementById(id);
let panel = null;

/** Build the panel (once) and start polling; `watch(job)` opens a job in the watch view. */
export function startChallengePanel({ watch }) {
  if (panel) { panel.poll(); return; }
  addChallengeStyles();
  panel = new Panel($("challenges-root"), watch);
  panel.poll();
}

class Panel {
  constructor(root, watch) {
    this.root = root;
    this.watch = watch;
    this.selected = null; // the challenge whose results are shown
    this.timer = null;
    this.jobs = [];
    root.innerHTML = `
      <p class="empty" id="challenges-empty" hidden></p>
      <ul class="challenge-list" id="challenge-list"></ul>
      <section class="challenge-results-box" id="challenge-results-box" hidden>
        <div class="challenge-results-head"><h3 id="challenge-results-title"></h3>
          <a id="challenge-csv" download></a></div>
        <div id="challenge-results"></div>
      </section>
      <details id="challenge-new"><summary></summary>
        <form class="challenge-form" id="challenge-form">
          <div class="row">
            <div class="grow"><label for="challenge-source"></label><textarea id="challenge-source" spellcheck="false"></textarea></div>
            <div><label for="challenge-job"></label><select id="challenge-job"></select></div>
          </div>
          <div class="row">
            <div class="grow"><label for="challenge-title"></label><input id="challenge-title" type="text" maxlength="120"></div>
          </div>
          <div><label for="challenge-instructions"></label><textarea id="challenge-instructions" maxlength="4000"></textarea></div>
          <fieldset><legend id="challenge-controls-legend"></legend><div class="challenge-controls" id="challenge-controls"></div></fieldset>
          <fieldset><legend id="challenge-goal-legend"></legend><div class="row">
            <div><label for="challenge-metric"></label><select id="challenge-metric"></select></div>
            <div><label for="challenge-op">&nbsp;</label><select id="challenge-op"><option value=">=">\u2265</option><option value="<=">\u2264</option></select></div>
            <div><label for="challenge-value"></label><input id="challenge-value" type="number" step="any" value="0.95"></div>
            <div><label for="challenge-max-params"></label><input id="challenge-max-params" type="number" min="1" step="1"></div>
            <div><label for="challenge-max-epochs"></label><input id="challenge-max-epochs" type="number" min="1" step="1"></div>
          </div></fieldset>
          <div class="row"><button type="submit" id="challenge-create"></button>
            <span class="error" id="challenge-error" role="alert"></span></div>
        </form>
      </details>
      <p class="challenge-status" id="challenge-status" role="status"></p>`;
    this.results = new ChallengeResultsView($("challenge-results"), { onOpen: (row) => this.openRun(row) });
    this.fillForm();
    $("challenge-new").addEventListener("toggle", () => { if ($("challenge-new").open) this.loadJobs(); });
    $("challenge-form").addEventListener("submit", (e) => { e.preventDefault(); this.create(); });
    $("challenge-metric").addEventListener("change", () => {
      $("challenge-op").value = lowerIsBetter($("challenge-metric").value) ? "<=" : ">=";
    });
  }

  fillForm() {
    const text = (id, key) => { $(id).textContent = t(key); };
    $("challenge-new").querySelector("summary").textContent = t("challenge.panel.new");
    text("challenges-empty", "challenge.panel.none");
    $("challenge-form").querySelector("label[for=challenge-source]").textContent = t("challenge.panel.source");
    $("challenge-source").placeholder = t("challenge.panel.source_placeholder");
    $("challenge-form").querySelector("label[for=challenge-job]").textContent = t("challenge.panel.from_job");
    $("challenge-form").querySelector("label[for=challenge-title]").textContent = t("challenge.panel.title_label");
    $("challenge-form").querySelector("label[for=challenge-instructions]").textContent = t("challenge.panel.instructions");
    text("challenge-controls-legend", "challenge.panel.controls");
    text("challenge-goal-legend", "challenge.panel.goal");
    for (const [id, key] of [["challenge-metric", "metric"], ["challenge-value", "value"], ["challenge-max-params", "max_params"], ["challenge-max-epochs", "max_epochs"]]) {
      $("challenge-form").querySelector(`label[for=${id}]`).textContent = t(`challenge.panel.${key}`);
    }
    $("challenge-max-params").placeholder = t("challenge.panel.no_limit");
    $("challenge-max-epochs").placeholder = t("challenge.panel.no_limit");
    text("challenge-create", "challenge.panel.create");
    text("challenge-csv", "challenge.panel.csv");
    for (const m of METRICS) {
      const option = new Option(metricLabel(m), m);
      option.title = m; // the name the API and the CSV use
      $("challenge-metric").add(option);
    }
    $("challenge-controls").replaceChildren(...CONTROLS.map((name) => {
      const label = document.createElement("label");
      const select = document.createElement("select");
      select.dataset.control = name;
      select.setAttribute("aria-label", controlLabel(name));
      for (const mode of ["editable", "locked", "hidden"]) select.add(new Option(t(`challenge.panel.mode.${mode}`), mode));
      select.value = DEFAULT_EDITABLE.includes(name) ? "editable" : "locked";
      select.dataset.mode = select.value;
      select.addEventListener("change", () => { select.dataset.mode = select.value; });
      label.append(controlLabel(name), select);
      return label;
    }));
    this.fillJobs();
  }

  fillJobs() {
    const select = $("challenge-job");
    select.replaceChildren(new Option(t("challenge.panel.pick_job"), ""));
    for (const job of this.jobs) {
      select.add(new Option(`${job.student || t("challenge.panel.teacher_row")} \u00b7 ${job.name || job.spec?.dataset?.name}`, job.id));
    }
  }

  async loadJobs() {
    try { this.jobs = (await api.classJobs()).jobs; } catch { this.jobs = []; }
    this.fillJobs();
  }

  /** The job spec the form describes: the picked job's, a pasted spec, or a share link's. */
  setup() {
    const jobId = $("challenge-job").value;
    if (jobId) return this.jobs.find((j) => j.id === jobId)?.spec;
    const text = $("challenge-source").value.trim();
    if (!text) throw new Error(t("challenge.panel.bad_source"));
    if (text.startsWith("{")) {
      let spec;
      try { spec = JSON.parse(text); } catch (err) { throw new Error(t("challenge.panel.bad_json", { message: err.message })); }
      Store.fromSpec(spec); // throws when it is not a spec
      return spec;
    }
    const hash = text.includes("#") ? text.slice(text.indexOf("#")) : text;
    const store = new Store();
    store.state = Store.stateFromHash(hash).state;
    return store.toSpec({ start: true });
  }

  async create() {
    $("challenge-error").textContent = "";
    let spec;
    try { spec = this.setup(); } catch (err) { $("challenge-error").textContent = err.message; return; }
    const modes = [...$("challenge-controls").querySelectorAll("select")];
    const number = (id) => ($(id).value === "" ? null : Number($(id).value));
    const body = {
      title: $("challenge-title").value, instructions: $("challenge-instructions").value, spec,
      editable: modes.filter((s) => s.value === "editable").map((s) => s.dataset.control),
      hidden: modes.filter((s) => s.value === "hidden").map((s) => s.dataset.control),
      goal: { metric: $("challenge-metric").value, op: $("challenge-op").value, value: number("challenge-value"),
        max_params: number("challenge-max-params"), max_epochs: number("challenge-max-epochs") },
    };
    try {
      const made = await api.createChallenge(body);
      $("challenge-status").textContent = t("challenge.panel.created", { title: made.title, code: made.code });
      $("challenge-new").open = false;
      this.selected = made.id;
      this.poll();
    } catch (err) {
      $("challenge-error").textContent = err.message;
    }
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      const { challenges } = await api.challenges();
      this.renderList(challenges);
      const shown = challenges.find((c) => c.id === this.selected);
      if (shown) {
        const { rows } = await api.challengeResults(shown.id);
        this.renderResults(shown, rows);
      } else {
        $("challenge-results-box").hidden = true;
      }
    } catch (err) {
      if (err.status === 401 || err.status === 403) return; // signed out: teacher.js shows the login
      $("challenge-status").textContent = err.message;
    }
    this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  renderList(challenges) {
    $("challenges-empty").hidden = challenges.length > 0;
    const shown = JSON.stringify([this.selected, challenges.map((c) => [c.id, c.state, c.title])]);
    if (shown === this.shownList) return; // unchanged: keep the list as it is
    this.shownList = shown;
    $("challenge-list").replaceChildren(...challenges.map((c) => {
      const li = document.createElement("li");
      li.dataset.challenge = c.id;
      li.classList.toggle("selected", c.id === this.selected);
      const span = (cls, text) => { const s = document.createElement("span"); s.className = cls; s.textContent = text; return s; };
      const state = span("state", t(`challenge.panel.state.${c.state}`));
      state.dataset.state = c.state;
      const link = document.createElement("a");
      link.href = c.link;
      link.textContent = `${location.origin}${c.link}`;
      link.className = "link";
      const buttons = document.createElement("span");
      buttons.className = "buttons";
      const button = (key, cls, fn) => {
        const b = document.createElement("button");
        b.type = "button";
        b.className = cls;
        b.textContent = t(key);
        b.addEventListener("click", fn);
        buttons.append(b);
      };
      button("challenge.panel.results", "results", () => { this.selected = c.id; this.poll(); });
      if (c.state === "open") button("challenge.panel.close", "close", () => this.act(api.closeChallenge(c.id)));
      else button("challenge.panel.reopen", "reopen", () => this.act(api.reopenChallenge(c.id)));
      button("challenge.panel.delete", "delete", () => {
        if (confirm(t("challenge.panel.delete_confirm", { title: c.title }))) this.act(api.deleteChallenge(c.id));
      });
      li.append(span("title", c.title), span("code", c.code), state, span("goal", goalText(c.goal)), link, buttons);
      return li;
    }));
  }

  renderResults(challenge, rows) {
    $("challenge-results-box").hidden = false;
    $("challenge-results-title").textContent = t("challenge.panel.results_title", { title: challenge.title });
    $("challenge-csv").href = api.challengeCsvUrl(challenge.id);
    const shown = JSON.stringify([challenge.id, rows]);
    if (shown === this.shownRows) return; // unchanged: keep the table (and a button under the mouse)
    this.shownRows = shown;
    this.results.render(rows);
  }

  async act(promise) {
    try { await promise; } catch (err) { $("challenge-status").textContent = err.message; }
    this.poll();
  }

  /** A student's best run in the watch view (the teacher's session sees every job). */
  async openRun(row) {
    try {
      const job = await api.getJob(row.best_job);
      this.watch({ ...job, student: row.student });
    } catch (err) {
      $("challenge-status").textContent = err.message;
    }
  }
}
