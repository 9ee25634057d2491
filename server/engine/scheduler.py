"""The fair-share scheduler: which job trains next, for how long, and whose command runs next.

Pure: no threads, no torch, no clock of its own. It reads jobs (anything with `status`,
`charge`, `seq`, `spec`, `slices`, `cost_key`, `seconds_per_batch`) from the mapping it is
given and changes only their scheduling fields; the engine measures time and applies the rest.

- Virtual clock: `job.charge`, the device seconds a job used. The next job is the running one
  with the least charge (`next_job`); a job that starts running joins at the running jobs'
  clock (`min_charge`): not starved for having run before, no burst for having waited.
- Cost estimates (`charge`): a job is charged its steps times the recent cost of a step of its
  shape (`cost_key`: same data, model, batch size, loss and optimizer), averaged over the jobs
  of that shape, so equal jobs make equal progress on a noisy machine and a costly job pays
  for its cost. A job's first WARMUP_SLICES slices pay one-time costs and are not counted.
- Slice size (`batches`): `time_slice_ms`, shorter when many jobs run so each gets a turn about
  every ROTATION_S, never below MIN_SLICE_S; in batches from the job's recent time per batch.
- Places (`start_status`, `to_promote`): at most `max_running_jobs` run; the others queue,
  and are promoted oldest first.
- Commands (issue 12): waiting commands are kept per job id (`add_command`); each is charged
  (its wall time) to the job it names, on the job's clock while it runs, else on a command
  clock never behind the running jobs'. `next_command` picks the least-charged job's command;
  while jobs train, a job whose clock is ahead of every running job's waits: a client flooding
  one job with commands gets about one share of the worker, like one more training job.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.spec.job import JobSpec

WARMUP_SLICES = 2  # a job's first slices pay one-time costs: not counted in its step cost
COST_DECAY = 0.98  # per slice: a step's cost follows about the last 50 slices
ROTATION_S = 0.1  # with many jobs, slices shrink so each job gets a turn this often
MIN_SLICE_S = 0.002
MAX_BATCHES = 100_000


def cost_key(spec: JobSpec) -> str:
    """What decides the cost of a step: jobs with the same key share one cost estimate."""
    training = spec.training
    return json.dumps([spec.dataset.model_dump(mode="json"), spec.model.model_dump(mode="json"),
                       training.batch_size, training.loss, training.optimizer.name],
                      sort_keys=True)


def running(jobs: Mapping[str, Any]) -> list:
    return [j for j in jobs.values() if j.status == "running"]


class Scheduler:
    """Decisions over the job table the engine passes in; the state here is only the step
    cost estimates and the waiting commands with their clocks."""

    def __init__(self, time_slice_ms: float, max_running_jobs: int) -> None:
        self.time_slice_ms = time_slice_ms
        self.max_running_jobs = max_running_jobs
        # shape of job -> [device seconds, steps], both decaying: the recent cost of a step
        self.step_costs: dict[str, list[float]] = {}
        self.backlog: dict[str, deque] = {}  # job id -> commands waiting for their turn
        self.command_charge: dict[str, float] = {}  # the command clock of jobs not running

    # -- training --------------------------------------------------------------------------

    def next_job(self, jobs: Mapping[str, Any]) -> Any:
        """The running job with the least charge (the oldest on a tie), or None."""
        candidates = running(jobs)
        return min(candidates, key=lambda j: (j.charge, j.seq)) if candidates else None

    def min_charge(self, jobs: Mapping[str, Any]) -> float:
        charges = [j.charge for j in running(jobs)]
        return min(charges) if charges else 0.0  # charges only compare among running jobs

    def slice_seconds(self, jobs: Mapping[str, Any], units: int | None = None) -> float:
        """time_slice_ms, shortened when many units run (jobs, or a family for all of its
        jobs: `units`) so that each gets a turn about every ROTATION_S (smooth progress and
        frames); never below MIN_SLICE_S."""
        configured = self.time_slice_ms / 1000.0
        count = len(running(jobs)) if units is None else units
        return min(configured, max(MIN_SLICE_S, ROTATION_S / max(1, count)))

    def charge_share(self, job: Any, seconds: float) -> None:
        """A family member's clock advances by its share of the family's slice."""
        job.slices += 1
        job.charge += seconds

    def batches(self, job: Any, jobs: Mapping[str, Any], units: int | None = None,
                shared: bool = False) -> int:
        """How many batches `job` (or a family) trains in its next slice (1 until its speed
        is known). `shared`: the slice serves several jobs at once (a family): at least a
        whole rotation divided among the units running."""
        if job.seconds_per_batch <= 0:
            return 1
        seconds = self.slice_seconds(jobs, units)
        if shared:
            seconds = max(seconds, min(ROTATION_S, ROTATION_S / max(1, units or 1)))
        return max(1, min(MAX_BATCHES, int(seconds / job.seconds_per_batch)))

    def timed(self, job: Any, wall: float, batches: int) -> None:
        """Note that `batches` took `wall` seconds: the next slice is sized from it."""
        per_batch = wall / batches
        job.seconds_per_batch = (per_batch if job.seconds_per_batch <= 0
                                 else 0.7 * job.seconds_per_batch + 0.3 * per_batch)

    def charge(self, job: Any, seconds: float, steps: int, weight: int = 1) -> None:
        """Advance the job's clock by `steps` at the recent average cost per step of jobs of
        its shape (see the module docstring); `seconds` is what the slice measured. `weight`:
        the owner's running jobs, so that one owner's 10 jobs share one owner's part."""
        job.slices += 1
        if not job.cost_key:
            job.cost_key = cost_key(job.spec)
        cost = self.step_costs.setdefault(job.cost_key, [0.0, 0.0])
        if job.slices > WARMUP_SLICES:
            cost[0] = cost[0] * COST_DECAY + seconds
            cost[1] = cost[1] * COST_DECAY + steps
        if cost[1] > 0:
            job.charge += steps * cost[0] / cost[1] * weight

    # -- places ----------------------------------------------------------------------------

    def start_status(self, jobs: Mapping[str, Any]) -> str:
        """The status of a job made runnable now: running if there is a place, else queued."""
        return "running" if len(running(jobs)) < self.max_running_jobs else "queued"

    def to_promote(self, jobs: Mapping[str, Any]) -> list:
        """The queued jobs that fill the free running places, oldest first."""
        queued = sorted((j for j in jobs.values() if j.status == "queued"), key=lambda j: j.seq)
        return queued[: max(0, self.max_running_jobs - len(running(jobs)))]

    # -- commands --------------------------------------------------------------------------

    def add_command(self, key: str, command: Any) -> None:
        self.backlog.setdefault(key, deque()).append(command)

    def waiting(self) -> int:
        """Commands in the backlog (safe to call from another thread)."""
        return sum(len(q) for q in list(self.backlog.values()))

    def account(self, key: str, jobs: Mapping[str, Any], floor: float) -> float:
        """The clock a job's commands are charged on: its training clock while it runs,
        else its command clock, never behind the running jobs' (`floor`)."""
        job = jobs.get(key)
        if job is not None and job.status == "running":
            # A family member trains when its family does: its commands wait for the
            # family's turn, not for its own clock (commands may have put it ahead of the
            # others, and the family's members advance together).
            family = getattr(job, "family_charge", None)
            return job.charge if family is None else min(job.charge, family)
        charge = max(self.command_charge.get(key, floor), floor)
        self.command_charge[key] = charge
        return charge

    def next_command(self, jobs: Mapping[str, Any]) -> tuple[str, Any, float] | None:
        """(job id, command, floor) of the command to run now, taken off the backlog, or None
        when none may run before the next slice; pass `floor` back to `charge_command`."""
        if not self.backlog:
            return None
        floor = self.min_charge(jobs)
        key = min(self.backlog, key=lambda k: self.account(k, jobs, floor))
        if running(jobs) and self.account(key, jobs, floor) > floor:
            return None
        waiting = self.backlog[key]
        command = waiting.popleft()
        if not waiting:
            del self.backlog[key]
        return key, command, floor

    def charge_command(self, key: str, jobs: Mapping[str, Any], seconds: float,
                       floor: float) -> None:
        """Charge a command's `seconds` to the job `key` names (after it ran)."""
        job = jobs.get(key)
        if job is not None and job.status == "running":
            job.charge += seconds
        elif job is not None or key in self.backlog:
            self.command_charge[key] = self.command_charge.get(key, floor) + seconds
        if key not in self.backlog and self.command_charge.get(key, 0.0) <= floor:
            self.command_charge.pop(key, None)  # no debt left: forget the account

    def forget(self, key: str) -> None:
        """The job is deleted: its command clock goes."""
        self.command_charge.pop(key, None)

    def take_all(self) -> list:
        """Every waiting command, the backlog emptied (shutdown)."""
        commands = [c for waiting in self.backlog.values() for c in waiting]
        self.backlog.clear()
        return commands
