"""A live progress line for a training job: rich if installed, else tqdm, else a plain line.

`Progress(total_epochs, stream=sys.stderr)` then `update(record)` per epoch record and
`status(text)`; `close()`. On a stream that is not a terminal, a plain line is printed at most
once a second (logs stay short). `final_table(info, record)` renders the last epoch's numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

try:  # the `client` extra installs rich
    import rich.console
    import rich.progress
    import rich.table
except ImportError:  # pragma: no cover - depends on what is installed
    rich = None
try:
    import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

LOSSES = ("train_loss", "test_loss", "validation_loss")


def summary(record: dict[str, Any]) -> str:
    """'loss 0.412 (test 0.44)  accuracy 0.79' from one epoch record: the losses and the task's
    main test metric (accuracy when there is one)."""
    parts = []
    if isinstance(record.get("train_loss"), int | float):
        test = record.get("test_loss")
        parts.append(f"loss {record['train_loss']:.4g}"
                     + (f" (test {test:.4g})" if isinstance(test, int | float) else ""))
    metrics = [k for k, v in record.items() if k.startswith("test_") and k != "test_loss"
               and isinstance(v, int | float) and not isinstance(v, bool)]
    if metrics:
        key = "test_accuracy" if "test_accuracy" in metrics else metrics[0]
        parts.append(f"{key[5:].replace('_', ' ')} {record[key]:.4g}")
    return "  ".join(parts)


class Progress:
    """Epochs done out of `total` (None: until stopped), with the latest loss and metrics."""

    def __init__(self, total: int | None, *, description: str = "training",
                 stream: TextIO | None = None, backend: str | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.epoch = 0
        self.text = ""
        self.state = ""
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.backend = backend or ("rich" if rich and tty else "tqdm" if tqdm and tty else "plain")
        self._last_print = 0.0
        if self.backend == "rich":
            self.console = rich.console.Console(file=self.stream)
            self.bar = rich.progress.Progress(
                rich.progress.TextColumn("[bold]{task.description}"), rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(), rich.progress.TextColumn("{task.fields[text]}"),
                rich.progress.TimeElapsedColumn(), console=self.console, transient=False)
            self.task = self.bar.add_task(description, total=total, text="")
            self.bar.start()
        elif self.backend == "tqdm":
            self.bar = tqdm.tqdm(total=total, desc=description, unit="epoch", file=self.stream)

    def update(self, record: dict[str, Any]) -> None:
        epoch = int(record.get("epoch") or 0)
        self.text = summary(record)
        if self.backend == "rich":
            self.bar.update(self.task, completed=epoch, text=self.text)
        elif self.backend == "tqdm":
            self.bar.update(max(0, epoch - self.epoch))
            self.bar.set_postfix_str(self.text, refresh=True)
        elif time.monotonic() - self._last_print >= 1.0:
            self._plain(epoch)
        self.epoch = epoch

    def status(self, state: str) -> None:
        self.state = state
        if self.backend == "rich":
            self.bar.update(self.task, description=state)
        elif self.backend == "tqdm":
            self.bar.set_description(state)
        else:
            self._plain(self.epoch)

    def _plain(self, epoch: int) -> None:
        total = f"/{self.total}" if self.total else ""
        state = f"{self.state}  " if self.state else ""
        print(f"{state}epoch {epoch}{total}  {self.text}".rstrip(), file=self.stream, flush=True)
        self._last_print = time.monotonic()

    def close(self) -> None:
        if self.backend == "rich":
            self.bar.stop()
        elif self.backend == "tqdm":
            self.bar.close()
        elif self.text and time.monotonic() - self._last_print > 0:
            self._plain(self.epoch)


def table_rows(info: dict[str, Any], record: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(name, value) rows: the job, its status and the last epoch's numbers."""
    rows = [("job", str(info.get("id", ""))), ("status", str(info.get("status", "")))]
    if info.get("error"):
        rows.append(("error", str(info["error"])))
    if record:
        for key, value in record.items():
            if isinstance(value, float):
                rows.append((key, f"{value:.6g}"))
            elif isinstance(value, int) and not isinstance(value, bool):
                rows.append((key, str(value)))
    return rows


def final_table(info: dict[str, Any], record: dict[str, Any] | None,
                stream: TextIO | None = None) -> None:
    """Print the job's final numbers as a table (rich when there, else aligned text)."""
    stream = stream or sys.stdout
    rows = table_rows(info, record)
    if rich is not None and hasattr(stream, "isatty") and stream.isatty():
        table = rich.table.Table(title=info.get("name") or None)
        table.add_column("")
        table.add_column("value", justify="right")
        for name, value in rows:
            table.add_row(name, value)
        rich.console.Console(file=stream).print(table)
        return
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}", file=stream)


def watch(job: Any, *, stream: TextIO | None = None, quiet: bool = False,
          timeout: float | None = None, interrupted: Callable[[], bool] | None = None,
          ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Follow `job` (a playground Job) over its stream with a progress bar until it ends;
    (its final state, its last epoch record). `quiet`: no bar. KeyboardInterrupt passes, and
    is raised after an event once `interrupted()` says a Ctrl-C came (one that Python had to
    drop, raised inside a finalizer, still stops the watch)."""
    from playground import events

    bar: Progress | None = None
    last: dict[str, Any] | None = None
    try:
        for event in job.stream(snapshots=False, timeout=timeout):
            if isinstance(event, events.Hello):
                total = (event.spec.get("training") or {}).get("epochs")
                if not quiet:
                    bar = Progress(total, description=event.status.get("status", "training"),
                                   stream=stream)
                points = event.metrics
            elif isinstance(event, events.Metrics):
                points = event.points
            else:
                points = []
                if isinstance(event, events.Status) and bar is not None:
                    bar.status(event.status)
            if points:
                last = points[-1]
                if bar is not None:
                    bar.update(last)
            if interrupted is not None and interrupted():
                raise KeyboardInterrupt
    finally:
        if bar is not None:
            bar.close()
    info = job.refresh()
    return info, last or info.get("metrics")
