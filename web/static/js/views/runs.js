/**
 * The page's earlier runs and their comparison.
 *
 * RunsView lists the runs (one row each: a short summary, status, epoch, test scores) with a
 * tick box per run, and calls `onCompare(ids)` when two or more are ticked and "Compare" is
 * pressed, `onOpen(id)` for a run's "Open" button and `onDelete(id)` for its delete button
 * (main.js asks for confirmation). CompareView draws what `GET /api/compare` answered (one
 * chart per metric, one line per run, gaps where a run has no epoch; a table of the runs'
 * settings, by default only the rows that differ, with a toggle to show them all) and, per
 * run, the picture of its latest snapshot (decision boundary or confusion matrix). Neither
 * fetches: main.js hands them the data.
 */

import { classLabel, nameOf, t } from "../i18n/index.js";
import { LineChart } from "./charts.js";
import { ConfusionView } from "./confusion.js";
import { OutputView } from "./output.js";

/** One colour per run, in the order the runs are compared. */
export const RUN_COLOURS = ["#0877bd", "#f59322", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#555555"];

const fmt = (v) => (typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3)) : "-");

export class RunsView {
  /** @param {HTMLElement} root @param {{onCompare, onOpen, onDelete}} handlers (ids) */
  constructor(root, { onCompare, onOpen = () => {}, onDelete = () => {} }) {
    this.root = root;
    this.onCompare = onCompare;
    this.onOpen = onOpen;
    this.onDelete = onDelete;
    this.ticked = new Set();
  }

  /** @param {{id, label, status, epoch, test_loss, test_accuracy, current}[]} runs newest last */
  render(runs) {
    const ids = new Set(runs.map((r) => r.id));
    for (const id of [...this.ticked]) if (!ids.has(id)) this.ticked.delete(id);
    // The same runs as last time (a metrics update): change the texts only, so that a tick box
    // being clicked is not replaced under the pointer.
    const key = runs.map((r) => `${r.id}${r.current ? "*" : ""}`).join(",");
    if (key && key === this.key && this.rows) {
      runs.forEach((run, i) => this.fill(this.rows[i], run, i));
      return;
    }
    this.key = key;
    this.rows = null;
    this.root.textContent = "";
    if (!runs.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = t("runs.empty");
      this.root.append(p);
      return;
    }
    const table = document.createElement("table");
    table.className = "runs-table";
    const head = table.createTHead().insertRow();
    for (const key of ["", "runs.col.run", "runs.col.status", "runs.col.epoch", "runs.col.test_loss", "runs.col.test_accuracy", ""]) {
      const th = document.createElement("th");
      th.textContent = key ? t(key) : "";
      head.append(th);
    }
    const body = table.createTBody();
    this.rows = runs.map((run, i) => {
      const row = body.insertRow();
      row.dataset.id = run.id;
      if (run.current) row.classList.add("current");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = this.ticked.has(run.id);
      box.setAttribute("aria-label", t("runs.compare_box", { n: i + 1 }));
      box.addEventListener("change", () => {
        if (box.checked) this.ticked.add(run.id); else this.ticked.delete(run.id);
        this.updateButton();
      });
      row.insertCell().append(box);
      for (let c = 0; c < 5; c++) row.insertCell();
      const actions = row.insertCell();
      actions.className = "run-actions";
      if (!run.current) {
        const open = document.createElement("button");
        open.type = "button";
        open.className = "open-run";
        open.textContent = t("runs.open");
        open.title = t("runs.open_title");
        open.addEventListener("click", () => this.onOpen(run.id));
        actions.append(open);
      }
      const del = document.createElement("button");
      del.type = "button";
      del.className = "delete-run";
      del.textContent = t("runs.delete");
      del.setAttribute("aria-label", t("runs.delete_label", { n: i + 1 }));
      del.addEventListener("click", () => this.onDelete(run.id));
      actions.append(del);
      this.fill(row, run, i);
      return row;
    });
    const button = document.createElement("button");
    button.type = "button";
    button.id = "compare-runs";
    button.textContent = t("runs.compare");
    button.addEventListener("click", () => {
      const order = runs.map((r) => r.id).filter((id) => this.ticked.has(id));
      if (order.length >= 2) this.onCompare(order);
    });
    this.button = button;
    this.root.append(table, button);
    this.updateButton();
  }

  fill(row, run, i) {
    const texts = [`${i + 1}. ${run.label}${run.current ? ` ${t("runs.this_run")}` : ""}`, run.status ? nameOf("status", run.status) : "",
      String(run.epoch ?? 0), fmt(run.test_loss), fmt(run.test_accuracy)];
    texts.forEach((t, c) => { const cell = row.cells[c + 1]; if (cell.textContent !== t) cell.textContent = t; });
  }

  updateButton() {
    if (!this.button) return;
    const n = this.ticked.size;
    this.button.disabled = n < 2;
    this.button.title = n < 2 ? t("runs.compare_hint") : t("runs.compare_title", { n });
  }
}

/** The summary fields a spec difference (a dotted path) shows up in. */
function summaryFieldOf(path) {
  if (path.startsWith("model.layers")) return "layers";
  const map = {
    "dataset.name": "dataset", "dataset.features": "features", "training.optimizer.name": "optimizer",
    "training.optimizer.learning_rate": "learning_rate", "training.batch_size": "batch_size",
    "training.regularization.kind": "regularization", "training.regularization.rate": "regularization_rate",
    "training.epochs": "epochs",
  };
  if (map[path]) return map[path];
  if (path.startsWith("dataset.features")) return "features";
  return path.split(".").pop();
}

const show = (v) => (Array.isArray(v) ? v.join(", ") : v === null || v === undefined ? "-" : String(v));

export class CompareView {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    this.charts = {};
  }

  destroy() {
    for (const c of Object.values(this.charts)) c.destroy();
    this.charts = {};
    this.root.textContent = "";
  }

  /**
   * @param {object} result the answer of GET /api/compare
   * @param {string[]} labels one short label per job, in the order of result.jobs
   */
  render(result, labels) {
    this.destroy();
    const { epochs, jobs, differences } = result;
    if (!Array.isArray(epochs) || !Array.isArray(jobs)) {
      throw new Error("compare view: expected {epochs: [...], jobs: [...]} from GET /api/compare");
    }
    this.labels = labels;
    const charts = document.createElement("div");
    charts.className = "compare-charts";
    this.root.append(charts);
    const metrics = result.metrics || [];
    const wanted = ["test_loss", "test_accuracy"].filter((m) => metrics.includes(m));
    if (!wanted.includes("test_accuracy")) {
      const other = metrics.find((m) => m.startsWith("test_") && m !== "test_loss");
      if (other) wanted.push(other);
    }
    for (const metric of wanted) {
      const el = document.createElement("div");
      el.className = "chart";
      el.dataset.metric = metric;
      charts.append(el);
      const chart = new LineChart(el, {
        title: nameOf("metric", metric, metric.replace(/_/g, " ")), height: 170, spanGaps: false,
        series: jobs.map((j, k) => ({ field: `run${k}`, label: labels[k], stroke: RUN_COLOURS[k % RUN_COLOURS.length] })),
      });
      // One record per epoch, one field per run; null where that run has no such epoch.
      chart.append(epochs.map((epoch, i) => {
        const record = { epoch };
        jobs.forEach((j, k) => { record[`run${k}`] = j.metrics?.[metric]?.[i] ?? null; });
        return record;
      }));
      this.charts[metric] = chart;
    }
    // The settings beside the pictures, so that the whole comparison fits on one screen.
    const lower = document.createElement("div");
    lower.className = "compare-lower";
    lower.append(this.summaryTable(jobs, differences || [], labels));
    this.pictures = document.createElement("div");
    this.pictures.className = "compare-pictures";
    this.slots = jobs.map((j, k) => {
      const fig = document.createElement("figure");
      fig.className = "compare-picture";
      fig.dataset.id = j.id;
      const cap = document.createElement("figcaption");
      cap.textContent = labels[k];
      cap.style.borderColor = RUN_COLOURS[k % RUN_COLOURS.length];
      const body = document.createElement("div");
      body.className = "picture-body muted";
      body.textContent = t("page.run_loading");
      fig.append(cap, body);
      this.pictures.append(fig);
      return body;
    });
    lower.append(this.pictures);
    this.root.append(lower);
  }

  summaryTable(jobs, differences, labels) {
    const fields = [];
    for (const j of jobs) for (const f of Object.keys(j.summary || {})) if (!fields.includes(f) && f !== "name") fields.push(f);
    const differing = new Set(differences.map((d) => summaryFieldOf(d.field)));
    for (const f of fields) {
      const values = jobs.map((j) => JSON.stringify(j.summary?.[f] ?? null));
      if (new Set(values).size > 1) differing.add(f);
    }
    const wrap = document.createElement("div");
    wrap.className = "compare-summary";
    const table = document.createElement("table");
    table.className = "summary-table";
    const caption = document.createElement("caption");
    caption.textContent = t("compare.caption");
    table.append(caption);
    // Only the settings that differ, unless the toggle asks for all of them.
    const toggle = document.createElement("label");
    toggle.className = "differences-only";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "compare-differences-only";
    box.checked = true;
    toggle.append(box, ` ${t("compare.differences_only")}`);
    const head = table.createTHead().insertRow();
    head.append(document.createElement("th"));
    jobs.forEach((j, k) => {
      const th = document.createElement("th");
      th.textContent = labels[k];
      th.style.borderBottom = `3px solid ${RUN_COLOURS[k % RUN_COLOURS.length]}`;
      head.append(th);
    });
    const body = table.createTBody();
    const rows = [];
    for (const f of fields) {
      const row = body.insertRow();
      rows.push(row);
      row.dataset.field = f;
      if (differing.has(f)) row.classList.add("differs");
      row.hidden = !differing.has(f);
      const th = document.createElement("th");
      th.textContent = f.replace(/_/g, " ");
      row.append(th);
      for (const j of jobs) row.insertCell().textContent = show(j.summary?.[f]);
    }
    const none = document.createElement("p");
    none.className = "muted no-differences";
    none.textContent = t("compare.no_differences");
    none.hidden = differing.size > 0;
    box.addEventListener("change", () => {
      for (const row of rows) row.hidden = box.checked && !row.classList.contains("differs");
      none.hidden = !box.checked || differing.size > 0;
    });
    wrap.append(toggle, table, none);
    if (differences.length) {
      const list = document.createElement("ul");
      list.className = "differences";
      for (const d of differences) {
        const li = document.createElement("li");
        li.dataset.field = d.field;
        li.textContent = `${d.field}: ${d.values.map(show).join(" / ")}`;
        list.append(li);
      }
      const title = document.createElement("p");
      title.className = "muted";
      title.textContent = t("compare.spec_differences");
      wrap.append(title, list);
    }
    return wrap;
  }

  /** Draw run k's latest snapshot: the boundary over its data (2-D) or its confusion matrix. */
  drawPicture(k, hello, frame) {
    const slot = this.slots?.[k];
    if (!slot) throw new Error(`compare view: no run ${k} to draw; render() the comparison first`);
    slot.textContent = "";
    slot.classList.remove("muted");
    if (!hello || !frame) {
      slot.classList.add("muted");
      slot.textContent = t("page.run_no_picture");
      return;
    }
    if (frame.arrays["output.boundary"] && hello.kind === "points2d") {
      const canvas = document.createElement("canvas");
      canvas.width = 220; canvas.height = 220;
      canvas.className = "compare-boundary";
      canvas.setAttribute("aria-label", `Decision boundary of ${this.labels[k]}`);
      slot.append(canvas);
      const view = new OutputView(canvas);
      view.setData(hello.data || {}, { task: hello.task, numClasses: hello.num_classes });
      view.draw(frame);
    } else if (frame.arrays.confusion) {
      const view = new ConfusionView(slot);
      view.setClasses((hello.class_names || []).map(classLabel));
      view.draw(frame.arrays.confusion);
    } else {
      slot.classList.add("muted");
      slot.textContent = t("page.run_no_boundary");
    }
    const epoch = frame.header?.epoch;
    if (epoch !== undefined) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = t("page.run_at_epoch", { epoch });
      slot.append(p);
    }
  }

  drawError(k, message) {
    const slot = this.slots?.[k];
    if (!slot) return;
    slot.className = "picture-body error shown";
    slot.textContent = message;
  }
}
