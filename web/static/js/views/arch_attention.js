/**
 * An attention layer in the time drawing (views/arch_rnn.js): its heads as parallel bands, one
 * above the other; in each, the positions twice (keys below, queries above) and a line from
 * every key to every query whose width and strength are the attention weight, live from
 * `layer{i}.attention` (heads, time, time) of the shown sequence. The layer's words (name,
 * shape, parameters, heads and width) sit in the label column.
 */

import { t } from "../i18n/index.js";
import { EDGE, MUTED } from "./arch_parts.js";
import { colourOf } from "./heatmap.js";

const HEAD_H = 44;

/** Height of the attention row of `heads` heads. */
export function attentionHeight(heads) {
  return Math.max(48, heads * HEAD_H + 4);
}

/**
 * Draw attention layer `row` (spec `spec`) into `d` between yTop and yBottom over the drawn
 * positions `pos` ([{t, x}]).
 */
export function attentionRow(d, { row, spec, pos, yTop }) {
  const heads = spec?.heads ?? 1;
  const width = row.output_shape?.[1];
  const bands = [];
  for (let h = 0; h < heads; h++) {
    const top = yTop + 2 + h * HEAD_H;
    const qy = top + 6; const ky = top + HEAD_H - 8; // queries above, keys below
    d.rect(pos[0].x - 10, top, pos[pos.length - 1].x - pos[0].x + 20, HEAD_H - 2,
      { stroke: "#c5cdd2", "stroke-width": 0.8, rx: 4, "stroke-dasharray": "3 2" });
    d.text(pos[pos.length - 1].x + 18, top + HEAD_H / 2 + 3, t("arch.head", { n: h + 1 }), { "text-anchor": "start", "font-size": 9, fill: MUTED });
    for (const p of pos) {
      d.circle(p.x, qy, 2.6, { fill: "#fff", stroke: EDGE });
      d.circle(p.x, ky, 2.6, { fill: "#fff", stroke: EDGE });
    }
    bands.push({ qy, ky });
  }
  for (const { qy, ky } of bands) {
    d.text(pos[0].x - 6, qy + 3, "q", { "font-size": 8, fill: MUTED, "text-anchor": "end" });
    d.text(pos[0].x - 6, ky + 3, "k", { "font-size": 8, fill: MUTED, "text-anchor": "end" });
  }
  d.paint((ctx, live) => {
    const arr = live.arrays[`layer${row.index}.attention`];
    if (!arr) return;
    const [h, tq, tk] = arr.shape;
    const [r, g, b] = colourOf(1); // the palette's positive colour
    ctx.lineCap = "round";
    for (let k = 0; k < Math.min(h, bands.length); k++) {
      const { qy, ky } = bands[k];
      for (const q of pos) {
        if (q.t >= tq) continue;
        for (const key of pos) {
          if (key.t >= tk) continue;
          const w = arr.data[(k * tq + q.t) * tk + key.t];
          if (w < 0.02) continue;
          ctx.strokeStyle = `rgba(${r},${g},${b},${(0.15 + 0.85 * w).toFixed(3)})`;
          ctx.lineWidth = 0.4 + 4 * w;
          ctx.beginPath(); ctx.moveTo(key.x, ky - 3); ctx.lineTo(q.x, qy + 3); ctx.stroke();
        }
      }
    }
  });
  return t("arch.heads_line", { heads, width: width ?? "?", each: width ? width / heads : "?" });
}
