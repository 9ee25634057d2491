"""Which running jobs train together, as families (server.train.family), in the engine thread.

`Families.regroup(jobs)` runs before each scheduling decision: the running jobs whose trainers
are built and share a `family_key` form one family (at most MAX_SIZE jobs each; a lone job is
a family of one, which is faster than the plain trainer too). Nothing is rebuilt while the set
of running jobs stays the same. `of(job)` is the family a job trains in, or None.
`detach(job)` takes a job's family apart before a command touches the job (its trainer is then
exactly as if it had trained alone; the next regroup forms the family again), `sync(job)`
writes a member's optimizer state into its trainer before a checkpoint. `stats()` is what
/metrics shows: families, their sizes and steps/s.
With `enabled` false (settings.families) every job trains alone, as before families.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from server.train.family import DenseFamily, family_key
from server.train.vmap_family import VmapFamily, vmap_key

log = logging.getLogger("playground.engine")

MAX_SIZE = 128


class Families:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.families: list[DenseFamily] = []
        self._of: dict[str, DenseFamily] = {}
        self._signature: tuple = ()
        self._keys: dict[int, Any] = {}  # id(trainer) -> its family key (None: alone)
        self._since: dict[int, float] = {}  # id(family) -> when it was formed

    def of(self, job) -> DenseFamily | None:
        family = self._of.get(job.id)
        if family is None or job.trainer is None or getattr(job.trainer, "family",
                                                             None) is not family:
            return None
        return family

    def members(self, family: DenseFamily, jobs: dict) -> list:
        return [j for j in (jobs.get(i) for i, f in self._of.items() if f is family)
                if j is not None]

    def _key(self, trainer) -> Any:
        marker = id(trainer)
        if marker not in self._keys:
            try:
                # Dense networks on points first; else same-architecture CNN/attention jobs.
                self._keys[marker] = family_key(trainer) or vmap_key(trainer)
            except Exception:  # a trainer the key does not understand trains alone
                log.exception("family key failed")
                self._keys[marker] = None
        return self._keys[marker]

    def regroup(self, jobs: dict) -> None:
        if not self.enabled:
            return
        running = [j for j in jobs.values() if j.status == "running" and j.trainer is not None
                   and not j.trainer.finished]
        if self._signature_of(running) == self._signature:
            return
        live = {id(j.trainer) for j in jobs.values() if j.trainer is not None}
        self._keys = {k: v for k, v in self._keys.items() if k in live}
        groups: dict[Any, list] = {}
        for job in sorted(running, key=lambda j: j.seq):
            key = self._key(job.trainer)
            if key is not None:
                groups.setdefault(key, []).append(job)
        parts = [members[start:start + MAX_SIZE] for members in groups.values()
                 for start in range(0, len(members), MAX_SIZE)]
        # A vmap family of one is slower than its job alone (bench/vmap_family_bench.py).
        parts = [p for p in parts if len(p) > 1 or self._key(p[0].trainer)[0] != "vmap"]
        # A family whose members are exactly one of the wanted parts stays as it is; the
        # others give their members back, and the parts left are formed anew.
        existing = {frozenset(id(m.trainer) for m in f.members): f
                    for f in self.families if f.members}
        kept, wanted = [], []
        for part in parts:
            family = existing.pop(frozenset(id(j.trainer) for j in part), None)
            (kept if family is not None else wanted).append((part, family))
        for family in existing.values():
            family.release()
        self.families = [family for _part, family in kept]
        self._of = {job.id: family for part, family in kept for job in part}
        self._since = {id(f): self._since.get(id(f), time.monotonic()) for f in self.families}
        for part, _none in wanted:
            try:
                kind = VmapFamily if self._key(part[0].trainer)[0] == "vmap" else DenseFamily
                family = kind([j.trainer for j in part])
            except Exception:
                log.exception("family could not be formed; its jobs train alone")
                continue
            self.families.append(family)
            self._since[id(family)] = time.monotonic()
            # One clock for the family: its members advance together from here on, so a
            # member ahead would stay ahead and its commands would never get a turn.
            low = min(j.charge for j in part)
            for job in part:
                self._of[job.id] = family
                job.charge = job.family_charge = low
        for job in jobs.values():
            if job.id not in self._of:
                job.family_charge = None
        self._signature = self._signature_of(running)

    def _signature_of(self, running: list) -> tuple:
        """What the families were formed from: the running jobs, their trainers, and whether
        each is still in the family it was put in (a released family is formed again)."""
        return tuple(sorted((j.id, id(j.trainer), getattr(j.trainer, "family", None) is not None
                             and getattr(j.trainer, "family", None) is self._of.get(j.id))
                            for j in running))

    def release_all(self) -> None:
        for family in self.families:
            family.release()
        self.families = []
        self._of = {}
        self._since = {}
        self._signature = ()

    def detach(self, job) -> None:
        """Before a command touches `job`: its family is taken apart (re-formed at the next
        regroup; the other families go on as they are)."""
        family = self._of.get(job.id) if job is not None else None
        if family is not None:
            job.family_charge = None
            family.release()
            self.families = [f for f in self.families if f is not family]
            self._of = {i: f for i, f in self._of.items() if f is not family}
            self._signature = ()

    def sync(self, job) -> None:
        family = self.of(job)
        if family is not None:
            family.sync(job.trainer)

    def units(self, jobs: dict) -> int | None:
        """What the scheduler rotates between: each family once, each other running job;
        None when no family runs (it counts the running jobs itself)."""
        if not self.families:
            return None
        solo = sum(1 for j in jobs.values() if j.status == "running" and j.id not in self._of)
        return solo + len(self.families)

    def stats(self) -> dict:
        """{"count", "sizes", "steps_per_second"} of the families now (per family: the
        member-steps per second since it was formed)."""
        now = time.monotonic()
        rates = []
        families = list(self.families)  # read from the event loop's thread: a copy
        for family in families:
            since = self._since.get(id(family), now)
            elapsed = max(1e-9, now - since)
            rates.append(round(family.steps * family.k / elapsed, 1))
        return {"count": len(families), "sizes": [f.k for f in families],
                "steps_per_second": rates}
