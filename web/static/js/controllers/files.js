/**
 * Files and links in and out of the page: the trained model's download, the job spec saved to
 * and loaded from a file, the share link copied, a TF Playground link imported, and a CSV
 * uploaded as a data set (or the shown upload deleted).
 */

import { api, ApiError } from "../api.js";
import { t } from "../i18n/index.js";
import { $, session, store } from "../session.js";
import { propOf } from "../store.js";
import { renderImportReport } from "../views/imports.js";
import { entry, pickDataset, problemOptions, renderData } from "./data.js";
import { fillSelect, loadSpec } from "./controls.js";
import { clearErrors, showApiError, showError } from "./errors.js";
import { forgetJob, resetJob, setStatus } from "./job.js";
import { dropRun } from "./runs.js";

/** Hand `blob` to the browser as a download named `filename`. */
function saveFile(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** The download button: enabled with a job and a format, its title saying what it gives. */
export function updateDownload() {
  const button = $("download");
  const format = $("export-format").value;
  button.disabled = !session.job || !format;
  button.title = !session.job ? t("download.train_first")
    : t("download.title", { format: $("export-format").selectedOptions[0]?.textContent || format });
}

async function downloadModel() {
  const job = session.job;
  const format = $("export-format").value;
  if (!job || !format) return;
  clearErrors(["download"]);
  $("download").disabled = true;
  try {
    const { blob, filename } = await api.exportModel(job.id, format, job.token);
    saveFile(blob, filename);
  } catch (err) {
    showError("download", err.message);
  } finally {
    updateDownload();
  }
}

async function importLink() {
  const text = $("import-url").value.trim();
  clearErrors(["import"]);
  if (!text) { showError("import", t("import.paste_first")); return; }
  try {
    // The server refuses a text that is not a TF Playground link (422): nothing changes then.
    const result = await api.importTfPlayground(text);
    const toggles = pageToggles(result.ignored);
    loadSpec(result.spec);
    store.set(toggles);
    renderImportReport($("import-report-body"), result, toggles);
    $("import-report").hidden = false;
    $("import-form").hidden = true;
    $("import-open").setAttribute("aria-expanded", "false");
  } catch (err) {
    showError("import", err instanceof ApiError ? err.message : t("import.could_not_use", { message: err.message }));
  }
}

/** TF Playground's "show test data" and "discretize" become the page's own toggles. */
const TF_TOGGLES = { showTestData: "show_test", discretize: "discretize" };

function pageToggles(ignored) {
  const toggles = { show_test: false, discretize: false };
  for (const item of ignored || []) {
    const key = TF_TOGGLES[item?.field];
    if (key) toggles[key] = String(item.value) === "true";
  }
  return toggles;
}

/** Send a CSV; on success the new set joins the data sets and is picked (with its starter). */
export async function uploadCsv(form) {
  const created = await api.uploadDataset(form, session.token);
  session.datasets.set(created.name, created);
  const problem = $("problem");
  if (![...problem.options].some((o) => o.value === created.task)) fillSelect(problem, problemOptions());
  store.set({ problem: created.task });
  pickDataset(created.name);
  renderData();
  return created;
}

/** Delete the shown upload (asks first); the server refuses (409) while a job trains on it. */
async function deleteUpload() {
  const e = entry();
  if (!e?.uploaded) return;
  // The server keeps a set while any job uses it: this page's runs on it go first.
  const runs = session.runs.filter((r) => r.dataset === e.name);
  if (!window.confirm(t("upload.delete_confirm", { name: e.title || e.name, runs: runs.length }))) return;
  clearErrors(["dataset"]);
  if (session.job && runs.some((r) => r.id === session.job.id)) {
    forgetJob();
    setStatus();
  }
  for (const run of runs) {
    try { await api.deleteJob(run.id, run.token); } catch { /* gone already */ }
    dropRun(run.id);
  }
  try {
    await api.deleteDataset(e.name, session.token);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) { showApiError(err, "dataset"); return; }
  }
  session.datasets.delete(e.name);
  session.previews.delete(e.name);
  if (session.job) resetJob();
  const first = [...session.datasets.values()].find((d) => d.task === e.task) || session.datasets.get(propOf("dataset").def);
  fillSelect($("problem"), problemOptions());
  store.set({ problem: first.task });
  pickDataset(first.name);
  renderData();
}

/** Bind the buttons of this module: download, spec save/load, copy link, import, delete upload. */
export function bindFiles() {
  $("delete-upload").addEventListener("click", deleteUpload);
  $("copy-link").addEventListener("click", async () => {
    const link = location.href;
    try {
      await navigator.clipboard.writeText(link);
      showError("load", t("files.link_copied"));
    } catch {
      window.prompt(t("files.copy_prompt"), link);
    }
  });
  $("save-spec").addEventListener("click", () => {
    const blob = new Blob([`${JSON.stringify(store.toSpec(), null, 2)}\n`], { type: "application/json" });
    saveFile(blob, `playground-${store.get("dataset")}.json`);
  });
  $("load-spec").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      loadSpec(JSON.parse(await file.text()));
      clearErrors(["load"]);
    } catch (err) {
      showError("load", t("files.load_failed", { name: file.name, message: err.message }));
    }
  });
  // Closing or reloading the tab keeps every run on the server (saved_runs.js finds them again);
  // a job nobody watches pauses on its own. Deleting a run is the runs list's delete button.
  $("download").addEventListener("click", downloadModel);
  $("export-format").addEventListener("change", updateDownload);
  $("import-open").addEventListener("click", () => {
    const form = $("import-form");
    form.hidden = !form.hidden;
    $("import-open").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("import-url").focus();
  });
  $("import-form").addEventListener("submit", (event) => { event.preventDefault(); importLink(); });
  $("import-report-close").addEventListener("click", () => { $("import-report").hidden = true; });
}
