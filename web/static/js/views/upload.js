/**
 * CSV upload in the page: a file picker and a drop zone, a preview of the parsed table (its
 * first rows and columns, the chosen target column highlighted, the task), and the server's
 * answer (POST /api/datasets: the new set, or its errors shown next to the file).
 *
 * UploadView only draws and reads the form; `onUpload({file, target, task, name})` (main.js)
 * sends it and resolves with the new catalogue entry or rejects with an ApiError, whose
 * located messages (`loc: ["body", "file" | "target" | "task" | "name"]`) go next to their
 * field. The parse here is only for the preview: the server parses the file again and decides.
 */

import { t } from "../i18n/index.js";

/** Rows shown in the preview. */
export const PREVIEW_ROWS = 5;

/** Split one CSV line (RFC 4180 quotes: "a,b" and "" inside quotes). */
export function splitCsvLine(line) {
  const out = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { out.push(cur.trim()); cur = ""; } else cur += c;
  }
  out.push(cur.trim());
  return out;
}

/** {columns, rows (the first `limit`), count (data rows)} of a CSV text with a header row. */
export function parseCsvPreview(text, limit = PREVIEW_ROWS) {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/).filter((l) => l.trim() !== "");
  if (!lines.length) return { columns: [], rows: [], count: 0 };
  const columns = splitCsvLine(lines[0]);
  return { columns, rows: lines.slice(1, 1 + limit).map(splitCsvLine), count: lines.length - 1 };
}

/** The task the server would infer from the target's values: whole numbers or text mean classes. */
export function guessTask(values) {
  const seen = values.filter((v) => v !== "");
  if (!seen.length) return "classification";
  const numbers = seen.map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) return "classification";
  return numbers.every(Number.isInteger) ? "classification" : "regression";
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

export class UploadView {
  /** @param {HTMLElement} root @param {{onUpload: (form) => Promise<object>, maxBytes?: number}} options */
  constructor(root, { onUpload, maxBytes }) {
    this.root = root;
    this.onUpload = onUpload;
    this.maxBytes = maxBytes;
    this.file = null;
    this.table = null;
    this.build();
  }

  build() {
    this.root.textContent = "";
    this.input = el("input", { type: "file", id: "upload-file", accept: ".csv,text/csv", className: "visually-hidden" });
    const pick = el("label", { htmlFor: "upload-file", className: "button", textContent: t("upload.choose") });
    this.drop = el("div", { id: "upload-drop", className: "drop-zone", tabIndex: -1 },
      pick, el("span", { className: "muted", textContent: ` ${t("upload.or_drop")}` }));
    this.fileError = el("span", { className: "error" });
    this.fileError.dataset.errorFor = "upload.file";
    this.preview = el("div", { id: "upload-preview", className: "upload-preview" });
    this.root.append(this.input, this.drop, this.fileError, this.preview);
    this.input.addEventListener("change", () => {
      const file = this.input.files[0];
      this.input.value = "";
      if (file) this.load(file);
    });
    for (const type of ["dragenter", "dragover"]) {
      this.drop.addEventListener(type, (e) => { e.preventDefault(); this.drop.classList.add("over"); });
    }
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("over"));
    this.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      this.drop.classList.remove("over");
      const file = e.dataTransfer?.files?.[0];
      if (file) this.load(file);
    });
  }

  /** `message` next to `field` (after any message already there). */
  showError(field, message) {
    const slot = field === "file" ? this.fileError : this.root.querySelector(`[data-error-for="upload.${field}"]`) || this.fileError;
    slot.textContent = message && slot.textContent ? `${slot.textContent} ${message}` : message;
    slot.classList.toggle("shown", Boolean(message));
  }

  clearErrors() {
    for (const slot of this.root.querySelectorAll("[data-error-for]")) { slot.textContent = ""; slot.classList.remove("shown"); }
  }

  /** Read a picked or dropped file and show its preview (nothing is sent yet). */
  async load(file) {
    this.clearErrors();
    this.preview.textContent = "";
    this.file = null;
    if (this.maxBytes && file.size > this.maxBytes) {
      this.showError("file", t("upload.too_large", { name: file.name, mb: (this.maxBytes / 1048576).toFixed(1) }));
      return;
    }
    let text;
    try {
      text = await file.text();
    } catch (err) {
      this.showError("file", t("upload.unreadable", { name: file.name, message: err.message }));
      return;
    }
    const table = parseCsvPreview(text);
    if (table.columns.length < 2 || table.count < 1) {
      this.showError("file", t("upload.need_table", { name: file.name }));
      return;
    }
    this.file = file;
    this.table = table;
    this.renderPreview();
  }

  renderPreview() {
    const { columns, rows, count } = this.table;
    this.preview.textContent = "";
    const head = el("p", { className: "upload-summary", textContent: t("upload.summary", {
      name: this.file.name, rows: t("upload.rows", { n: count }), columns: t("upload.columns", { n: columns.length }) }) });
    const target = el("select", { id: "upload-target" });
    for (const c of columns) target.add(new Option(c, c));
    target.value = columns[columns.length - 1];
    const task = el("select", { id: "upload-task" });
    for (const [value, key] of [["", "upload.task_auto"], ["classification", "upload.task_classification"], ["regression", "upload.task_regression"]]) {
      task.add(new Option(t(key), value));
    }
    const name = el("input", { id: "upload-name", type: "text", maxLength: 100, placeholder: this.file.name.replace(/\.csv$/i, "") });
    const field = (id, label, input, key) => {
      const error = el("span", { className: "error" });
      error.dataset.errorFor = `upload.${key}`;
      return el("div", { className: "field inline" }, el("label", { htmlFor: id, textContent: label }), input, error);
    };
    const taskNote = el("span", { id: "upload-task-guess", className: "muted" });
    const grid = el("table", { id: "upload-table", className: "upload-table" });
    const draw = () => {
      const k = columns.indexOf(target.value);
      grid.textContent = "";
      const tr = grid.createTHead().insertRow();
      columns.forEach((c, i) => {
        const th = el("th", { textContent: c });
        if (i === k) { th.className = "target"; th.title = t("upload.target_column"); }
        tr.append(th);
      });
      const body = grid.createTBody();
      for (const row of rows) {
        const r = body.insertRow();
        columns.forEach((_, i) => { const cell = r.insertCell(); cell.textContent = row[i] ?? ""; if (i === k) cell.className = "target"; });
      }
      const guessed = guessTask(rows.map((r) => r[k] ?? ""));
      taskNote.textContent = task.value ? "" : t("upload.task_guess", { task: t(`upload.task_${guessed}`) });
      grid.dataset.target = target.value;
    };
    target.addEventListener("change", draw);
    task.addEventListener("change", draw);
    const send = el("button", { id: "upload-send", type: "button", textContent: t("upload.send") });
    send.addEventListener("click", () => this.send({ target, task, name, send }));
    const scroll = el("div", { className: "table-scroll" }, grid);
    scroll.style.overflowX = "auto"; // a wide table scrolls inside the data panel
    scroll.style.maxWidth = "100%";
    this.preview.append(head, scroll,
      el("p", { className: "muted", textContent: t("upload.first_rows", { n: rows.length }) }),
      field("upload-target", t("upload.target"), target, "target"),
      field("upload-task", t("upload.task"), task, "task"), taskNote,
      field("upload-name", t("upload.name"), name, "name"), send);
    draw();
  }

  async send({ target, task, name, send }) {
    this.clearErrors();
    send.disabled = true;
    send.textContent = t("upload.sending");
    try {
      const entry = await this.onUpload({ file: this.file, target: target.value, task: task.value || null, name: name.value.trim() || null });
      this.preview.textContent = "";
      this.preview.append(el("p", { id: "upload-done", className: "upload-done", textContent: t("upload.done", {
        name: entry.title || entry.name, task: t(`upload.task_${entry.task}`) }) }));
      this.file = null;
    } catch (err) {
      // The API's own sentences, each next to the field it names.
      const located = Array.isArray(err.detail) ? err.detail.filter((d) => Array.isArray(d.loc)) : [];
      if (located.length) {
        for (const d of located) this.showError(String(d.loc[d.loc.length - 1]), d.msg);
      } else {
        this.showError("file", err.message);
      }
    } finally {
      send.disabled = false;
      send.textContent = t("upload.send");
    }
  }
}
