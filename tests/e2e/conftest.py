"""Browser fixtures: the system Chromium driven by Playwright, one browser per module, a fresh
context (1280x800) per test that records console errors and page errors.

The tests skip with a reason when /usr/bin/chromium or the playwright package is missing;
CI installs both (./test installs Debian's Chromium when it can).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "artifacts"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return "no Chromium at /usr/bin/chromium (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=ARGS)
        yield b
        b.close()


class PageErrors(list):
    """Console errors and uncaught exceptions of one page, as strings."""

    def real(self) -> list[str]:
        # The browser logs every 4xx response as a console error; the tests that provoke one
        # (a shape error answered 422) check what the page shows instead.
        return [e for e in self if "status of 422" not in e]


@pytest.fixture()
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture()
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def watch(page) -> PageErrors:
    errors = PageErrors()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


@pytest.fixture()
def playground(context, server) -> Iterator:
    """A function that opens the playground (optionally with a hash) in a new tab and waits
    until it has read the catalogue. Jobs the tabs created (the current one and the kept runs)
    are deleted afterwards."""
    pages = []

    def open_page(hash_: str = "", ctx=None):
        page = (ctx or context).new_page()
        page.errors = watch(page)
        page.goto(f"{server.url}/{('#' + hash_) if hash_ else ''}")
        page.wait_for_selector("body.ready", timeout=20_000)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        try:
            page.evaluate("() => { const p = window.__playground.page; "
                          "const jobs = [...p.runs, ...(p.job ? [p.job] : [])]; "
                          "return Promise.all(jobs.map((j) => fetch('/api/jobs/' + j.id, "
                          "{method: 'DELETE', headers: {Authorization: 'Bearer ' + j.token}})))"
                          ".then(() => 0); }")
        except Exception:  # noqa: BLE001 - the page may already be gone
            pass
