/**
 * The note shown after importing a TF Playground link: what did not carry over (`unmapped`),
 * what was left out on purpose (`ignored`) and the import's `notes`
 * (POST /api/import/tfplayground, docs/EXPORT.md). Never fetches.
 */

function section(title, items, text) {
  if (!items?.length) return [];
  const h = document.createElement("h3");
  h.textContent = title;
  const ul = document.createElement("ul");
  for (const item of items) {
    const li = document.createElement("li");
    li.textContent = text(item);
    ul.append(li);
  }
  return [h, ul];
}

const described = (item) => {
  if (typeof item === "string") return item;
  const value = item.value === undefined || item.value === null || item.value === "" ? "" : ` = ${item.value}`;
  return `${item.field ?? "?"}${value}${item.reason ? `: ${item.reason}` : ""}`;
};

/** Fill `root` with the import's result; `spec.name` heads it. */
export function renderImportReport(root, { spec, unmapped, ignored, notes }) {
  root.textContent = "";
  const head = document.createElement("p");
  head.textContent = `Imported ${spec?.name || "the TF Playground setup"}. Press play to train it.`;
  root.append(head);
  const parts = [
    ...section("Not carried over", unmapped, described),
    ...section("Ignored (page-only settings of TF Playground)", ignored, described),
    ...section("Notes", notes, described),
  ];
  if (!parts.length) {
    const p = document.createElement("p");
    p.textContent = "Every setting was carried over.";
    parts.push(p);
  }
  root.append(...parts);
}
