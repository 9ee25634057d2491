"""The embeddable job view (GET /jobs/{id}/view, job.show() in notebooks) in Chromium: framed
by a page of another origin, it draws the network and the boundary and the curves grow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from playground import Playground
from tests.client.conftest import spec
from tests.e2e.conftest import browser, context, watch  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


@pytest.fixture()
def notebook_origin() -> Iterator:
    """A page server on another loopback port (as Jupyter is): `url(src)` is a page of it
    that frames `src`."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def url(src: str) -> str:
        pages["/notebook"] = ('<link rel="icon" href="data:,">'
                              f'<iframe src="{src}" width="1000" height="640"></iframe>')
        return f"http://127.0.0.1:{httpd.server_address[1]}/notebook"

    yield url
    httpd.shutdown()
    httpd.server_close()


def frame_of(page):
    page.wait_for_function("() => window.frames.length === 1")
    frame = page.frames[1]
    frame.wait_for_function("() => window.__jobView && window.__jobView.hello >= 1",
                            timeout=20_000)
    return frame


def pixels(frame, selector: str = "#output-map") -> list[int]:
    return frame.evaluate("""(selector) => {
        const c = document.querySelector(selector);
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data
            .filter((_, i) => i % 97 === 0));
    }""", selector)


def test_the_view_follows_one_job_when_framed_by_another_origin(server, context,  # noqa: F811
                                                               notebook_origin) -> None:
    with Playground(server.url) as pg:
        job = pg.submit(spec(epochs=None))
        try:
            page = context.new_page()
            errors = watch(page)
            page.goto(notebook_origin(job.view_url))
            frame = frame_of(page)
            frame.wait_for_function("() => window.__jobView.frames >= 2", timeout=20_000)
            first = pixels(frame)
            curve = pixels(frame, "#loss-chart canvas")
            points = frame.evaluate("() => window.__jobView.points")
            frame.wait_for_function(
                f"() => window.__jobView.points >= {points + 5} && window.__jobView.frames >= 5",
                timeout=30_000)
            assert pixels(frame) != first  # the boundary moved
            assert pixels(frame, "#loss-chart canvas") != curve  # and the loss curve grew
            state = frame.evaluate("() => window.__jobView")
            assert state["status"] == "running" and state["epoch"] >= 5
            # 2 inputs, 4 hidden neurons, 1 output; no controls anywhere.
            assert frame.locator(".neuron").count() == 7
            assert frame.locator(".unit-buttons").first.is_hidden()
            # No training control: only the language switch and the explanations' toggle.
            extra = frame.locator("button:visible, input:visible, select:visible")
            kinds = extra.evaluate_all(
                "(els) => els.map((e) => e.closest('.lang-switch-buttons') ? 'language'"
                " : (e.getAttribute('aria-controls') || e.id || e.textContent.trim()))")
            assert all(k == "language" or "explain" in k for k in kinds), kinds
            assert frame.locator("#loss-chart canvas").count() >= 1
            assert frame.locator("#metric-chart canvas").count() >= 1
            assert frame.locator("#job-status").text_content() == "running"
            assert frame.locator("#epoch").text_content() != "0"
            job.pause()
            frame.wait_for_function("() => window.__jobView.status === 'paused'")
            job.reset()  # a status with epoch 0 comes: the curves start again
            frame.wait_for_function("() => window.__jobView.points === 0 "
                                    "&& window.__jobView.epoch === 0")
            assert frame.locator("#epoch").text_content() == "0"
            assert errors.real() == []
        finally:
            job.delete()


def test_the_route_allows_framing_only_for_the_view(server) -> None:
    view = httpx.get(f"{server.url}/jobs/abc/view")
    assert view.status_code == 200
    assert view.headers["content-security-policy"] == "frame-ancestors * vscode-webview:"
    assert 'data-job-id="abc"' in view.text
    odd = httpx.get(f"{server.url}/jobs/%22%3E%3Cscript%3Ex/view")
    assert odd.status_code == 200 and "<script>x" not in odd.text  # the id is escaped
    assert 'data-job-id="&#34;&gt;&lt;script&gt;x"' in odd.text
    index = httpx.get(f"{server.url}/")
    assert index.headers["content-security-policy"] == "frame-ancestors 'self'"


def test_a_wrong_token_or_unknown_job_is_said_in_the_view(class_server, context) -> None:  # noqa: F811
    student = class_server.join("Bo")
    with Playground(class_server.url, token=student) as pg:
        job = pg.submit(spec(epochs=None), start=False)
    page = context.new_page()
    page.goto(f"{class_server.url}/jobs/{job.id}/view#token=wrong")
    page.wait_for_function("() => window.__jobView.closed !== null", timeout=20_000)
    assert page.locator("#job-error").text_content() == (
        "The live view ended: This job belongs to someone else")
    page = context.new_page()  # (a new fragment alone does not reload the page)
    page.goto(f"{class_server.url}/jobs/{job.id}/view#token={student}&lang=zh")
    page.wait_for_function("() => window.__jobView.hello >= 1", timeout=20_000)
    assert page.locator("#job-status").text_content() == "已暂停"
    page.goto(f"{class_server.url}/jobs/0000/view#token={student}")
    page.wait_for_function("() => window.__jobView.closed !== null", timeout=20_000)
    assert page.locator("#job-error").text_content() == "The live view ended: Job not found"
