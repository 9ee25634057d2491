"""The architecture drawing above the layer cards (web/static/js/views/arch*.js), in headless
Chromium against a live server: a CNN on digits, an LSTM (then a GRU) on marker and attention
on recall show each layer's shape and the parameter count PyTorch's own module has, the live
values change while training, the frames stay within the page's 16 ms, and the words are in
the chosen language.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from server.config import Settings
from server.data.registry import DataRegistry
from server.nn.build import build_model
from tests.e2e.test_page import epoch, wait_until
from tests.test_arch_params import ATTENTION, CNN, spec_of

pytestmark = pytest.mark.browser

LSTM = [{"type": "lstm", "units": 16}]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> DataRegistry:
    return DataRegistry(Path(tmp_path_factory.mktemp("uploads")), Settings())


def torch_counts(registry, dataset: str, layers: list[dict]) -> list[int]:
    """sum(p.numel()) of each layer of the PyTorch model built from the spec, input first (0)."""
    spec = spec_of(dataset, layers)
    network = build_model(spec.model, registry.describe(spec.dataset), seed=0)
    return [0] + [sum(p.numel() for p in layer.parameters()) for layer in network.layers]


def link(dataset: str, layers: list[dict], extra: str = "") -> str:
    return f"dataset={dataset}&layers={quote(json.dumps(layers))}{extra}"


def drawn(page) -> dict:
    """What the drawing says: per layer its shape, its parameter count and its words."""
    return page.evaluate("""() => {
      const root = document.getElementById('arch');
      const all = (sel) => [...root.querySelectorAll(sel)];
      return {
        hidden: root.hidden,
        shapes: all('.arch-shape').map((e) => e.textContent),
        names: all('.arch-name').map((e) => e.textContent),
        params: all('.arch-params').map((e) => Number(e.dataset.params)),
        paramWords: all('.arch-params').map((e) => e.textContent),
        extra: all('.arch-extra').map((e) => e.textContent),
        hits: all('.arch-hit').map((e) => ({index: Number(e.dataset.index),
          label: e.getAttribute('aria-label'), explain: e.dataset.explain, tab: e.tabIndex})),
        summary: root.querySelector('svg[role=img]').getAttribute('aria-label'),
        caption: root.querySelector('figcaption').textContent,
        text: all('svg text').map((e) => e.textContent).join(' '),
      };
    }""")


def pixels(page) -> str:
    return page.evaluate("() => document.querySelector('#arch canvas').toDataURL()")


def wait_drawn(page, layers: int) -> dict:
    wait_until(lambda: not page.evaluate("() => document.getElementById('arch').hidden")
               and len(drawn(page)["hits"]) == layers + 2, 15, "the drawing")
    return drawn(page)


def train_and_watch(page, epochs: int = 2) -> None:
    """Play until `epochs`, checking that the drawing's pictures change between frames, that a
    frame (the drawing included) takes under 16 ms on average once the first ones built the
    views, and that the drawing's own part of it is small (p95 is bench/page_frame_bench.py's:
    a shared test machine's load moves single frames)."""
    before = pixels(page)
    page.click("#play")
    wait_until(lambda: page.evaluate("window.__frameStats.count") >= 3, 30, "frames")
    page.evaluate("window.__frameStats.reset(); Object.assign(window.__archStats, "
                  "{count: 0, total: 0, max: 0})")
    first = pixels(page)
    wait_until(lambda: epoch(page) >= epochs and pixels(page) != first
               and page.evaluate("window.__frameStats.count") >= 8, 30, "the live values to move")
    page.click("#play")
    assert first != before
    stats = page.evaluate("({mean: window.__frameStats.mean, count: window.__frameStats.count, "
                          "arch: window.__archStats.mean, archCount: window.__archStats.count})")
    assert stats["mean"] < 16 and stats["arch"] < 4 and stats["archCount"] >= 8, stats


def test_cnn_on_digits_volumes_shapes_counts_and_live_maps(playground, registry):
    page = playground(link("digits", CNN))
    d = wait_drawn(page, len(CNN))
    x = "\u00d7"
    assert d["shapes"] == [f"8{x}8{x}1", f"8{x}8{x}8", f"4{x}4{x}8", "128", "32", "10"]
    assert d["names"] == ["input", "conv2d", "max pool", "flatten", "dense", "output"]
    counts = torch_counts(registry, "digits", CNN)
    assert d["params"] == counts == [0, 80, 0, 0, 4128, 330]
    assert d["paramWords"][1] == "80 params" and d["paramWords"][2] == "no params"
    assert d["caption"] == f"{sum(counts):,} parameters in all" == "4,538 parameters in all"
    assert d["extra"] == ["3\u00d73 window", "2\u00d72 window"]
    assert "conv2d, 8\u00d78\u00d78, 80 params" in d["summary"] and "4,538" in d["summary"]
    assert [h["explain"] for h in d["hits"][:3]] == [
        "tip.arch.input", "panel.conv.body", "panel.pool.body"]
    assert all(h["tab"] == 0 for h in d["hits"])
    # the cards stay for editing, below the drawing
    assert page.locator("#layer-0-type").input_value() == "conv2d"
    assert page.evaluate("() => document.getElementById('arch').compareDocumentPosition("
                         "document.getElementById('layers')) & Node.DOCUMENT_POSITION_FOLLOWING")
    train_and_watch(page)
    # another sample: its image and its maps on the volumes, its prediction beside the output
    before = pixels(page)
    page.locator(".sample-picker button").nth(2).click()
    wait_until(lambda: pixels(page) != before, 5, "the other sample drawn")
    assert "%" in page.locator("#arch text.arch-out").first.text_content()
    # hover a layer: the explanation of convolution
    page.locator("#arch .arch-hit[data-index='0']").focus()
    assert "filters" in page.locator("#explain-tip").inner_text()
    assert page.errors.real() == []


def test_lstm_unrolled_with_gates_then_a_gru(playground, registry):
    page = playground(link("marker", LSTM, "&problem=classification"))
    d = wait_drawn(page, 1)
    assert d["shapes"] == ["20\u00d71", "16", "1"]
    assert d["params"] == torch_counts(registry, "marker", LSTM) == [0, 1216, 17]
    assert d["extra"] == ["4 gates", "4\u00d716\u00d7(1+16+2)"]
    assert page.locator("#arch svg rect[rx='3']").count() == 20  # one cell per time step
    train_and_watch(page)
    page.select_option("#layer-0-type", "gru")
    gru = [{"type": "gru", "units": 16}]
    wait_until(lambda: drawn(page)["params"][1:2] == [912], 10, "the GRU's count")
    d = drawn(page)
    assert d["params"] == torch_counts(registry, "marker", gru)
    assert d["extra"] == ["3 gates", "3\u00d716\u00d7(1+16+2)"] and d["names"][1] == "GRU"
    assert page.errors.real() == []


def test_attention_heads_and_weights_on_recall(playground, registry):
    page = playground(link("recall", ATTENTION))
    d = wait_drawn(page, len(ATTENTION))
    assert d["shapes"] == ["5 tokens", "5\u00d716", "5\u00d716", "16", "8"]
    assert d["params"] == torch_counts(registry, "recall", ATTENTION) == [0, 1152, 1120, 0, 136]
    assert "head 1" in d["text"] and "head 2" in d["text"] and "head 3" not in d["text"]
    assert "2 heads \u00d7 8 of 16" in d["extra"]
    train_and_watch(page)
    assert page.errors.real() == []


def test_the_drawing_in_chinese(playground, registry):
    page = playground(link("digits", CNN, "&lang=zh"))
    d = wait_drawn(page, len(CNN))
    assert d["names"] == ["输入", "二维卷积", "最大池化", "展平", "全连接层", "输出层"]
    assert d["paramWords"][:3] == ["无参数", "80 个参数", "无参数"]
    assert d["caption"] == "共 4,538 个参数"
    assert d["summary"].startswith("逐层画出的网络：")
    page = playground(link("recall", ATTENTION, "&lang=zh"))
    d = wait_drawn(page, len(ATTENTION))
    assert "头 1" in d["text"] and "头 2" in d["text"] and "5 个词元" in d["shapes"]
    page = playground(link("marker", LSTM, "&lang=zh&problem=classification"))
    d = wait_drawn(page, 1)
    assert d["extra"] == ["4 个门", "4\u00d716\u00d7(1+16+2)"]
    assert page.errors.real() == []


def test_points_with_dense_layers_keep_the_neuron_diagram(playground):
    page = playground()
    wait_until(lambda: page.locator(".neuron").count() > 0, 10, "the neurons")
    assert page.evaluate("() => document.getElementById('arch').hidden")
