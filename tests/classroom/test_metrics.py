"""GET /metrics: Prometheus text that says what the server is doing, and the rate limiter."""

from __future__ import annotations

import json
import re
import time

from server.api.prometheus import StepRate
from server.ratelimit import RateLimiter

LINE = re.compile(r'^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+]+|NaN)$')


def scrape(room) -> dict[str, float]:
    with room.http(room.teacher()) as c:  # class mode: /metrics is the teacher's
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    values, typed = {}, set()
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"not Prometheus text: {line!r}"
        assert match.group(1) in typed, f"{match.group(1)} has no # TYPE"
        values[line.rsplit(" ", 1)[0]] = float(match.group(4))
    return values


def test_metrics_follow_training_and_streams(room):
    ada = room.join("Ada")
    job = room.create(ada)["id"]  # running, no epoch limit
    try:
        first = scrape(room)
        assert first['playground_jobs{state="running"}'] >= 1
        with room.http(ada) as c:  # one refused request, counted by reason
            c.post(f"/api/jobs/{job}/control", json={"action": "pause"},
                   headers={"Origin": "http://evil.example"})
        with room.ws(job, ada) as ws:
            while not isinstance(ws.recv(timeout=15), bytes):
                pass
            during = scrape(room)
            ws.send(json.dumps({"type": "ack"}))
        time.sleep(0.5)
        later = scrape(room)
        assert during["playground_stream_clients"] >= 1
        assert during["playground_websockets_open"] >= 1
        assert later["playground_frames_sent_total"] >= 1
        assert later["playground_training_steps_total"] > first["playground_training_steps_total"]
        assert later["playground_steps_per_second"] > 0
        assert later['playground_requests_refused_total{reason="origin"}'] >= 1
        assert later["playground_frames_dropped_total"] >= 0
        assert "playground_queue_length" in later
        assert "playground_engine_commands_pending" in later
    finally:
        with room.http(ada) as c:
            c.post(f"/api/jobs/{job}/control", json={"action": "stop"})


def test_step_rate_never_runs_backwards():
    rate = StepRate()
    rate.sample({"a": {"step": 100}}, now=0.0)
    rate.sample({"a": {"step": 150}, "b": {"step": 10}}, now=1.0)
    assert (rate.total, rate.rate) == (160, 60.0)
    rate.sample({"b": {"step": 20}}, now=2.0)  # a deleted, b counts on
    rate.sample({"b": {"step": 0}}, now=3.0)  # b reset: no negative steps
    assert (rate.total, rate.rate) == (170, 0.0)


def test_rate_limiter_buckets():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == 0.5  # wait half a second for the next token
    assert limiter.take("b", now=0.0) == 0.0  # another client has its own bucket
    assert limiter.take("a", now=0.5) == 0.0
    assert RateLimiter(rate=0, burst=1).take("a") == 0.0  # 0: no limit
