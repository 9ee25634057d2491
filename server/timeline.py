"""The timeline (issue 16, "See why"): which epochs keep a picture, and taking it.

Every job keeps, with its history, the main view of its model at some epochs (for 2-D points
the decision boundary on the live frame's 100x100 grid; for images, sequences and tables the
predictions, feature maps, hidden states or attention of the stream's `detail: "boundary"`
frame), so a run can be scrubbed back after a reload or a restart.

The scheme (pure functions, the same for every job, so two runs keep the same epochs):
- epoch 0 (the initial weights, taken before the first batch), and
- epoch e >= 1 when e is a multiple of `spacing(e, density)`: every epoch below
  2 x `density`, then `density` pictures per doubling of the epoch count (epochs 32 to 63
  every 2nd, 64 to 127 every 4th, ... for density 16), so the start of a run, where the
  boundary moves most, is dense and the whole run stays covered;
- `density` starts at `DENSITY` (16) and halves whenever the scheme would keep more than
  `MAX_KEPT` - 1 pictures up to the job's epoch (about epoch 46,000 for 16); the pictures the
  sparser scheme drops are deleted then (each sparser scheme keeps a subset of the denser);
- the last epoch of a run that ended (its epoch budget, early stopping), so the scrubber's
  end is the result; an earlier such picture outside the scheme is dropped then.
So a job keeps at most `MAX_KEPT` (200) pictures: `kept_epochs(last)` lists them.

Taking them (`Timeline`, engine thread): the engine ends a job's slice where the next kept
epoch ends (`limit`), so a job that trains alone is pictured exactly at the end of each kept
epoch; `initial` notes epoch 0 before the first batch. A family's slice is not cut (its
members end their epochs at different steps: a staggered class would be cut at every
member's kept epoch); `after` notes every kept epoch a member's slice completed with the
weights the family snapshotted at that epoch's end (`DenseFamily.state_at`), so members are
pictured exactly too (a family without such snapshots: the latest kept epoch, with the weights
at the slice's end, the picture's step says which). Noting copies the model's state dict;
`drain` draws the pictures (the frame `server.engine.snapshot.Snapshots` builds with
`detail: "boundary"`, from the timeline's own `Snapshots`, so the live frames' budget and
counters are untouched) within
`SHARE` of the engine's time while jobs train, and all of them when none does. They are
stored zlib-compressed by `server.timeline_store.TimelineStore`, which also deletes them with
their job, epoch or reset. A failure is logged once and skipped: training never stops for a
picture.

Measured by bench/timeline_bench.py (whole runs of 300 epochs, engine CPU time).
"""

from __future__ import annotations

import functools
import logging
import math
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from server.engine.snapshot import FrameBudget, Snapshots
from server.timeline_store import TimelineStore

log = logging.getLogger("playground.engine")

DENSITY = 16  # pictures per doubling of the epoch count, at first
MAX_KEPT = 200  # pictures per job at most, epoch 0 and a run's last epoch included
SHARE = 0.02  # of the engine's time for drawing pictures while jobs train
MAX_PENDING = 2000  # pictures waiting to be drawn while jobs train, at most (then thinned)


def spacing(epoch: int, density: int = DENSITY) -> int:
    """The distance between kept epochs around `epoch` (1 below 2 x density)."""
    if epoch < 1:
        return 1
    octave = epoch.bit_length() - 1  # 2**octave <= epoch < 2**(octave + 1)
    return max(1, (1 << octave) // density)


def kept(epoch: int, density: int = DENSITY) -> bool:
    return epoch == 0 or epoch % spacing(epoch, density) == 0


@functools.lru_cache(maxsize=8192)
def count(last: int, density: int = DENSITY) -> int:
    """How many epochs of 0..last the scheme of `density` keeps."""
    n = 1 if last >= 0 else 0
    for octave in range(max(0, last).bit_length()):
        low, high = 1 << octave, min((1 << (octave + 1)) - 1, last)
        n += (high - low) // max(1, low // density) + 1
    return n


@functools.lru_cache(maxsize=8192)
def density_for(last: int) -> int:
    """The densest scheme that keeps at most MAX_KEPT - 1 pictures up to epoch `last` (one
    place is left for a run's last epoch)."""
    density = DENSITY
    while density > 1 and count(last, density) > MAX_KEPT - 1:
        density //= 2
    return density


def wanted(epoch: int) -> bool:
    """Whether the scheme keeps `epoch` once the job has reached it."""
    return kept(epoch, density_for(epoch))


def kept_epochs(last: int) -> list[int]:
    """The scheme's epochs of 0..last (without a finished run's extra last epoch)."""
    density = density_for(last)
    return [e for e in range(last + 1) if kept(e, density)]


def next_wanted(epoch: int) -> int:
    """The first epoch >= `epoch` (>= 1) that the scheme keeps."""
    epoch = max(1, epoch)
    while True:
        step = spacing(epoch, density_for(epoch))
        candidate = -(-epoch // step) * step
        if wanted(candidate):
            return candidate
        epoch = candidate + 1


def batches_to_next(trainer: Any) -> int | None:
    """Batches from now to the end of the next epoch the scheme keeps, or None when the
    trainer does not say where it is in its epoch."""
    n_train, pos = getattr(trainer, "n_train", None), getattr(trainer, "_pos", None)
    size = getattr(trainer, "batch_size", None)
    if not n_train or pos is None or not size:
        return None
    n_train, size = int(n_train), int(size)
    left = max(1, math.ceil((n_train - int(pos)) / size))  # to the current epoch's end
    epoch = int(trainer.epoch) + 1  # the epoch under way
    return left + (next_wanted(epoch) - epoch) * math.ceil(n_train / size)


class Moment:
    """What `Snapshots.frame` reads of a trainer, at a kept epoch (one per trainer, so that the
    frame's context, the grid on the device, is made once)."""

    __slots__ = ("__weakref__", "epoch", "learning_rate", "loss_name", "model", "shape", "step")

    def __init__(self, trainer: Any) -> None:
        self.model, self.shape, self.loss_name = trainer.model, trainer.shape, trainer.loss_name
        self.epoch = self.step = 0
        self.learning_rate = 0.0


@dataclass
class Pending:
    """A kept epoch whose picture is not drawn yet: the model's state at that epoch's end, and
    what drawing it needs (the model and data stay alive with it, even after the trainer is
    freed at the run's end)."""

    job: Any
    run: int  # the job's run (a reset starts another): a picture of an older run is dropped
    moment: Moment
    dataset: Any
    trainer: weakref.ref
    key: int  # the kept epoch it stands for
    epoch: int  # the epochs and steps its weights have done (past `key` in a family)
    step: int
    learning_rate: float
    # the model's state dict at that epoch's end (a copy), or a function that makes it (a
    # family member's: DenseFamily.state_at)
    state: dict[str, torch.Tensor] | Callable[[], dict[str, torch.Tensor]]
    thin: bool


def _copy_into(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Write `state` into the model's own tensors (a family member's are views into its
    family's buffer: they are written through)."""
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            tensor.detach().copy_(state[name])


class Timeline:
    """Takes and keeps the pictures of the engine's jobs (worker thread only)."""

    def __init__(self, store) -> None:
        self.store = TimelineStore.of(store)
        # Own contexts and budget: the live frames' budget and counters are untouched.
        self.snapshots = Snapshots(FrameBudget(share=1.0))  # its own: never holds a picture
        self.budget = FrameBudget(share=SHARE)  # the whole drawing (copies, frame, store)
        self.enabled = True
        self.taken = 0  # pictures kept (bench, tests)
        self.dropped = 0  # pictures left out because too many waited (bench, tests)
        self.pending: deque[Pending] = deque()
        self._moments: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._runs: dict[str, int] = {}  # job id -> its run's number
        self._failing = False
        self._density: dict[str, int] = {}  # job id -> the density it was last thinned to

    # -- where slices end ---------------------------------------------------------------------

    def limit(self, trainer: Any, n: int) -> int:
        """`n` batches, or fewer so that the slice ends where the next kept epoch ends (a
        run's last epoch ends a slice anyway)."""
        if not self.enabled or trainer is None:
            return n
        try:
            left = batches_to_next(trainer)
        except (AttributeError, TypeError, ValueError):  # a trainer that does not say
            return n
        return n if left is None else min(n, left)

    def limit_family(self, trainers: list, n: int) -> int:
        """A family's slice is not cut: its members' epochs end at different steps, and a
        class of staggered members would cut it at every member's kept epoch (measured:
        +54% engine time for ten jobs). `after` pictures its members from the weights the
        family kept at each epoch end."""
        return n

    # -- noting the kept epochs ---------------------------------------------------------------

    def initial(self, job: Any) -> None:
        """Epoch 0, before the first batch of a (new or reset) run."""
        trainer = job.trainer
        if self.enabled and trainer is not None and getattr(trainer, "step", None) == 0:
            self._runs[job.id] = self._runs.get(job.id, 0) + 1
            self._note(job, trainer, 0, thin=False)

    def after(self, job: Any, records: list[dict]) -> None:
        """After training that completed `records`: the picture of the last one, when the
        training ended exactly at that epoch's end and the scheme keeps it (or the run ended
        there)."""
        trainer = job.trainer
        if not (self.enabled and records and trainer is not None and not job.unwritten):
            return
        epoch = int(trainer.epoch)
        exact = (getattr(trainer, "batch_in_epoch", None) == 0
                 and int(records[-1].get("epoch", -1)) == epoch)
        finished = exact and bool(trainer.finished)
        family = getattr(trainer, "family", None)
        if family is not None and hasattr(family, "state_at"):
            # A family member's weights at each epoch end of the slice were snapshotted: every
            # kept epoch of the slice (and the run's last), exactly.
            for record in records:
                key = int(record.get("epoch", -1))
                last = finished and key == epoch
                if wanted(key) or last:
                    self._note(job, trainer, key, at=family.state_at(trainer, key),
                               thin=last or self._density.get(job.id) != density_for(key))
            return
        if exact and (wanted(epoch) or finished):
            key = epoch
        else:  # a family's slice passed kept epochs: the latest of them, pictured now
            key = max((int(r["epoch"]) for r in records if wanted(int(r.get("epoch", -1)))),
                      default=None)
            if key is None:
                return
        self._note(job, trainer, key,
                   thin=finished or self._density.get(job.id) != density_for(key))

    def _note(self, job: Any, trainer: Any, key: int, thin: bool,
              at: tuple[int, dict] | None = None) -> None:
        try:
            self._keep(job, trainer, key, thin, at)
        except Exception as exc:  # a trainer that cannot be pictured trains on all the same
            if not self._failing:
                log.warning("timeline of job %s: picture not kept: %r", job.id, exc)
            self._failing = True

    def _keep(self, job: Any, trainer: Any, key: int, thin: bool,
              at: tuple[int, dict] | None = None) -> None:
        """Note the picture of kept epoch `key`: the model's weights now, or `at` (the step
        and state dict at that epoch's end, a family member's snapshot)."""
        moment = self._moments.get(trainer)
        if moment is None:
            moment = self._moments[trainer] = Moment(trainer)
        moment.model = trainer.model  # the weights move on with the next batch: a copy
        if at is not None:
            (step, state), epoch = at, key
        else:
            state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            step, epoch = int(trainer.step), int(trainer.epoch)
        self.pending.append(Pending(job, self._runs.get(job.id, 0), moment, job.dataset,
                                    weakref.ref(trainer), key, epoch, step,
                                    float(trainer.learning_rate or 0.0), state, thin))

    # -- drawing them ---------------------------------------------------------------------------

    def drain(self, jobs: dict, busy: bool) -> None:
        """Draw the pictures noted, oldest first: while jobs train (`busy`) within the budget
        (SHARE of the engine's time, the copies, the frame and the store write counted; past
        MAX_PENDING waiting the queue is thinned), else all."""
        if busy and len(self.pending) >= MAX_PENDING:
            self._thin_pending()
        while self.pending:
            if busy and not self.budget.allows():
                return
            p = self.pending.popleft()
            if (jobs.get(p.job.id) is p.job and self._runs.get(p.job.id, 0) == p.run
                    and int(p.job.step) >= p.step):
                started = time.thread_time()
                self._draw(p)  # else deleted, reset or rewound since: not a picture of its run
                self.budget.spend(time.thread_time() - started)

    def _thin_pending(self) -> None:
        """More pictures wait than the budget draws (a large class in its first epochs, where
        every epoch is kept): those a sparser scheme (4, 16 times, then one per doubling of
        the epoch) leaves out are dropped until half the queue is free, so the pictures kept
        stay a subset of the scheme's and training keeps its speed; past that the oldest."""
        before = len(self.pending)
        for sparser in (4, 16, DENSITY):  # density / 4, / 16, then one per doubling
            self.pending = deque(p for p in self.pending if p.key == 0 or p.thin
                                 or kept(p.key, max(1, density_for(p.key) // sparser)))
            if len(self.pending) <= MAX_PENDING // 2:
                break
        while len(self.pending) > MAX_PENDING // 2:  # still too many: the oldest go
            self.pending.popleft()
        self.dropped += before - len(self.pending)

    def _draw(self, p: Pending) -> None:
        moment, model = p.moment, p.moment.model
        moment.epoch, moment.step, moment.learning_rate = p.epoch, p.step, p.learning_rate
        trainer = p.trainer()
        moved = trainer is None or trainer.model is not model or int(trainer.step) != p.step
        live = None
        try:
            if moved:  # its weights of then, for this picture
                live = {k: v.detach().clone() for k, v in model.state_dict().items()}
                _copy_into(model, p.state() if callable(p.state) else p.state)
            frame = self.snapshots.frame(moment, p.dataset,
                                         {"job_id": p.job.id, "detail": "boundary"})
            self.store.put(p.job.id, p.key, p.step, frame)
        except (sqlite3.Error, OSError, RuntimeError, ValueError, KeyError) as exc:
            if not self._failing:  # once, not once per epoch
                log.warning("timeline of job %s: picture not kept: %s", p.job.id, exc)
            self._failing = True
            return
        finally:
            if live is not None:
                _copy_into(model, live)
        self._failing = False
        self.taken += 1
        if p.thin:
            density = density_for(p.key)
            self._thin(p.job.id, p.key, density)
            self._density[p.job.id] = density

    def _thin(self, job_id: str, epoch: int, density: int) -> None:
        """Drop what the scheme no longer keeps: after the density halved (or the first
        picture since the engine started), and when a run ends (an earlier run-end picture
        outside the scheme goes)."""
        try:
            self.store.drop(job_id, [e for e, _ in self.store.epochs(job_id)
                                     if e != epoch and not kept(e, density)])
        except sqlite3.Error as exc:
            log.warning("timeline of job %s: thinning failed: %s", job_id, exc)
