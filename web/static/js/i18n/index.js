/**
 * The page's message table: t(key, params) gives the sentence for `key` in the chosen language.
 *
 * Tables live in messages.<lang>.js (English is the reference; every other table has the same
 * keys). A message is a string with {name} placeholders, or an object of plural forms chosen by
 * Intl.PluralRules on params.n ({one: "1 student", other: "{n} students"}; Chinese needs only
 * "other"). A key missing from the chosen table falls back to English and is logged once; a key
 * missing from English is returned as is and logged.
 *
 * The language: ?lang= in the query, else lang= in the share link (the URL hash), else the
 * first of navigator.languages that has a table, else English.
 *
 * Usage (from web/static/js/): import { t } from "./i18n/index.js"; t("runs.count", {n: 3}).
 */

import en from "./messages.en.js";
import zh from "./messages.zh.js";

export const TABLES = { en, zh };
export const LANGUAGES = Object.keys(TABLES);
export const DEFAULT_LANGUAGE = "en";

/** "zh-CN" -> "zh", "en_GB" -> "en"; null when there is no table for it. */
export function normalizeLanguage(tag) {
  if (typeof tag !== "string" || !tag) return null;
  const base = tag.trim().toLowerCase().split(/[-_]/)[0];
  return Object.hasOwn(TABLES, base) ? base : null;
}

function fromHash(hash) {
  for (const part of String(hash || "").replace(/^#/, "").split("&")) {
    if (part.startsWith("lang=")) return decodeURIComponent(part.slice(5));
  }
  return null;
}

/** The language for this page load (see the module's docstring for the order). */
export function chooseLanguage(loc = globalThis.location, nav = globalThis.navigator) {
  const fromQuery = loc ? new URLSearchParams(loc.search).get("lang") : null;
  const picked = normalizeLanguage(fromQuery) || normalizeLanguage(fromHash(loc?.hash));
  if (picked) return picked;
  for (const tag of nav?.languages || (nav?.language ? [nav.language] : [])) {
    const lang = normalizeLanguage(tag);
    if (lang) return lang;
  }
  return DEFAULT_LANGUAGE;
}

let current = chooseLanguage();
const warned = new Set();

export function language() { return current; }

/** Switch the language of later t() calls (the page redraws what it shows itself). */
export function setLanguage(tag) {
  const lang = normalizeLanguage(tag);
  if (!lang) throw new Error(`i18n: no messages for '${tag}'; available: ${LANGUAGES.join(", ")}`);
  current = lang;
  if (globalThis.document?.documentElement) document.documentElement.lang = lang === "zh" ? "zh-Hans" : lang;
  return lang;
}

function warnOnce(text) {
  if (warned.has(text)) return;
  warned.add(text);
  console.warn(text);
}

function pick(message, lang, params) {
  if (message === null || typeof message !== "object") return message;
  const n = Number(params?.n);
  const form = Number.isFinite(n) ? new Intl.PluralRules(lang).select(n) : "other";
  return message[form] ?? message.other;
}

function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const v = params[name];
    return typeof v === "number" && name === "n" ? v.toLocaleString(current === "zh" ? "zh-CN" : "en") : String(v);
  });
}

/** The message `key` in the current language, placeholders filled from `params`. */
export function t(key, params) {
  let lang = current;
  let message = TABLES[lang][key];
  if (message === undefined && lang !== DEFAULT_LANGUAGE) {
    warnOnce(`i18n: '${key}' has no ${lang} message; showing the English one`);
    lang = DEFAULT_LANGUAGE;
    message = TABLES[lang][key];
  }
  if (message === undefined) {
    warnOnce(`i18n: unknown message key '${key}'`);
    return key;
  }
  return fill(pick(message, lang, params), params);
}

/** Fill every element with data-i18n="key" (its text) or data-i18n-title / -placeholder / -aria-label. */
export function translatePage(root = globalThis.document) {
  if (!root) return;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [attr, data] of [["title", "i18nTitle"], ["placeholder", "i18nPlaceholder"], ["aria-label", "i18nAriaLabel"]]) {
    for (const el of root.querySelectorAll(`[data-${attr === "aria-label" ? "i18n-aria-label" : `i18n-${attr}`}]`)) {
      el.setAttribute(attr, t(el.dataset[data]));
    }
  }
}

setLanguage(current);
