"""Where a job goes: pure decisions over what the actors last reported (no Ray, no threads).

Each actor's engine shares its time fairly between its running jobs (server/engine/scheduler.py:
equal device seconds per job), so a job placed on an actor with `n` active jobs trains at
about one step per `(n + 1) * cost` seconds, `cost` being what one of its steps costs *there*.
`choose` takes the actor where that is least: the measured load, not the number of jobs.
- `cost` is measured (server/cluster/actor.py `stats`: seconds per step of each active job; a
  family member's is its family's step divided among its members). On an actor that trains
  jobs of the same `cost_key` (data, model, batch size, loss, optimizer) it is their median
  there: a job that can join a family there costs a fraction of a lone one, so jobs that train
  together are placed together, as long as it pays against the other actors' queues.
- Elsewhere it is the cluster's median for that key (else for all jobs, else `DEFAULT_COST`),
  scaled by the actor's speed: its median step cost against the cluster's (a GPU machine's
  steps are cheaper than a laptop's).
- `active` counts the jobs placed there since its last report too.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

DEFAULT_COST = 1e-3  # seconds per step before anything is measured


@dataclass
class View:
    """What placement knows of one live actor."""

    name: str
    active: int  # running and queued jobs, and those placed since its last report
    jobs: int = 0  # every job it holds (a tie-breaker only)
    costs: list[tuple[str, float]] = field(default_factory=list)  # (cost key, s/step) measured


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def step_cost(view: View, key: str | None, views: list[View]) -> float:
    """The expected seconds per step of a job with `key` on `view`'s actor."""
    same = _median([c for k, c in view.costs if k == key])
    if same is not None:
        return same
    everywhere = [c for v in views for _k, c in v.costs]
    overall = _median(everywhere)
    base = _median([c for v in views for k, c in v.costs if k == key]) or overall
    if base is None:
        return DEFAULT_COST
    mine = _median([c for _k, c in view.costs])
    speed = mine / overall if mine is not None and overall else 1.0
    return base * speed


def choose(views: list[View], key: str | None) -> str | None:
    if not views:
        return None
    return min(views, key=lambda v: ((v.active + 1) * step_cost(v, key, views), v.jobs,
                                     v.name)).name


def estimate(views: list[View], name: str, key: str | None) -> float:
    """What a job with `key` placed on `name` is expected to cost per step (kept as pending
    until the actor reports the job)."""
    view = next(v for v in views if v.name == name)
    return step_cost(view, key, views)
