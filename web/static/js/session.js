/**
 * The page's runtime state, in one place: the store (what the controls say, store.js), the
 * session (what the page has learnt and is doing: the catalogue, the current job, the runs),
 * the views (filled in once by main.js) and the frame draw times.
 *
 * Controllers import these objects and change their fields; nothing else keeps module-level
 * state. `window.__playground` and `window.__frameStats` expose them to the browser tests and
 * to bench/page_frame_bench.py.
 */

import { Store } from "./store.js";

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

export const store = new Store();

/** What the page knows and does besides the controls' state. */
export const session = {
  catalog: null,
  datasets: new Map(),   // name -> catalogue entry
  schemas: new Map(),    // layer type -> JSON schema
  previews: new Map(),   // data set name -> its preview (points, token names, ...)
  job: null,             // {id, token, stream, status, epoch, step, ...}: the job the page shows
  token: null,           // the owner token of this page's jobs (open mode: the first job's)
  runs: [],              // this page's jobs, oldest first: {id, token, label, status, epoch, test_loss, ...}
  wantPlay: false,       // play was asked for (kept while a job is being created)
  creating: null,        // the promise of a job being created
  checkSeq: 0,           // the model check's sequence number: only the latest answer counts
  report: null,          // the last model check's report (shapes, parameter counts)
  validation: false,     // the current loss chart has a validation curve
  metricField: null,     // the metric the metric chart shows ("accuracy", ...)
  charts: {},            // loss, metric, learning_rate: the curves' charts
  compare: null,         // the last comparison: {result, labels, charts}
  classMode: false,      // the server runs a class (students sign in)
  healthTimer: null,     // while the server is away: the next health check
  onZoomClose: null,     // what closing the neuron zoom dialog does
  ready: false,          // start-up finished
};

/** The views, made by main.js at start-up (output, network, layers, datasets, runs, ...). */
export const views = {};

/** Frame draw times (ms), read by bench/page_frame_bench.py and the browser tests. */
export const frameStats = {
  count: 0, last: 0, max: 0, total: 0, times: [],
  get mean() { return this.count ? this.total / this.count : 0; },
  get p95() {
    if (!this.times.length) return 0;
    const s = [...this.times].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(0.95 * s.length))];
  },
  /** Count one frame that took `dt` ms to draw (the last 1000 kept for the percentile). */
  add(dt) {
    this.count += 1; this.total += dt; this.last = dt;
    this.max = Math.max(this.max, dt);
    this.times.push(dt);
    if (this.times.length > 1000) this.times.shift();
  },
  reset() { this.count = 0; this.last = 0; this.max = 0; this.total = 0; this.times = []; },
};

window.__frameStats = frameStats;
window.__playground = { store, page: session };
