/**
 * The page's start-up: reads the catalogue (retrying while the server is away), makes the
 * views, binds the controls, takes the setup from the share link, finds this browser's earlier
 * runs and draws the page.
 *
 * The state lives in session.js (and store.js); the controllers in controllers/ connect the
 * controls, the job and its stream, the runs list and the files to the views in views/, and
 * api.js talks to the server.
 */

import { api } from "./api.js";
import { language, t } from "./i18n/index.js";
import { mainPageChrome } from "./explain.js";
import { $, session, store, views } from "./session.js";
import { bindControls, onChange, renderControls, stateFromLink } from "./controllers/controls.js";
import { entry, kind, loadPreviews, pickDataset, renderData, renderNetwork, scheduleCheck, toggleFeature } from "./controllers/data.js";
import { setConnection, showError } from "./controllers/errors.js";
import { bindFiles, uploadCsv } from "./controllers/files.js";
import { makeCharts } from "./controllers/stream.js";
import { setStatus } from "./controllers/job.js";
import { compareRuns, deleteRun, openRun, renderRuns, restoreRuns } from "./controllers/runs.js";
import { startChallenge } from "./controllers/challenge.js";
import { bindInspector } from "./controllers/inspector.js";
import { initSweeps } from "./controllers/sweeps.js";
import { bindTimeline } from "./controllers/timeline.js";
import { ConfusionView } from "./views/confusion.js";
import { DatasetsView } from "./views/datasets.js";
import { HistogramView } from "./views/histograms.js";
import { ImagesView } from "./views/images.js";
import { LayersView } from "./views/layers.js";
import { NetworkView } from "./views/network.js";
import { OutputView } from "./views/output.js";
import { CompareView, RunsView } from "./views/runs.js";
import { ArchView } from "./views/arch.js";
import { SequencesView } from "./views/sequences.js";
import { UploadView } from "./views/upload.js";

/** The hover text of the network diagram. */
const tooltip = {
  el: null,
  show(x, y, text) {
    this.el ??= $("tooltip");
    this.el.hidden = false;
    this.el.textContent = text;
    this.el.style.left = `${x + 12}px`;
    this.el.style.top = `${y + 12}px`;
  },
  hide() { if (this.el) this.el.hidden = true; },
};

Object.assign(views, {
  output: new OutputView($("output-map")),
  confusion: new ConfusionView($("confusion-view")),
  histogram: new HistogramView($("histogram-view")),
  images: new ImagesView($("images-view")),
  sequences: new SequencesView($("sequences-view")),
  runs: new RunsView($("runs"), { onCompare: compareRuns, onOpen: (id) => openRun(id), onDelete: (id) => deleteRun(id) }),
  compare: new CompareView($("compare-view")),
});

/** The views that need the catalogue: layer cards, the neuron diagram, data sets, upload. */
function makeCatalogViews() {
  views.layers = new LayersView($("layers"), {
    schemas: session.schemas,
    onChange: (layers) => store.set({ layers }),
  });
  views.network = new NetworkView($("network"), {
    tooltip,
    zoomCanvas: $("neuron-zoom-canvas"),
    onToggleFeature: toggleFeature,
    onUnits: (i, delta) => {
      const layers = store.get("layers").map((l) => ({ ...l }));
      const max = session.catalog.limits?.max_units ?? 4096;
      layers[i].units = Math.max(1, Math.min(max, layers[i].units + delta));
      store.set({ layers });
    },
    onZoom: (label, onClose) => {
      $("neuron-zoom-caption").textContent = t("network.zoom_caption", { label });
      session.onZoomClose = onClose;
      $("neuron-zoom").showModal();
    },
  });
  bindInspector();  // the glass box: hooks on the network view and the output map
  // The architecture drawing of every other network, above the cards (issue 16, views/arch.js).
  views.arch = new ArchView($("arch"), { sample: () => views.images.sample ?? 0 });
  views.layers.onReport = (report, layers) => views.arch.render({ report, layers, kind: kind(), entry: entry() });
  for (const v of [views.images, views.sequences]) {
    v.onData = (data, names) => views.arch.setData(data, names);
    v.onFrame = (frame) => views.arch.draw(frame);
  }
  views.datasets = new DatasetsView($("datasets"), { onPick: pickDataset });
  new UploadView($("upload"), { onUpload: uploadCsv, maxBytes: session.catalog.limits?.max_upload_bytes });
}

/** What the "What am I looking at?" panel explains: the store's setup and the data set's kind. */
function explainSetup() {
  const e = session.datasets.get(store.get("dataset"));
  return { ...store.state, kind: e?.kind, task: store.get("problem") || e?.task, classes: e?.num_classes ?? 2 };
}

async function start() {
  mainPageChrome(explainSetup, (fn) => store.subscribe(fn));
  try {
    session.catalog = await api.catalog();
  } catch (err) {
    setConnection("lost", t("connection.catalogue", { message: err.message }));
    setTimeout(start, 2000);
    return;
  }
  setConnection("open");
  for (const l of session.catalog.layers) session.schemas.set(l.type, l.schema);
  for (const d of session.catalog.datasets) session.datasets.set(d.name, d);

  makeCatalogViews();
  makeCharts();
  bindControls();
  bindFiles();
  // ?lang=zh goes into the share link, so that whoever opens it reads the same language.
  if (new URLSearchParams(location.search).get("lang")) store.set({ lang: language() });
  store.set(stateFromLink(location.hash));
  await startChallenge();  // /?challenge=<code>: its setup, locks and goal (issue 14)
  await showWhoAmI();
  await restoreRuns();
  store.subscribe(onChange);
  history.replaceState(null, "", `${location.pathname}${location.search}#${store.toHash()}`);
  renderControls();
  renderData();
  renderNetwork();
  setStatus();
  renderRuns();
  scheduleCheck();
  views.output.compose();
  loadPreviews();
  initSweeps();
  bindTimeline();  // issue 16: scrub back through a run, replay beside (controllers/timeline.js)
  session.ready = true;
  document.body.classList.add("ready");
}

/** Class mode: who the student is joined as, and a sign-out (the runs stay with the class). */
async function showWhoAmI() {
  let info = null;
  try { info = await api.classInfo(); } catch { /* an older server: open mode */ }
  session.classMode = info?.mode === "class";
  const box = $("who");
  if (!session.classMode || !info.name) { box.hidden = true; return; }
  $("who-name").textContent = t("class.joined_as", { name: info.name });
  box.hidden = false;
  $("sign-out").onclick = async () => {
    if (!window.confirm(t("class.sign_out_confirm"))) return;
    try {
      await api.leaveClass();
    } catch (err) {
      showError("who", err.message);
      return;
    }
    session.job?.stream?.close();
    location.assign("/join");
  };
}

start();
