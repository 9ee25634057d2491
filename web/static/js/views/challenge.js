/**
 * How a challenge reads on both pages: its goal as a sentence, metric names, values, a
 * student's setup, and the teacher's results table (one row per student, best first, with
 * an Open button for the best run). Also the challenge stylesheet, added once to the page
 * that shows one. Nothing here talks to the server.
 */

import { t } from "../i18n/index.js";

/** The page's controls, in the order the teacher's form lists them (server/challenges/rules.py). */
export const CONTROLS = [
  "dataset", "params", "features", "train_fraction", "validation_fraction", "data_seed",
  "layers", "activation", "init", "init_std", "loss", "learning_rate", "optimizer", "momentum",
  "schedule", "batch_size", "regularization", "regularization_rate", "epochs", "early_stopping", "seed",
];

const LOWER_IS_BETTER = ["loss", "mae"];

/** Add the challenge stylesheet to this page (once). */
export function addChallengeStyles() {
  if (document.getElementById("challenge-css")) return;
  const link = document.createElement("link");
  link.id = "challenge-css";
  link.rel = "stylesheet";
  link.href = "/static/css/challenges.css";
  document.head.append(link);
}

/** "test accuracy" for "test_accuracy" (in the page's language). */
export function metricLabel(metric) {
  const [split, ...rest] = String(metric).split("_");
  const name = rest.join("_");
  return t("challenge.metric", { split: t(`challenge.split.${split}`), name: t(`challenge.metric.${name}`) });
}

/** Whether smaller values of `metric` are better (loss, mean absolute error). */
export function lowerIsBetter(metric) {
  return LOWER_IS_BETTER.includes(String(metric).split("_").slice(1).join("_"));
}

/** A metric value as shown: four significant digits. */
export function formatValue(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "\u2013";
  return Number(value.toPrecision(4)).toString();
}

/** "Goal: test accuracy >= 0.95, at most 50 parameters, within 100 epochs". */
export function goalText(goal) {
  const parts = [t("challenge.goal", { metric: metricLabel(goal.metric), op: goal.op === "<=" ? "\u2264" : "\u2265", value: goal.value })];
  if (goal.max_params) parts.push(t("challenge.goal_params", { n: goal.max_params }));
  if (goal.max_epochs) parts.push(t("challenge.goal_epochs", { n: goal.max_epochs }));
  return parts.join(t("challenge.goal_separator"));
}

/** A control's or a spec path's name as the page calls it. */
export function controlLabel(name) {
  return CONTROLS.includes(name) ? t(`challenge.control.${name}`) : name;
}

/** What a student changed ({path: value}) as one short line. */
export function setupText(setup) {
  const entries = Object.entries(setup || {});
  if (!entries.length) return t("challenge.panel.unchanged");
  return entries.map(([path, value]) => `${path} = ${JSON.stringify(value)}`).join("; ");
}

/** The teacher's results table: `render(rows, goal)`; `onOpen(row)` opens a student's best run. */
export class ChallengeResultsView {
  constructor(root, { onOpen }) {
    this.root = root;
    this.onOpen = onOpen;
  }

  render(rows) {
    if (!rows.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = t("challenge.panel.no_results");
      this.root.replaceChildren(p);
      return;
    }
    const table = document.createElement("table");
    table.className = "challenge-results";
    const head = table.createTHead().insertRow();
    for (const col of ["rank", "student", "met", "value", "runs", "setup"]) {
      const th = document.createElement("th");
      th.textContent = t(`challenge.panel.col.${col}`);
      th.scope = "col";
      head.append(th);
    }
    head.append(document.createElement("th"));
    const body = table.createTBody();
    rows.forEach((row, i) => {
      const tr = body.insertRow();
      tr.dataset.student = row.student_id;
      tr.classList.toggle("met", row.met);
      const cells = [
        String(i + 1),
        row.student || t("challenge.panel.teacher_row"),
        row.met ? t("challenge.panel.met_at", { epoch: row.met_epoch }) : t("challenge.panel.not_met"),
        formatValue(row.value),
        String(row.runs),
        setupText(row.setup),
      ];
      for (const text of cells) tr.insertCell().textContent = text;
      tr.cells[2].className = "goal";
      tr.cells[5].className = "setup";
      const last = tr.insertCell();
      if (row.best_job) {
        const open = document.createElement("button");
        open.type = "button";
        open.className = "open-run";
        open.textContent = t("challenge.panel.open_run");
        open.addEventListener("click", () => this.onOpen(row));
        last.append(open);
      } else {
        last.textContent = t("challenge.panel.run_gone");
        last.className = "muted";
      }
    });
    this.root.replaceChildren(table);
  }
}
