"""GET / serves the page skeleton (no browser needed): HTML with no option lists of its own,
and every static file it links is served, vendored libraries with their licence."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_index_is_a_skeleton_whose_links_are_served(server):
    with server.client() as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        # Layer types, data sets, activations and optimizers come from the catalogue.
        assert "<option" not in html
        links = re.findall(r'(?:href|src)="(/static/[^"?]+)', html)
        assert "/static/js/main.js" in links
        for link in links:
            assert client.get(link).status_code == 200, link


def test_vendored_libraries_are_pinned_with_their_licence():
    vendor = ROOT / "web" / "static" / "vendor"
    folders = [p for p in vendor.iterdir() if p.is_dir()]
    assert folders, "no vendored library"
    readme = (vendor / "README.md").read_text()
    for folder in folders:
        assert re.search(r"-\d+\.\d+\.\d+$", folder.name), f"{folder.name} names no version"
        assert (folder / "LICENSE").is_file(), f"{folder.name} has no LICENSE"
        assert folder.name in readme, f"{folder.name} is not listed in vendor/README.md"
    # The page imports the vendored uPlot (no CDN).
    charts = (ROOT / "web" / "static" / "js" / "views" / "charts.js").read_text()
    assert "../../vendor/uplot-" in charts and "http" not in charts.split("*/", 1)[1]
