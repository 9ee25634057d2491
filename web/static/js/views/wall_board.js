/**
 * The class wall's leaderboard: the open challenge's results, best first (the rows of
 * `GET /api/challenges/{id}/results`). Names follow the wall's switch: hidden, a student is
 * shown by their tile's number. Never fetches (wall.js does).
 */

import { t } from "../i18n/index.js";

const MAX_ROWS = 12;

function formatValue(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "\u2013";
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(3);
}

/** "test_accuracy >= 0.95, within 50 epochs, at most 100 parameters" of a challenge's goal. */
export function goalText(goal) {
  if (!goal?.metric) return "";
  const op = { "<=": "\u2264", ">=": "\u2265" }[goal.op] || goal.op;
  return [t("wall.board.goal", { metric: goal.metric, op, value: goal.value }),
    goal.max_epochs ? t("wall.board.max_epochs", { n: goal.max_epochs }) : null,
    goal.max_params ? t("wall.board.max_params", { n: goal.max_params }) : null,
  ].filter(Boolean).join(", ");
}

export class Board {
  /** `root`: the panel (hidden when there is nothing to show); its children by id. */
  constructor(root) {
    this.root = root;
    this.q = (id) => root.querySelector(`#${id}`);
  }

  hide() { this.root.hidden = true; }

  /**
   * Show `results` ({challenge, rows}); `numberOf(studentId)` is the student's tile number
   * (or null), `showNames` the wall's switch.
   */
  show(results, { numberOf, showNames }) {
    const { challenge = {}, rows = [] } = results || {};
    this.root.hidden = false;
    this.q("board-challenge").textContent = challenge.title || "";
    const goal = goalText(challenge.goal);
    this.q("board-goal").textContent = goal;
    this.q("board-goal").hidden = !goal;
    this.q("board-empty").hidden = rows.length > 0;
    this.q("board-rows").replaceChildren(...rows.slice(0, MAX_ROWS).map((row, i) => {
      const li = document.createElement("li");
      li.dataset.studentId = row.student_id ?? "";
      li.classList.toggle("met", Boolean(row.met));
      const rank = document.createElement("span");
      rank.className = "rank";
      rank.textContent = String(i + 1);
      const who = document.createElement("span");
      who.className = "who";
      const number = numberOf(row.student_id);
      who.textContent = showNames ? (row.student || t("wall.board.someone"))
        : number ? t("wall.tile.anonymous", { n: number }) : t("wall.board.someone");
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = formatValue(row.value);
      const met = document.createElement("span");
      met.className = "state";
      met.textContent = row.met
        ? (row.met_epoch != null ? t("wall.board.met_at", { epoch: row.met_epoch }) : t("wall.board.met"))
        : t("wall.board.runs", { n: row.runs ?? 0 });
      li.append(rank, who, value, met);
      return li;
    }));
  }
}
