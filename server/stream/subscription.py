"""What one stream client asked for: `Subscription` (snapshots, their rate and detail; metrics,
only some names, at a slower rate, a few points a message) and the checks of its options,
each raising ValueError with the sentence the client gets (`metric_fields`, `points_cap`,
`metrics_rate`). The hub (server.stream.hub) keeps one per channel and shapes each metrics
message with `Subscription.shape`.
"""

from __future__ import annotations

from dataclasses import dataclass

METRICS_INTERVAL = 0.1  # seconds between two metrics messages to one client
MAX_PENDING_POINTS = 2_000  # a frozen client's unsent metric points are capped here (~2 KB each)


MAX_FIELDS = 32  # names a subscription's `fields` may list
ALWAYS_SENT = frozenset({"epoch", "step"})  # kept in every metric point, whatever `fields` says


@dataclass
class Subscription:
    """What one client wants: snapshots at most `hz` a second, and metrics (only the names in
    `fields` of each point, when set; at most `metrics_hz` messages a second, when set)."""

    snapshots: bool = True
    hz: float = 10.0
    metrics: bool = True
    detail: str = "full"  # "boundary": only the main view (a tile on the wall or a sweep)
    fields: frozenset[str] | None = None  # None: every metric of a point
    metrics_hz: float | None = None  # None: 1 / METRICS_INTERVAL
    max_points: int | None = None  # None: every point that came since the last message

    def as_dict(self) -> dict:
        """The subscription as replies show it; `fields`, `metrics_hz` and `max_points` only
        once set."""
        shown = {"snapshots": self.snapshots, "hz": self.hz, "metrics": self.metrics,
                 "detail": self.detail}
        if self.fields is not None:
            shown["fields"] = sorted(self.fields)
        if self.metrics_hz is not None:
            shown["metrics_hz"] = self.metrics_hz
        if self.max_points is not None:
            shown["max_points"] = self.max_points
        return shown

    def shape(self, points: list[dict]) -> list[dict]:
        """The points of one metrics message as this client asked for them: at most
        `max_points`, evenly spread over the epochs they cover (the newest always in), each
        with only the names in `fields`."""
        m = self.max_points
        if m is not None and len(points) > m:
            last = len(points) - 1
            points = [points[last - (m - 1 - i) * last // max(1, m - 1)] for i in range(m)] \
                if m > 1 else points[-1:]
        if self.fields is not None:
            keep = self.fields
            points = [{k: v for k, v in p.items() if k in keep} for p in points]
        return points

    def metrics_interval(self) -> float:
        """Seconds between two metrics messages to this client."""
        return METRICS_INTERVAL if self.metrics_hz is None else 1.0 / self.metrics_hz


def metric_fields(value: object) -> frozenset[str] | None:
    """A subscription's `fields` (null, or a list of at most MAX_FIELDS metric names of 1-64
    characters); raises ValueError with the sentence for the client."""
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) > MAX_FIELDS
            or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value)):
        raise ValueError(f"fields must be null or a list of at most {MAX_FIELDS} metric names "
                         "(strings of 1 to 64 characters)")
    return frozenset(value) | ALWAYS_SENT


def points_cap(value: object) -> int | None:
    """A subscription's `max_points` (null, or a whole number from 1 to MAX_PENDING_POINTS);
    raises ValueError with the sentence for the client."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not \
            1 <= value <= MAX_PENDING_POINTS:
        raise ValueError(f"max_points must be null or a whole number from 1 to "
                         f"{MAX_PENDING_POINTS}")
    return value


def metrics_rate(value: object) -> float | None:
    """A subscription's `metrics_hz` (null: the default, or a number above 0, lowered to
    1 / METRICS_INTERVAL); raises ValueError with the sentence for the client."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError("metrics_hz must be null or a number above 0")
    return float(min(value, 1.0 / METRICS_INTERVAL))
