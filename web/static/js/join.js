/**
 * The join page (/join): a student enters their name and the class code; the server answers
 * with their token as an HttpOnly cookie, and the playground at / then works under it.
 */

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
  const info = await fetch("/api/class").then((r) => r.json()).catch(() => null);
  if (info && (info.mode === "open" || info.role)) location.replace("/");
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
  location.replace("/" + location.hash);
});

start();
