/**
 * Limits of the page's number controls, read from the catalogue (the job spec's JSON schema and
 * `limits`), and the check a typed value passes before it reaches the store and the share link.
 *
 * `checkValue(catalog, key, value)` answers "" when the value is allowed, else the sentence to
 * show beside the control (from the message table). Nothing here touches the DOM.
 */

import { t } from "./i18n/index.js";
import { propOf } from "./store.js";

/** The schema of a job-spec field: its definition name for each spec object on the path. */
const OBJECTS = {
  dataset: "DatasetSpec", model: "ModelSpec", training: "TrainingSpec",
  "training.optimizer": "OptimizerSpec", "training.regularization": "RegularizationSpec",
  "training.schedule": "ScheduleSpec",
};

function fieldSchema(catalog, path) {
  const defs = catalog?.schemas?.job?.$defs;
  if (!defs || !path || path.length < 2) return null;
  const def = OBJECTS[path.slice(0, -1).join(".")];
  let schema = def && defs[def]?.properties?.[path[path.length - 1]];
  if (schema?.anyOf) schema = schema.anyOf.find((s) => s.type === "number" || s.type === "integer") || schema;
  return schema || null;
}

/** {min, max, minExclusive, maxExclusive, integer} of a control, null where there is no limit. */
export function limitsOf(catalog, key) {
  const prop = propOf(key);
  const schema = fieldSchema(catalog, prop.path) || {};
  const out = {
    min: schema.exclusiveMinimum ?? schema.minimum ?? null,
    minExclusive: schema.exclusiveMinimum !== undefined,
    max: schema.exclusiveMaximum ?? schema.maximum ?? null,
    maxExclusive: schema.exclusiveMaximum !== undefined,
    integer: schema.type === "integer" || prop.kind === "int" || prop.kind === "int?",
  };
  const limits = catalog?.limits || {};
  if (key === "epochs" && limits.max_epochs) out.max = Math.min(out.max ?? Infinity, limits.max_epochs);
  if (key === "batch_size" && limits.max_batch_size) out.max = Math.min(out.max ?? Infinity, limits.max_batch_size);
  return out;
}

const show = (v) => String(v);

/** "" when `value` may be used for `key`, else what is wrong and what is allowed. */
export function checkValue(catalog, key, value) {
  const prop = propOf(key);
  if (prop.kind === "int?" && value === null) return "";
  if (!["number", "int", "int?"].includes(prop.kind)) return "";
  const name = t(`field.${key}`);
  if (typeof value !== "number" || !Number.isFinite(value)) return t("validate.not_a_number", { name });
  const lim = limitsOf(catalog, key);
  if (lim.integer && !Number.isInteger(value)) return t("validate.whole_number", { name });
  const low = lim.min !== null && (lim.minExclusive ? !(value > lim.min) : !(value >= lim.min));
  const high = lim.max !== null && (lim.maxExclusive ? !(value < lim.max) : !(value <= lim.max));
  if (!low && !high) return "";
  if (lim.min !== null && lim.max !== null) {
    const keyOf = `validate.range${lim.minExclusive ? "_above" : ""}${lim.maxExclusive ? "_below" : ""}`;
    return t(keyOf, { name, min: show(lim.min), max: show(lim.max) });
  }
  if (low) return t(lim.minExclusive ? "validate.above" : "validate.at_least", { name, min: show(lim.min) });
  return t("validate.at_most", { name, max: show(lim.max) });
}
