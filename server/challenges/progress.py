"""The board: every challenge run's standing against its goal, kept up to date from the
engine's metric events, and where the app finds it.

`listener(app, forward)` wraps the hub's `on_event` (main.py passes it to the engine): each
event goes to the hub first, then a `metrics` event of a challenge job updates its run: the
first epoch that meets the goal (within the goal's max_epochs) is written at once, the best
and latest values at most once a second and when the job stops. `board_of(app)` opens the
board (and its SQLite file, storage.py) on first use. Runs live in memory as well (the
results read them there); SQLite is what a restart reads back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from server.challenges import rules
from server.challenges.storage import ChallengeStore

log = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0
FINAL = ("paused", "completed", "stopped", "failed", "deleted")
PROGRESS = ("met_epoch", "met_value", "best_value", "best_epoch", "latest_value", "latest_epoch")


class Board:
    """The challenges' store and the live standing of every run (by job id)."""

    def __init__(self, path: Path) -> None:
        self.store = ChallengeStore(path)
        self._lock = threading.Lock()
        self._goals = {c["id"]: c["goal"] for c in self.store.all()}
        self._runs = {r["job_id"]: r for r in self.store.runs() if r["challenge_id"] in self._goals}
        self._saved_at: dict[str, float] = {}
        self._dirty: set[str] = set()

    # -- what the routes change -----------------------------------------------------------

    def added(self, challenge: dict) -> None:
        with self._lock:
            self._goals[challenge["id"]] = challenge["goal"]

    def deleted(self, challenge_id: str) -> None:
        self.store.delete(challenge_id)
        with self._lock:
            self._goals.pop(challenge_id, None)
            for job_id in [j for j, r in self._runs.items() if r["challenge_id"] == challenge_id]:
                del self._runs[job_id]

    def add_run(self, run: dict) -> None:
        """A new job on a challenge (before the engine trains it: no epoch is missed)."""
        run = {**dict.fromkeys(PROGRESS), **run}
        self.store.add_run(run)
        with self._lock:
            self._runs[run["job_id"]] = run

    def runs_of(self, challenge_id: str) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._runs.values() if r["challenge_id"] == challenge_id]

    def run(self, job_id: str) -> dict | None:
        with self._lock:
            run = self._runs.get(job_id)
            return dict(run) if run else None

    # -- the engine's events (event loop) -------------------------------------------------

    def on_event(self, event) -> None:
        kind = event.type
        if kind not in ("metrics", "status"):
            return
        with self._lock:
            run = self._runs.get(event.job_id)
            if run is None:
                return
            goal = self._goals.get(run["challenge_id"])
            write = False
            if kind == "metrics" and goal is not None:
                write = self._update(run, goal, event.records)
            elif kind == "status" and event.epoch == 0 and run["latest_epoch"] is not None:
                # The job was reset (new weights, epoch 0): its standing starts again.
                run.update(dict.fromkeys(PROGRESS))
                self._dirty.add(event.job_id)
                write = True
            due = event.job_id in self._dirty and (
                write or kind == "status" and event.status in FINAL
                or time.monotonic() - self._saved_at.get(event.job_id, 0.0) >= FLUSH_SECONDS)
            if due:
                self._dirty.discard(event.job_id)
                self._saved_at[event.job_id] = time.monotonic()
                snapshot = dict(run)
        if due:
            try:
                self.store.save_progress(snapshot)
            except Exception:  # a full disk: kept in memory, written with the next change
                self._dirty.add(event.job_id)
                log.exception("could not save challenge run %s", event.job_id)

    def _update(self, run: dict, goal: dict, records: list[dict]) -> bool:
        """Fold epoch records into `run`; True when the goal was met just now."""
        metric, op, target = goal["metric"], goal["op"], goal["value"]
        limit = goal.get("max_epochs")
        met_now = False
        for record in records:
            epoch, value = record.get("epoch"), record.get(metric)
            if not isinstance(epoch, int) or not isinstance(value, int | float):
                continue
            run["latest_value"], run["latest_epoch"] = float(value), epoch
            self._dirty.add(run["job_id"])
            if limit is not None and epoch > limit:
                continue
            if rules.better(float(value), run["best_value"], op):
                run["best_value"], run["best_epoch"] = float(value), epoch
            if run["met_epoch"] is None and rules.meets(float(value), op, target):
                run["met_epoch"], run["met_value"] = epoch, float(value)
                met_now = True
        return met_now


_open_lock = threading.Lock()


def board_of(app) -> Board:
    """The app's board, opened on first use (`<data_dir>/challenges.sqlite3`)."""
    board = getattr(app.state, "challenges", None)
    if board is None:
        with _open_lock:
            board = getattr(app.state, "challenges", None)
            if board is None:
                path = Path(app.state.settings.data_dir).resolve() / "challenges.sqlite3"
                board = app.state.challenges = Board(path)
    return board


def listener(app, forward: Callable) -> Callable:
    """An engine event callback: `forward` (the hub's) first, then the board."""

    def on_event(event) -> None:
        forward(event)
        try:
            board_of(app).on_event(event)
        except Exception:  # never let the challenges stop the stream
            log.exception("challenge board failed on %s", type(event).__name__)

    return on_event
