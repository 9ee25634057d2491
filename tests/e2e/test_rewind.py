"""The page when training goes wrong (issue 16, "See why"), in headless Chromium on a live
server: the rewind banner with its two buttons (keyboard and mouse), in English and Chinese,
and the health hint of a dead ReLU layer. Screenshots go to /tmp/shots/rewind/."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.test_access import serious_violations
from tests.e2e.test_page import wait_until

SHOTS = Path("/tmp/shots/rewind")
# Plane regression, ReLU, learning rate 100: the first epoch blows up.
DIVERGING = "dataset=plane&problem=regression&activation=relu&learning_rate=100"
SIZES = [(1024, 768), (1440, 900)]


def job_of(server, page) -> dict:
    job = page.evaluate("() => { const j = window.__playground.page.job; "
                        "return j && {id: j.id, token: j.token}; }")
    r = httpx.get(f"{server.url}/api/jobs/{job['id']}", timeout=10,
                  headers={"Authorization": f"Bearer {job['token']}"})
    return r.json()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.mouse.move(width - 5, height - 5)  # no tooltip over the picture
        page.evaluate("() => document.activeElement?.blur()")
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / f"{name}-{width}x{height}.png"))


def banner_shown(page) -> bool:
    return page.evaluate("() => { const b = document.getElementById('rewind-banner'); "
                         "return Boolean(b && !b.hidden && b.querySelector('#rewind-lr') "
                         "&& !b.querySelector('#rewind-lr').disabled); }")


def test_the_rewind_banner_says_why_and_both_retries_work(server, playground):
    page = playground(DIVERGING)
    page.click("#play")
    wait_until(lambda: banner_shown(page), 60, "the rewind banner")
    text = page.inner_text("#rewind-banner")
    assert "Training diverged: paused at its last good state" in text
    assert "at epoch 1" in text and "went back to epoch 0" in text
    assert page.inner_text("#rewind-lr") == "Retry with learning rate 10"
    assert page.inner_text("#rewind-clip") == "Retry with gradient clipping (max norm 1)"
    wait_until(lambda: "Training diverged" in page.inner_text("#announcer"), 5, "the announcement")
    job = job_of(server, page)
    assert job["status"] == "paused" and job["diverged"]["rewound_to"]["epoch"] == 0
    shoot(page, "banner-en")
    assert serious_violations(page) == []  # axe-core: the banner and its buttons

    # Gradient clipping, from the keyboard: focus the button, Enter.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.focus("#rewind-clip")
    page.keyboard.press("Enter")
    wait_until(lambda: job_of(server, page)["spec"]["training"].get("gradient_clip") == 1, 20,
               "the clip patch")
    # Then a tenfold smaller learning rate, clicked, until it trains.
    lr = 100.0
    for _ in range(4):
        wait_until(lambda: banner_shown(page) or job_of(server, page)["status"] == "running",
                   60, "a retry's outcome")
        if not banner_shown(page):
            break
        page.click("#rewind-lr")
        lr /= 10
        wait_until(lambda lr=lr: job_of(server, page)["spec"]["training"]["optimizer"]
                   ["learning_rate"] == pytest.approx(lr), 20, "the learning-rate patch")
    wait_until(lambda: job_of(server, page)["progress"]["epoch"] >= 3, 60, "training on")
    assert page.evaluate("() => window.__playground.store.get('learning_rate')") == \
        pytest.approx(lr)
    assert page.is_hidden("#rewind-banner")
    assert page.errors.real() == []


def test_the_banner_and_the_hint_in_chinese(server, context):
    page = context.new_page()
    page.goto(f"{server.url}/?lang=zh#{DIVERGING}")
    page.wait_for_selector("body.ready", timeout=20_000)
    page.click("#play")
    wait_until(lambda: banner_shown(page), 60, "the rewind banner")
    text = page.inner_text("#rewind-banner")
    assert "训练发散：已暂停在最后一个正常状态" in text and "第 1 轮" in text
    assert page.inner_text("#rewind-lr") == "用学习率 10 重试"
    assert page.inner_text("#rewind-clip") == "用梯度裁剪重试（最大范数 1）"
    shoot(page, "banner-zh")
    assert serious_violations(page) == []
    page.click("#rewind-lr")
    wait_until(lambda: job_of(server, page)["spec"]["training"]["optimizer"]["learning_rate"]
               == 10, 20, "the learning-rate patch")
    delete_job(server, page)

    # A dead ReLU layer: zero initial weights make every ReLU output 0.
    page.goto(f"{server.url}/?lang=zh#dataset=circle&activation=relu&init=zeros")
    page.wait_for_selector("body.ready", timeout=20_000)
    page.click("#play")
    wait_until(lambda: page.is_visible("#health-hints"), 30, "the health hint")
    hint = page.inner_text("#health-hints")
    assert "训练中的提示" in hint and "“死亡”的 ReLU 层：第 " in hint and "个隐藏层的全部" in hint
    shoot(page, "hints-zh")
    delete_job(server, page)


def test_the_dead_relu_hint_in_english(server, playground):
    page = playground("dataset=circle&activation=relu&init=zeros")
    page.click("#play")
    wait_until(lambda: page.is_visible("#health-hints"), 30, "the health hint")
    hint = page.inner_text("#health-hints")
    assert "Dead ReLU layer: all " in hint and " units of hidden layer " in hint
    assert "output 0 on every training sample." in hint and "No gradient flows back" in hint
    shoot(page, "hints-en")
    assert serious_violations(page) == []  # axe-core: the hints
    page.click("#play")  # pause: the hint stays, nothing blocks
    assert page.is_visible("#health-hints") and page.errors.real() == []


def delete_job(server, page) -> None:
    job = page.evaluate("() => { const j = window.__playground.page.job; "
                        "return j && {id: j.id, token: j.token}; }")
    if job:
        page.click("#play") if page.evaluate(
            "() => window.__playground.page.job.status === 'running'") else None
        httpx.delete(f"{server.url}/api/jobs/{job['id']}", timeout=10,
                     headers={"Authorization": f"Bearer {job['token']}"})
