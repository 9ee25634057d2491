/**
 * A data set's starter: the setup the catalogue says it opens with (H6's `starter` field of
 * GET /api/catalog's datasets: features for 2-D points, the hidden layers, the optimizer and
 * learning rate, the batch size and the epochs), turned into store changes.
 *
 * `starterChanges(entry, schemas)` gives those changes, or null when the entry has no starter
 * (an older server); main.js then falls back to its own small networks. Layers in a starter
 * are minimal (omitted fields take their schema's defaults), so they are filled from the
 * layer schemas here. Nothing here touches the DOM or the server.
 */

import { newLayer } from "./views/layers.js";

export function starterChanges(entry, schemas) {
  const starter = entry?.starter;
  if (!starter || typeof starter !== "object" || !Array.isArray(starter.model?.layers)) return null;
  const changes = {};
  const layers = [];
  for (const layer of starter.model.layers) {
    const schema = schemas.get(layer?.type);
    if (!schema) return null; // a layer type this page does not know: use the fallback
    layers.push(newLayer(layer.type, schema, layer));
  }
  changes.layers = layers;
  const act = layers.find((l) => typeof l.activation === "string")?.activation;
  if (act) changes.activation = act;
  if (entry.kind === "points2d" && Array.isArray(starter.features) && starter.features.length) {
    changes.features = [...starter.features];
  }
  const training = starter.training || {};
  if (training.optimizer?.name) changes.optimizer = training.optimizer.name;
  if (typeof training.optimizer?.learning_rate === "number") changes.learning_rate = training.optimizer.learning_rate;
  if (Number.isInteger(training.batch_size)) changes.batch_size = training.batch_size;
  if (training.epochs === null || Number.isInteger(training.epochs)) changes.epochs = training.epochs;
  return changes;
}
