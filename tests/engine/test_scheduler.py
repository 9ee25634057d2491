"""The fair-share scheduler on its own (issue 13): no threads, no torch, no clock; jobs are
plain records and time is what the test says it was."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from server.engine.scheduler import (
    MIN_SLICE_S,
    ROTATION_S,
    WARMUP_SLICES,
    Scheduler,
    cost_key,
)
from server.spec.job import JobSpec


@dataclass
class J:
    id: str
    status: str = "running"
    seq: int = 0
    charge: float = 0.0
    slices: int = 0
    cost_key: str = ""
    seconds_per_batch: float = 0.0
    spec: JobSpec = field(default_factory=lambda: JobSpec.model_validate(
        {"dataset": {"name": "xor"}, "model": {"layers": []}, "training": {"batch_size": 10}}))


def table(*jobs: J) -> dict[str, J]:
    return {j.id: j for j in jobs}


def test_the_next_job_is_the_running_one_with_the_least_charge_oldest_on_a_tie():
    s = Scheduler(time_slice_ms=50, max_running_jobs=4)
    jobs = table(J("a", seq=0, charge=2.0), J("b", seq=1, charge=1.0),
                 J("c", seq=2, charge=1.0), J("d", seq=3, charge=0.0, status="paused"))
    assert s.next_job(jobs).id == "b"
    assert s.min_charge(jobs) == 1.0
    assert s.next_job(table(J("p", status="paused"))) is None
    assert s.min_charge({}) == 0.0


def test_equal_jobs_are_charged_the_shared_average_cost_per_step_after_warm_up():
    s = Scheduler(time_slice_ms=50, max_running_jobs=4)
    a, b = J("a"), J("b")
    for _ in range(WARMUP_SLICES):  # warm-up slices are not counted in the estimate
        s.charge(a, seconds=9.0, steps=10)
    assert a.charge == 0.0 and a.cost_key == cost_key(a.spec)
    s.charge(a, seconds=1.0, steps=10)  # 0.1 s a step
    assert a.charge == pytest.approx(1.0)
    for _ in range(WARMUP_SLICES):
        s.charge(b, seconds=5.0, steps=10)  # b's own slow warm-up is charged at the average
    assert b.charge == pytest.approx(2.0)
    s.charge(b, seconds=3.0, steps=10)  # a noisy slice moves the shared average a little
    expected = 10 * (1.0 * 0.98 + 3.0) / (10 * 0.98 + 10)
    assert b.charge == pytest.approx(2.0 + expected)


def test_a_costlier_shape_has_its_own_estimate():
    s = Scheduler(time_slice_ms=50, max_running_jobs=4)
    small, large = J("s"), J("l", spec=JobSpec.model_validate(
        {"dataset": {"name": "xor"}, "model": {"layers": []}, "training": {"batch_size": 100}}))
    for _ in range(WARMUP_SLICES + 1):
        s.charge(small, seconds=1.0, steps=10)
        s.charge(large, seconds=10.0, steps=10)
    assert large.charge == pytest.approx(10 * small.charge)


def test_slices_shrink_with_many_running_jobs_and_are_sized_in_batches():
    s = Scheduler(time_slice_ms=50, max_running_jobs=100)
    one = table(J("a"))
    many = table(*(J(str(i)) for i in range(10)))
    crowd = table(*(J(str(i)) for i in range(1000)))
    assert s.slice_seconds(one) == 0.05
    assert s.slice_seconds(many) == pytest.approx(ROTATION_S / 10)
    assert s.slice_seconds(crowd) == MIN_SLICE_S
    job = J("a")
    assert s.batches(job, one) == 1  # speed unknown yet
    s.timed(job, wall=0.01, batches=1)
    assert job.seconds_per_batch == 0.01 and s.batches(job, one) == 5
    s.timed(job, wall=0.04, batches=2)  # 0.02 a batch: a moving average
    assert job.seconds_per_batch == pytest.approx(0.7 * 0.01 + 0.3 * 0.02)
    job.seconds_per_batch = 1e-9
    assert s.batches(job, one) == 100_000


def test_places_run_up_to_the_limit_and_queued_jobs_are_promoted_oldest_first():
    s = Scheduler(time_slice_ms=50, max_running_jobs=2)
    jobs = table(J("a"), J("q2", status="queued", seq=5), J("q1", status="queued", seq=3))
    assert s.start_status(jobs) == "running"
    assert [j.id for j in s.to_promote(jobs)] == ["q1"]
    jobs["b"] = J("b")
    assert s.start_status(jobs) == "queued"
    assert s.to_promote(jobs) == []


def test_commands_run_least_charged_job_first_and_a_flooder_waits_its_turn():
    s = Scheduler(time_slice_ms=50, max_running_jobs=4)
    jobs = table(J("run", charge=10.0), J("idle", status="paused"))
    s.add_command("run", "run-0")  # on a tie, the job that has waited longest goes first
    for n in range(3):
        s.add_command("idle", f"idle-{n}")
    assert s.waiting() == 4
    key, command, floor = s.next_command(jobs)
    assert (key, command, floor) == ("run", "run-0", 10.0)
    s.charge_command(key, jobs, seconds=0.5, floor=floor)
    assert jobs["run"].charge == 10.5  # charged on its training clock
    key, command, floor = s.next_command(jobs)  # the idle job joins at the running clock
    assert (key, command, floor) == ("idle", "idle-0", 10.5)
    s.charge_command(key, jobs, seconds=0.25, floor=floor)
    assert s.command_charge["idle"] == 10.75
    assert s.next_command(jobs) is None  # ahead of every running job while one trains: waits
    jobs["run"].charge = 11.0  # the running job trained: the idle job's turn again
    key, command, floor = s.next_command(jobs)
    assert command == "idle-1"
    s.charge_command(key, jobs, seconds=0.5, floor=floor)
    assert s.next_command(jobs) is None
    jobs["run"].status = "paused"  # nothing trains: commands run at once
    assert s.next_command(jobs)[1] == "idle-2"


def test_without_training_every_command_runs_and_a_paid_account_is_forgotten():
    s = Scheduler(time_slice_ms=50, max_running_jobs=4)
    jobs = table(J("a", status="paused"))
    s.add_command("a", 1)
    s.add_command("a", 2)
    key, _, floor = s.next_command(jobs)
    s.charge_command(key, jobs, seconds=1.0, floor=floor)
    key, _, floor = s.next_command(jobs)  # ahead of the others, but nothing trains
    s.charge_command(key, jobs, seconds=1.0, floor=floor)
    assert s.next_command(jobs) is None and s.waiting() == 0
    assert s.command_charge == {"a": 2.0}
    s.forget("a")
    assert s.command_charge == {}
    s.add_command("gone", 3)  # a command for a job that does not exist still runs
    key, _, floor = s.next_command(jobs)
    s.charge_command(key, jobs, seconds=0.0, floor=floor)
    assert key == "gone" and s.command_charge == {}
    s.add_command("x", 4)
    assert s.take_all() == [4] and s.waiting() == 0


def test_an_owner_with_three_running_jobs_gets_one_owners_share():
    # One student's 3 jobs against another's 1: charged 3x per step each, so over the same
    # device time the lone student's job makes as much progress as the three together.
    s = Scheduler(time_slice_ms=50, max_running_jobs=8)
    many = [J(f"m{i}", seq=i) for i in range(3)]
    lone = J("lone", seq=3)
    jobs = table(*many, lone)
    steps = {j.id: 0 for j in jobs.values()}
    for _ in range(WARMUP_SLICES + 400):
        job = s.next_job(jobs)
        s.charge(job, 0.001, 10, weight=3 if job.id.startswith("m") else 1)
        steps[job.id] += 10
    assert steps["lone"] == pytest.approx(sum(steps[j.id] for j in many), rel=0.05)


def test_a_family_member_is_charged_its_share():
    s = Scheduler(time_slice_ms=50, max_running_jobs=8)
    job = J("a", charge=1.0)
    s.charge_share(job, 0.25)
    assert job.charge == 1.25 and job.slices == 1


def test_a_family_alone_gets_a_whole_rotation_per_slice():
    # A family's slice serves all its jobs: alone it runs ROTATION_S between two looks at
    # the commands, not time_slice_ms (fewer, larger chunks: its epoch-end evaluations batch).
    s = Scheduler(time_slice_ms=20, max_running_jobs=64)
    jobs = table(*(J(f"j{i}") for i in range(30)))

    family = J("family", seconds_per_batch=0.001)
    assert s.batches(family, jobs, units=1, shared=True) == round(ROTATION_S / 0.001)
    assert s.batches(J("solo", seconds_per_batch=0.001), jobs, units=1) == 20
