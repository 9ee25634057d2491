"""Explanations and the language switch (issue 16), in headless Chromium against a live server.

- A control's explanation shows on hover and on keyboard focus (Tab), in a role=tooltip element,
  and the control is described by it (aria-describedby) in both languages.
- The "What am I looking at?" panel opens and closes by keyboard (focus goes in and comes back),
  and its text follows the page: the optimizer's update rule, the loss, the layers in use.
- The language switch keeps the setup, writes lang= into the share link and localStorage, and
  the first visit follows the browser's languages.
- Screenshots with the panel open at 1024x768 and 1440x900 in both languages (/tmp/shots/explain/).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

SHOTS = Path("/tmp/shots/explain")

TIPS = {
    "en": {"tip.learning_rate": "The learning rate \u03b7", "tip.play": "Start or pause training"},
    "zh": {"tip.learning_rate": "学习率 η", "tip.play": "开始或暂停训练"},
}


def open_page(context, server, query: str = "", hash_: str = ""):
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.url}/{query}{('#' + hash_) if hash_ else ''}")
    page.wait_for_selector("body.ready", timeout=20_000)
    page.errors = errors
    return page


def tip_text(page) -> str:
    page.wait_for_selector("#explain-tip:not([hidden])", timeout=5_000)
    return page.inner_text("#explain-tip")


def described_by(page, selector: str) -> str:
    return page.evaluate("""(sel) => {
        const ids = document.querySelector(sel).getAttribute('aria-describedby') || '';
        return ids.split(/\\s+/).map((id) => document.getElementById(id)?.textContent || '')
          .join(' '); }""", selector)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_control_explains_itself_on_hover_and_on_keyboard_focus(server, context, lang):
    page = open_page(context, server, f"?lang={lang}")
    page.hover("#learning_rate")
    assert TIPS[lang]["tip.learning_rate"] in tip_text(page)
    assert page.get_attribute("#explain-tip", "role") == "tooltip"
    assert TIPS[lang]["tip.learning_rate"] in described_by(page, "#learning_rate")
    page.mouse.move(2, 700)
    page.keyboard.press("Escape")
    page.wait_for_selector("#explain-tip", state="hidden")
    # Keyboard: focus the reset button, Tab to play.
    page.focus("#reset")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "play"
    assert TIPS[lang]["tip.play"] in tip_text(page)
    assert TIPS[lang]["tip.play"] in described_by(page, "#play")
    page.keyboard.press("Escape")
    page.wait_for_selector("#explain-tip", state="hidden")
    assert page.errors == []
    page.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_panel_opens_and_closes_by_keyboard_and_follows_the_optimizer(server, context, lang):
    page = open_page(context, server, f"?lang={lang}")
    page.focus("#explain-toggle")
    page.keyboard.press("Enter")
    page.wait_for_selector("#explain-panel:not([hidden])")
    assert page.get_attribute("#explain-toggle", "aria-expanded") == "true"
    assert page.evaluate("() => document.activeElement.id") == "explain-heading"
    optimizer = page.inner_text("#explain-panel [data-topic=optimizer]")
    assert "w \u2190 w \u2212 \u03b7 g" in optimizer  # SGD, the default
    assert ("SGD" in optimizer) and ("Adam" not in optimizer)
    loss = page.inner_text("#explain-panel [data-topic=loss]")
    assert ("binary cross-entropy" if lang == "en" else "二元交叉熵") in loss  # auto, two classes
    assert page.locator("#explain-panel [data-topic=heatmap]").count() == 1
    # The panel follows the setup: Adam's update rule replaces SGD's.
    page.evaluate("() => window.__playground.store.set({optimizer: 'adam', regularization: 'l2'})")
    optimizer = page.inner_text("#explain-panel [data-topic=optimizer]")
    assert "Adam" in optimizer and "\u03b2\u2081" in optimizer
    assert "w \u2190 w \u2212 \u03b7 g" not in optimizer
    assert "\u03bb \u03a3 w\u00b2" in page.inner_text("#explain-panel [data-topic=regularization]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#explain-panel", state="hidden")
    assert page.get_attribute("#explain-toggle", "aria-expanded") == "false"
    assert page.evaluate("() => document.activeElement.id") == "explain-toggle"
    # Space on the toggle opens it again; the close button closes it.
    page.keyboard.press(" ")
    page.wait_for_selector("#explain-panel:not([hidden])")
    page.click("#explain-panel .explain-head button")
    page.wait_for_selector("#explain-panel", state="hidden")
    assert page.errors == []
    page.close()


def test_the_panel_explains_the_layers_of_a_sequence_model(server, context):
    layers = ('[{"type":"embedding","dim":8},{"type":"lstm","units":8},'
              '{"type":"attention","heads":2},{"type":"dropout","p":0.1},{"type":"layernorm"},'
              '{"type":"pool_sequence"}]')
    link = f"dataset=recall&problem=classification&layers={layers}&init=zeros"
    page = open_page(context, server, "?lang=zh", link)
    page.click("#explain-toggle")
    topics = page.eval_on_selector_all("#explain-panel [data-topic]",
                                       "els => els.map((e) => e.dataset.topic)")
    for topic in ["intro", "lstm", "attention", "dropout", "layernorm", "embedding", "init",
                  "metrics"]:
        assert topic in topics, (topic, topics)
    assert "heatmap" not in topics
    assert "对称性问题" in page.inner_text("#explain-panel [data-topic=init]")
    assert "softmax(Q Kᵀ / √d) V" in page.inner_text("#explain-panel [data-topic=attention]")
    page.close()


def test_the_job_view_has_the_panel_for_its_spec(server, context):
    spec = {"dataset": {"name": "circle"},
            "model": {"layers": [{"type": "dense", "units": 3, "activation": "relu"}]},
            "training": {"epochs": 1, "optimizer": {"name": "rmsprop", "learning_rate": 0.01}},
            "start": True}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job = client.post("/api/jobs", json=spec).json()
        try:
            page = context.new_page()
            page.goto(f"{server.url}/jobs/{job['id']}/view#token={job['token']}&lang=en")
            page.wait_for_function("() => window.__jobView && window.__jobView.hello > 0",
                                   timeout=20_000)
            page.focus("#explain-toggle")
            page.keyboard.press("Enter")
            optimizer = page.inner_text("#explain-panel [data-topic=optimizer]")
            assert "RMSProp" in optimizer and "\u221as + \u03b5" in optimizer
            assert "ReLU" in page.inner_text("#explain-panel [data-topic=activation]")
            page.keyboard.press("Escape")
            page.wait_for_selector("#explain-panel", state="hidden")
            page.close()
        finally:
            auth = {"Authorization": f"Bearer {job['token']}"}
            client.delete(f"/api/jobs/{job['id']}", headers=auth)


def test_switching_language_keeps_the_setup_and_the_link_carries_it(server, context):
    page = open_page(context, server, "", "learning_rate=0.1&dataset=xor")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert page.inner_text("#explain-toggle") == "What am I looking at?"
    assert page.get_attribute(".lang-button[data-lang=en]", "aria-pressed") == "true"
    with page.expect_navigation():
        page.click(".lang-button[data-lang=zh]")
    page.wait_for_selector("body.ready", timeout=20_000)
    assert page.evaluate("() => document.documentElement.lang") == "zh-Hans"
    assert page.inner_text("#explain-toggle") == "我在看什么？"
    assert page.get_attribute(".lang-button[data-lang=zh]", "aria-pressed") == "true"
    state = page.evaluate("""() => { const s = window.__playground.store;
        return {lr: s.get('learning_rate'), ds: s.get('dataset'), lang: s.get('lang'),
                hash: location.hash, saved: localStorage.getItem('playground.lang')}; }""")
    assert (state["lr"], state["ds"], state["lang"], state["saved"]) == (0.1, "xor", "zh", "zh")
    assert "lang=zh" in state["hash"] and "learning_rate=0.1" in state["hash"]
    # A later visit without a lang in its link keeps the choice (localStorage).
    second = open_page(context, server)
    assert second.evaluate("() => document.documentElement.lang") == "zh-Hans"
    second.close()
    page.close()


def test_the_first_visit_follows_the_browsers_languages(browser, server):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        page.goto(f"{server.url}/")
        page.wait_for_selector("body.ready", timeout=20_000)
        assert page.evaluate("() => document.documentElement.lang") == "zh-Hans"
        assert page.title() == "神经网络游乐场"
        # (The join page has its switch too: tests/e2e/test_i18n.py opens it in class mode.)
        page.goto(f"{server.url}/teacher")
        page.wait_for_selector(".lang-button[data-lang=zh][aria-pressed=true]", timeout=10_000)
        assert page.inner_text("h1") == "班级"
        page.goto(f"{server.url}/teacher#lang=en")
        page.reload()
        page.wait_for_selector(".lang-button[data-lang=en][aria-pressed=true]", timeout=10_000)
        assert page.inner_text("h1") == "Class"
    finally:
        ctx.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_screenshots_with_the_panel_open(browser, server, lang):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in [(1024, 768), (1440, 900)]:
        ctx = browser.new_context(viewport={"width": width, "height": height})
        try:
            page = ctx.new_page()
            page.goto(f"{server.url}/?lang={lang}")
            page.wait_for_selector("body.ready", timeout=20_000)
            page.click("#explain-toggle")
            page.hover("#learning_rate")
            tip_text(page)
            box = page.locator("#explain-panel").bounding_box()
            assert box and box["x"] + box["width"] <= width + 1 and box["width"] >= 300
            page.screenshot(path=str(SHOTS / f"main-{lang}-{width}x{height}.png"))
        finally:
            ctx.close()
