/**
 * The join page (/join): a student enters their name and the class code; the server answers
 * with their token as an HttpOnly cookie, and the playground at / then works under it.
 */

import { pageChrome } from "./explain.js";
import { t } from "./i18n/index.js";

const form = document.getElementById("join-form");
const error = document.getElementById("join-error");

async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch { /* not JSON */ }
  return t("api.answered", { status: response.status });
}

async function start() {
  pageChrome("join", document.querySelector(".card.login"));
  const info = await fetch("/api/class").then((r) => r.json()).catch(() => null);
  if (info && (info.mode === "open" || info.role)) location.replace(playground());
}

// A challenge (issue 14): its code comes with the link (/join?challenge=CODE) or is typed;
// the playground then opens in challenge mode (/?challenge=CODE, controllers/challenge.js).
const challengeField = document.getElementById("challenge");
challengeField.value = new URLSearchParams(location.search).get("challenge") || "";

/** Where the student goes once joined: the playground, with the challenge and language asked for. */
function playground() {
  const query = new URLSearchParams();
  const code = challengeField.value.trim();
  if (code) query.set("challenge", code);
  const lang = new URLSearchParams(location.search).get("lang");
  if (lang) query.set("lang", lang);
  const search = query.toString();
  return `/${search ? `?${search}` : ""}${location.hash}`;
}

/** Whether the typed challenge code names a challenge (an empty one is fine); says why not. */
async function challengeFound() {
  const code = challengeField.value.trim();
  if (!code) return true;
  const response = await fetch(`/api/challenges/${encodeURIComponent(code)}`).catch(() => null);
  if (response?.ok) return true;
  error.textContent = t("challenge.not_found", {
    code, message: response ? await detail(response) : t("connection.unreachable") });
  return false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const body = { name: form.name.value, code: form.code.value.trim() };
  let response;
  try {
    response = await fetch("/api/class/join", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch {
    error.textContent = t("connection.unreachable");
    return;
  }
  if (!response.ok) {
    error.textContent = await detail(response);
    return;
  }
  if (await challengeFound()) location.replace(playground());
});

start();
