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
 * last choice made with the language switch (localStorage), else the first of
 * navigator.languages that has a table, else English.
 *
 * A language's table is three files merged: messages.<lang>.js (the page's sentences),
 * names.<lang>.js (the catalogue's names: optimizers, losses, data sets, layer types...) and
 * explain.<lang>.js (the explanations: tooltips and the "What am I looking at?" panel).
 * The three never share a key (tests/e2e/test_i18n.py checks it).
 *
 * Usage (from web/static/js/): import { t } from "./i18n/index.js"; t("runs.count", {n: 3}).
 */

import en from "./messages.en.js";
import zh from "./messages.zh.js";
import namesEn from "./names.en.js";
import namesZh from "./names.zh.js";
import explainEn from "./explain.en.js";
import explainZh from "./explain.zh.js";

export const TABLES = { en: { ...en, ...namesEn, ...explainEn }, zh: { ...zh, ...namesZh, ...explainZh } };
/** Where the language switch keeps the choice. */
export const STORAGE_KEY = "playground.lang";
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
  let saved = null;
  try { saved = normalizeLanguage(globalThis.localStorage?.getItem(STORAGE_KEY)); } catch { /* storage off */ }
  if (saved) return saved;
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

/** Whether `key` has a message (in the current language or in English). */
export function has(key) {
  return Object.hasOwn(TABLES[current], key) || Object.hasOwn(TABLES[DEFAULT_LANGUAGE], key);
}

/**
 * The name of a catalogue entry to show: names.<lang>.js's `name.<group>.<id>` when it has one,
 * else `fallback` (the server's own title, or the id itself). Groups: optimizer, schedule,
 * activation, regularization, init, loss, dataset, layer, field, problem, status.
 */
export function nameOf(group, id, fallback = id) {
  const key = `name.${group}.${id}`;
  return has(key) ? t(key) : fallback;
}

/** A class name of a data set in the current language ("ring" -> "圆环", "blob 2" -> "团簇 2"). */
export function classLabel(name) {
  const s = String(name);
  const blob = /^blob (\d+)$/.exec(s);
  if (blob) return t("name.class.blob", { n: Number(blob[1]) });
  return nameOf("class", s, s);
}

/** The one-line description of a catalogue entry (`desc.<group>.<id>`), else `fallback`. */
export function describe(group, id, fallback = "") {
  const key = `desc.${group}.${id}`;
  return has(key) ? t(key) : fallback;
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
