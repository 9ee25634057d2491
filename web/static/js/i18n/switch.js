/**
 * The language switch (EN / 中文) that every page shows: two buttons, the current one pressed.
 *
 * Choosing a language keeps it in localStorage (i18n/index.js reads it when the link names none)
 * and in the page's link: `lang=` in the URL hash, the share link's own field on the main page
 * (store.js). The page then reloads with the same URL, so that every view draws itself in the new
 * language and the state the link holds (the setup, the job view's token) is kept; a ?lang= in the
 * query is dropped, since it would win over the new choice.
 */

import { LANGUAGES, language, STORAGE_KEY, t } from "./index.js";

/** `hash` with its lang= part set to `lang` (added when missing), the other parts kept. */
export function hashWithLanguage(hash, lang) {
  const parts = String(hash || "").replace(/^#/, "").split("&").filter((p) => p && !p.startsWith("lang="));
  parts.push(`lang=${encodeURIComponent(lang)}`);
  return parts.join("&");
}

/** Keep `lang` (localStorage and the link) and reload the page in it. */
export function switchLanguage(lang) {
  if (!LANGUAGES.includes(lang)) throw new Error(`i18n: no messages for '${lang}'; available: ${LANGUAGES.join(", ")}`);
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* storage off: the link still says it */ }
  const query = new URLSearchParams(location.search);
  query.delete("lang");
  const search = query.toString();
  history.replaceState(history.state, "", `${location.pathname}${search ? `?${search}` : ""}#${hashWithLanguage(location.hash, lang)}`);
  location.reload();
}

/** Put the switch into `container` (appended; or into #lang-switch when the page has one). */
export function mountLanguageSwitch(container) {
  const host = document.getElementById("lang-switch") || container;
  if (!host || host.querySelector(".lang-switch-buttons")) return null;
  const group = document.createElement("div");
  group.className = "lang-switch-buttons";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", t("page.language"));
  group.dataset.explain = "tip.language";
  for (const lang of LANGUAGES) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "lang-button";
    b.dataset.lang = lang;
    b.lang = lang === "zh" ? "zh-Hans" : lang;
    b.textContent = t(`lang.${lang}`);
    b.setAttribute("aria-pressed", String(lang === language()));
    b.addEventListener("click", () => { if (lang !== language()) switchLanguage(lang); });
    group.append(b);
  }
  host.append(group);
  return group;
}
