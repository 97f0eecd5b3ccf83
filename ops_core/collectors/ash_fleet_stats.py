"""What a fleet ASH run did: its targets, per-target counters and the sample-time skew."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["FleetTarget", "TargetStats", "FleetStats"]


@dataclass(frozen=True)
class FleetTarget:
    target_id: int
    name: str
    dsn: str


@dataclass
class TargetStats:
    """One target's share of a fleet run."""

    target: str
    samples: int = 0
    rows_sampled: int = 0
    rows_written: int = 0
    rows_dropped: int = 0
    missed: int = 0  # ticks skipped: the previous sample had not answered yet
    errors: int = 0
    last_error: str | None = None
    last_sample_time: datetime | None = None
    state: str = "starting"  # sampling | backoff | busy (another sampler) | lost
    failures: int = 0  # consecutive
    retry_at: float = 0.0  # monotonic time of the next attempt while in backoff

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "retry_at"}
        return d


@dataclass
class FleetStats:
    """What a fleet run did, in total and per target, with the sample-time skew."""

    mode: str
    interval_s: float
    targets: dict[str, TargetStats] = field(default_factory=dict)
    ticks: int = 0
    flushes: int = 0
    copies: int = 0
    rows_written: int = 0
    flush_errors: int = 0
    rows_unwritten: int = 0  # still buffered when the run ended (the repository was down)
    last_flush_error: str | None = None
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU of this process while the run lasted
    #: the sampling part of the run (ticks and periodic flushes, not the final flush)
    sampling_s: float = 0.0
    sampling_cpu_s: float = 0.0
    interrupted: bool = False
    skew_ms: deque = field(default_factory=lambda: deque(maxlen=200_000), repr=False)
    #: how late this process started each tick (its own scheduling delay, part of the skew)
    dispatch_ms: deque = field(default_factory=lambda: deque(maxlen=100_000), repr=False)
    #: how late this process sent each target's sample query after its tick (the collector's
    #: share of the skew; the rest is the target starting the query)
    send_ms: deque = field(default_factory=lambda: deque(maxlen=200_000), repr=False)

    def skew(self, q: float) -> float | None:
        """Quantile ``q`` of the sample-time skew in ms (sample time minus its tick)."""
        return _quantile(self.skew_ms, q)

    def dispatch(self, q: float) -> float | None:
        """Quantile ``q`` of the tick dispatch delay in ms."""
        return _quantile(self.dispatch_ms, q)

    def send(self, q: float) -> float | None:
        """Quantile ``q`` of the delay in ms from a tick to its sample query being sent."""
        return _quantile(self.send_ms, q)

    @property
    def samples(self) -> int:
        return sum(t.samples for t in self.targets.values())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.targets.values()) + self.flush_errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "interval_s": self.interval_s,
            "targets": {k: v.as_dict() for k, v in self.targets.items()},
            "ticks": self.ticks,
            "samples": self.samples,
            "flushes": self.flushes,
            "copies": self.copies,
            "rows_written": self.rows_written,
            "errors": self.errors,
            "flush_errors": self.flush_errors,
            "rows_unwritten": self.rows_unwritten,
            "last_flush_error": self.last_flush_error,
            "elapsed_s": self.elapsed_s,
            "cpu_s": self.cpu_s,
            "sampling_s": self.sampling_s,
            "sampling_cpu_s": self.sampling_cpu_s,
            "skew_p50_ms": self.skew(0.5),
            "skew_p99_ms": self.skew(0.99),
            "dispatch_p99_ms": self.dispatch(0.99),
            "send_p50_ms": self.send(0.5),
            "send_p99_ms": self.send(0.99),
            "interrupted": self.interrupted,
        }


def _quantile(values, q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]
