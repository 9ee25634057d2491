"""examples/client.ipynb executed end to end with nbclient against a live server: it trains two
runs, shows one live (job.show() gives the job view's IFrame), compares them and exports."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from playground import Playground
from playground.notebook import in_notebook
from server.engine.samples import BOUNDARY

NOTEBOOK = Path(__file__).resolve().parent.parent.parent / "examples" / "client.ipynb"
nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")


def text_of(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            parts.append(output["text"])
        for kind in ("text/plain", "text/html"):
            if kind in output.get("data", {}):
                parts.append(output["data"][kind])
    return "\n".join(parts)


def test_the_example_notebook_runs(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_URL", server.url)
    monkeypatch.delenv("PLAYGROUND_TOKEN", raising=False)
    before = {j.id for j in Playground(server.url).jobs()}
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    notebook = nbformat.read(work / NOTEBOOK.name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "'status': 'ok'" in text_of(code[0])
    shown = text_of(code[1])  # fast.show(): the job view, framed
    assert "<iframe" in shown and f"{server.url}/jobs/" in shown and "/view#token=" in shown
    waited = text_of(code[2])
    assert waited.count("completed after 40 epochs") == 2
    compared = text_of(code[3])
    assert "best: xor, learning rate 0.3" in compared
    assert "xor, learning rate 0.003" in text_of(code[4])  # the DataFrame's columns
    assert f"(1, {BOUNDARY}, {BOUNDARY})" in text_of(code[5])
    assert "exported xor.onnx" in text_of(code[6])
    assert (work / "xor.onnx").stat().st_size > 0
    assert {j.id for j in Playground(server.url).jobs()} == before  # it cleaned up


def test_show_outside_a_notebook_is_a_progress_bar(server, capsys) -> None:
    assert not in_notebook()
    with Playground(server.url) as pg:
        job = pg.submit({"dataset": {"name": "xor", "params": {"samples": 100}},
                         "model": {"layers": [{"type": "dense", "units": 2}]},
                         "training": {"epochs": 5}})
        final = job.show()
        assert final["status"] == "completed"
        out = capsys.readouterr()
        # The plain progress line (stderr is not a terminal): epoch, loss, accuracy.
        assert re.search(r"epoch 5/5  loss [0-9.]+ \(test [0-9.]+\)  accuracy [0-9.]+\n", out.err)
        table = dict(line.split(None, 1) for line in out.out.splitlines())  # the final table
        assert table["status"] == "completed" and table["epoch"] == "5"
        job.delete()
