"""The progress bar's backends (playground.progress) and its summary line."""

from __future__ import annotations

import io

import pytest

from playground.progress import Progress, final_table, summary

RECORD = {"epoch": 3, "step": 30, "train_loss": 0.5, "test_loss": 0.625, "test_accuracy": 0.75,
          "test_auc": 0.8}


def test_summary_shows_the_losses_and_the_main_metric() -> None:
    assert summary(RECORD) == "loss 0.5 (test 0.625)  accuracy 0.75"
    assert summary({"train_loss": 1.0, "test_loss": 2.0, "test_mae": 0.25}) == (
        "loss 1 (test 2)  mae 0.25")


def test_plain_backend_prints_lines() -> None:
    out = io.StringIO()
    bar = Progress(10, stream=out)
    assert bar.backend == "plain"  # not a terminal
    bar.update(RECORD)
    bar.status("completed")
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "epoch 3/10  loss 0.5 (test 0.625)  accuracy 0.75"
    assert lines[-1] == "completed  epoch 3/10  loss 0.5 (test 0.625)  accuracy 0.75"


def test_rich_backend() -> None:
    pytest.importorskip("rich", reason="the client extra installs rich")
    out = io.StringIO()
    bar = Progress(10, stream=out, backend="rich")
    bar.update(RECORD)
    bar.close()
    text = out.getvalue()
    assert "3/10" in text and "accuracy 0.75" in text


def test_final_table_as_text() -> None:
    out = io.StringIO()
    final_table({"id": "abc", "status": "failed", "error": "diverged"}, RECORD, stream=out)
    rows = dict(line.split(None, 1) for line in out.getvalue().splitlines())
    assert rows["status"] == "failed" and rows["error"] == "diverged"
    assert rows["test_accuracy"] == "0.75" and rows["epoch"] == "3"
