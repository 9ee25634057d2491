/**
 * The architecture of a sequence model drawn over time, from the input at the bottom to the
 * output at the top: the input per time step (its value, or its token); an embedding as a
 * vector per step; a recurrent layer (RNN, LSTM, GRU) unrolled into one cell per step with its
 * state passed from cell to cell (LSTM: the cell state c and the hidden state h) and its live
 * hidden state as a colour strip per step (`layer{i}.hidden` (time, units) of the shown
 * sequence); attention as its heads (views/arch_attention.js); pooling over time; then the flat
 * layers and the output as rows of units (`layer{i}.units`). Each layer's name, shape and
 * parameter count (for a recurrent layer also its gates: 4 × units × (inputs + units + 2) for
 * an LSTM) are in the label column on the left. Long sequences show their first and last steps.
 *
 * `timeDrawing(width, rows, info)` returns a `Drawing` (views/arch_parts.js).
 */

import { t } from "../i18n/index.js";
import { attentionHeight, attentionRow } from "./arch_attention.js";
import { absMax, cssOf, Drawing, drawUnits, EDGE, FILL, MUTED } from "./arch_parts.js";

const GAP = 14;
const MIN_STEP = 16;
const MAX_STEP = 64;
const GATES = { rnn: 1, gru: 3, lstm: 4 };
const RECURRENT = Object.keys(GATES);

/** The time steps drawn and where: all of them, or the first and last with a gap between. */
export function positions(time, x0, x1) {
  const room = x1 - x0;
  if (time * MIN_STEP <= room) {
    const step = Math.min(MAX_STEP, room / time);
    const left = x0 + (room - step * time) / 2;
    return { pos: Array.from({ length: time }, (_, k) => ({ t: k, x: left + (k + 0.5) * step })), step, gap: null };
  }
  const slots = Math.max(3, Math.floor(room / MIN_STEP));
  const step = room / slots;
  const first = Math.ceil((slots - 1) / 2); const last = slots - 1 - first;
  const pos = [];
  for (let k = 0; k < first; k++) pos.push({ t: k, x: x0 + (k + 0.5) * step });
  for (let k = 0; k < last; k++) pos.push({ t: time - last + k, x: x0 + (first + 1 + k + 0.5) * step });
  return { pos, step, gap: x0 + (first + 0.5) * step };
}

/** ["4 gates", "4×16×(1+16+2)"] for a one-layer, one-direction recurrent layer; else ["4 gates"]. */
export function gatesLine(row, spec) {
  const gates = GATES[row.type];
  const units = spec?.units ?? row.output_shape?.[row.output_shape.length - 1];
  const inputs = row.input_shape?.[row.input_shape.length - 1];
  const simple = (spec?.num_layers ?? 1) === 1 && !spec?.bidirectional;
  const formula = simple ? `${gates}\u00d7${units}\u00d7(${inputs}+${units}+2)` : "";
  const words = t("arch.gates", { n: gates });
  return formula ? [words, formula] : [words];
}

/** Each row: its height and how it draws; `seq`: its output is per step (else one vector). */
function rowPlan(row, spec) {
  if (row.type === "input") return { h: 40, seq: true };
  if (row.type === "attention") return { h: attentionHeight(spec?.heads ?? 1), seq: true };
  if (RECURRENT.includes(row.type)) return { h: 84, seq: Boolean(spec?.return_sequences) };
  if (row.type === "embedding") return { h: 40, seq: true };
  if (row.type === "pool_sequence") return { h: 40, seq: false };
  return { h: 40, seq: (row.output_shape || []).length === 2 };
}

export function timeDrawing(width, rows, info) {
  const labelW = width >= 560 ? 124 : 112;
  const attention = rows.some((r) => r.type === "attention");
  const x0 = labelW + 8; const x1 = width - (attention ? 58 : 18);
  const time = info.time;
  const { pos, step, gap } = positions(time, x0, x1);
  const plans = rows.map((r) => rowPlan(r, info.layers[r.index]));
  const total = plans.reduce((a, p) => a + p.h, 0) + GAP * (rows.length - 1) + 14;
  const d = new Drawing(width);
  d.height = total;
  let bottom = total - 6;
  let below = null; // {seq, top, anchor}
  rows.forEach((row, i) => {
    const plan = plans[i];
    const top = bottom - plan.h;
    const spec = info.layers[row.index];
    let extra = null;
    let anchor = (x0 + x1) / 2;
    // A flat layer sits above the vector it reads (clamped into the drawing); its units row:
    const units = row.output_shape?.[row.output_shape.length - 1] ?? 1;
    const spacing = row.appended && units <= 10 ? Math.min(52, (x1 - x0) / units) : 12;
    const length = Math.min(x1 - x0, spacing * units);
    if (!plan.seq && below && !below.seq) anchor = Math.min(Math.max(below.anchor, x0 + length / 2), x1 - length / 2);
    if (row.type === "pool_sequence") anchor = spec?.mode === "last" ? pos[pos.length - 1].x : anchor;
    if (below) connect(d, below, { bottom, pos, row, to: anchor });
    if (row.type === "input") inputRow(d, row, { pos, top, bottom, info, step });
    else if (row.type === "embedding") vectorRow(d, { pos, top, bottom, step, parts: 4 });
    else if (RECURRENT.includes(row.type)) {
      extra = gatesLine(row, spec);
      anchor = recurrentRow(d, row, spec, { pos, top, bottom, step, gap }) ?? anchor;
    } else if (row.type === "attention") extra = attentionRow(d, { row, spec, pos, yTop: top });
    else if (row.type === "pool_sequence") poolRow(d, spec, { pos, top, bottom, ax: anchor });
    else if (plan.seq) vectorRow(d, { pos, top, bottom, step, parts: 2 });
    else {
      drawUnits(d, { x: anchor - length / 2, y: (top + bottom) / 2 - (row.appended ? 4 : 0), length, units,
        index: row.index, vertical: false, output: row.appended, names: info.outputNames, gap: spacing });
    }
    if (gap !== null && plan.seq && row.type !== "attention") d.text(gap, (top + bottom) / 2 + 3, "\u2026", { fill: MUTED, "font-size": 12 });
    d.label(6, top + 11, row, { anchor: "start", tokens: info.tokens, extra });
    d.hit(0, top - 3, width, plan.h + 6, row, { tokens: info.tokens, extra });
    below = { seq: plan.seq, top, anchor };
    bottom = top - GAP;
  });
  return d;
}

/** The arrows from the row below into this one: one per step, or one from a single vector. */
function connect(d, below, { bottom, pos, row, to }) {
  const y1 = below.top - 1; const y2 = bottom + 1;
  if (!below.seq) d.arrow(below.anchor, y1, to, y2, { "stroke-width": 0.9 });
  else if (row.type !== "pool_sequence") for (const p of pos) d.arrow(p.x, y1, p.x, y2, { "stroke-width": 0.8 });
}

/** The shown sequence's input: a token per step, or a colour square per step (its value). */
function inputRow(d, row, { pos, top, bottom, info, step }) {
  const inputs = info.data?.samples?.inputs?.[0] || [];
  const mid = (top + bottom) / 2;
  if (info.tokens) {
    const w = Math.min(step - 3, 34);
    for (const p of pos) {
      d.rect(p.x - w / 2, mid - 9, w, 18, { rx: 3, fill: FILL, stroke: EDGE, "stroke-width": 0.8 });
      const id = inputs[p.t];
      if (id !== undefined && w >= 14) {
        const word = String(info.tokenNames?.[id] ?? id);
        d.text(p.x, mid + 3.5, word.length * 5.5 > w ? word.slice(0, Math.max(1, Math.floor(w / 5.5))) : word, { "font-size": 9, class: "arch-token" });
      }
    }
    return;
  }
  const values = inputs.map((v) => (Array.isArray(v) ? v[0] : v));
  const scale = values.length ? absMax(values, 0, values.length) : 1;
  const s = Math.min(12, step - 4);
  for (const p of pos) d.rect(p.x - s / 2, mid - s / 2, s, s, { stroke: EDGE, "stroke-width": 0.7 });
  d.paint((ctx) => {
    for (const p of pos) {
      if (values[p.t] === undefined) continue;
      ctx.fillStyle = cssOf(values[p.t] / scale);
      ctx.fillRect(p.x - s / 2, mid - s / 2, s, s);
    }
  });
}

/** A small vector per step (an embedding, or a layer applied to each step). */
function vectorRow(d, { pos, top, bottom, step, parts }) {
  const w = Math.min(8, step - 6); const h = bottom - top - 12;
  for (const p of pos) {
    d.rect(p.x - w / 2, top + 6, w, h, { fill: FILL, stroke: EDGE, "stroke-width": 0.8 });
    for (let k = 1; k < parts; k++) d.line(p.x - w / 2, top + 6 + (k * h) / parts, p.x + w / 2, top + 6 + (k * h) / parts, { "stroke-width": 0.5 });
  }
}

/** A recurrent layer unrolled: a cell per step, the state arrows between them and the hidden
 * state strips above. Returns the x its output leaves from (the last step without
 * return_sequences). */
function recurrentRow(d, row, spec, { pos, top, bottom, step, gap }) {
  const cellH = 18; const cellY = bottom - cellH - 2;
  const cw = Math.min(step - 7, 28); const sw = Math.min(step - 6, 12);
  const stripTop = top + 4; const stripH = cellY - 10 - stripTop;
  const lstm = row.type === "lstm";
  const both = Boolean(spec?.bidirectional);
  pos.forEach((p, k) => {
    d.rect(p.x - cw / 2, cellY, cw, cellH, { rx: 3, fill: "#f7f3e8", stroke: "#8a7a4e", "stroke-width": 1 });
    if (cw >= 24) d.text(p.x, cellY + 12, row.type === "lstm" ? "L" : row.type === "gru" ? "G" : "R", { "font-size": 8, fill: "#8a7a4e" });
    d.arrow(p.x, cellY - 1, p.x, stripTop + stripH + 2, { "stroke-width": 0.7 });
    d.rect(p.x - sw / 2, stripTop, sw, stripH, { stroke: k === pos.length - 1 ? "#2b3338" : EDGE, "stroke-width": k === pos.length - 1 ? 1.2 : 0.6 });
    const next = pos[k + 1];
    if (!next) return;
    const broken = gap !== null && next.t !== p.t + 1;
    const dash = broken ? "2 2" : undefined;
    d.arrow(p.x + cw / 2, cellY + cellH * 0.65, next.x - cw / 2, cellY + cellH * 0.65, { "stroke-dasharray": dash, "stroke-width": 0.9 });
    if (lstm) d.arrow(p.x + cw / 2, cellY + cellH * 0.3, next.x - cw / 2, cellY + cellH * 0.3, { stroke: "#b08a2e", "stroke-dasharray": dash, "stroke-width": 0.9 });
    if (both) d.arrow(next.x - cw / 2, cellY + cellH + 3, p.x + cw / 2, cellY + cellH + 3, { stroke: "#7c5fa6", "stroke-width": 0.8 });
  });
  if (pos.length > 1) {
    const a = pos[0];
    const lx = a.x - cw / 2 - 4;
    d.text(lx, cellY + cellH * 0.65 + 3, "h", { "font-size": 8, fill: MUTED, "text-anchor": "end" });
    if (lstm) d.text(lx, cellY + cellH * 0.3 + 3, "c", { "font-size": 8, fill: "#b08a2e", "text-anchor": "end" });
  }
  d.paint((ctx, live) => {
    const arr = live.arrays[`layer${row.index}.hidden`];
    if (!arr) return;
    const [time, units] = arr.shape;
    const scale = absMax(arr.data, 0, arr.data.length);
    const cell = stripH / units;
    for (const p of pos) {
      if (p.t >= time) continue;
      for (let u = 0; u < units; u++) {
        ctx.fillStyle = cssOf(arr.data[p.t * units + u] / scale);
        ctx.fillRect(p.x - sw / 2, stripTop + u * cell, sw, Math.ceil(cell));
      }
    }
  });
  return spec?.return_sequences ? null : pos[pos.length - 1].x;
}

/** Pooling over time: every step (mean, max) or the last one into a single vector. */
function poolRow(d, spec, { pos, top, bottom, ax }) {
  const ay = top + 8;
  const mode = spec?.mode ?? "mean";
  const from = mode === "last" ? [pos[pos.length - 1]] : pos;
  for (const p of from) d.line(p.x, bottom - 2, ax, ay + 5, { stroke: "#5d7f94", "stroke-width": 0.8 });
  d.circle(ax, ay, 5, { fill: FILL, stroke: "#2b3338" });
  const left = mode === "last";
  d.text(ax + (left ? -10 : 10), ay + 3, t(`arch.pool_${mode}`), { "text-anchor": left ? "end" : "start", "font-size": 9, fill: MUTED });
}
