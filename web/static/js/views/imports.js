/**
 * The note shown after importing a TF Playground link: what did not carry over (`unmapped`),
 * what was left out on purpose (`ignored`) and the import's `notes`
 * (POST /api/import/tfplayground, docs/EXPORT.md), and which of TF Playground's page toggles
 * ("show test data", "discretize") became the page's own. Never fetches.
 */

import { t } from "../i18n/index.js";

/** TF Playground's page toggles that this page has too: the field, and its message key. */
const CARRIED = { showTestData: "import.toggle.show_test", discretize: "import.toggle.discretize" };

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

/** Fill `root` with the import's result; `spec.name` heads it. `toggles`: the page toggles set. */
export function renderImportReport(root, { spec, unmapped, ignored, notes }, toggles = {}) {
  root.textContent = "";
  const head = document.createElement("p");
  head.textContent = t("import.done", { name: spec?.name || t("import.the_setup") });
  root.append(head);
  const carried = (ignored || []).filter((item) => CARRIED[item?.field]);
  const rest = (ignored || []).filter((item) => !CARRIED[item?.field]);
  const onOff = (key) => t(toggles[key] ? "import.on" : "import.off");
  const parts = [
    ...section(t("import.carried_toggles"), carried, (item) => `${item.field} \u2192 ${t(CARRIED[item.field])}: `
      + onOff(item.field === "showTestData" ? "show_test" : "discretize")),
    ...section(t("import.not_carried"), unmapped, described),
    ...section(t("import.ignored"), rest, described),
    ...section(t("import.notes"), notes, described),
  ];
  if (!unmapped?.length && !rest.length && !notes?.length) {
    const p = document.createElement("p");
    p.textContent = t("import.all_carried");
    parts.push(p);
  }
  root.append(...parts);
}
