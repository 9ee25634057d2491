"""A token bucket per client key, shared by the REST rate limit, the wrong-attempt limits of
the classroom and the stream's limit on new connections. Imports nothing from the server."""

from __future__ import annotations

import time


class RateLimiter:
    """A token bucket per client key: `burst` at once, then `rate` a second."""

    MAX_KEYS = 20_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds until `key` may go again (0: now), taking nothing."""
        if self.rate <= 0 or key not in self._buckets:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets[key]
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go, else the seconds to wait before trying again."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.MAX_KEYS:  # forget clients whose bucket is full again
            full = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
        return 0.0
