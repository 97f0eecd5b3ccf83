"""A fleet of targets: ASH of many targets from one process, snapshots of many targets in
parallel (bounded), and the stable split of targets into shards for Prefect work pools."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from ..collectors.ash import MIN_INTERVAL_S
from ..collectors.ash_fleet import MODES, FleetSampler, FleetStats, FleetTarget
from ..config import get_settings
from ..errors import InvalidInput, OpsCoreError
from .snapshots import take_snapshot
from .targets import get_target, list_targets, target_dsn

__all__ = [
    "FleetStats",
    "FleetSnapshot",
    "run_ash_fleet",
    "snapshot_fleet",
    "shard_of",
    "shard_targets",
]


def _targets(names: list[str] | None) -> list:
    if names:
        if len(set(names)) != len(names):
            raise InvalidInput("A target is named twice.", "Name each target once.")
        return [get_target(n) for n in names]
    found = list_targets()
    if not found:
        raise InvalidInput(
            "No targets are registered: nothing to sample.", "Add one: opscore target add NAME DSN"
        )
    return found


def run_ash_fleet(
    targets: list[str] | None = None,
    *,
    duration_s: float | None = None,
    interval_s: float | None = None,
    mode: str = "async",
    stop: threading.Event | None = None,
    on_flush: Callable[[FleetStats], None] | None = None,
    flush_interval_s: float | None = None,
    include_opscore: bool | None = None,
    lease_wait_s: float = 0.0,
) -> FleetStats:
    """Sample every registered target (or the given ones) from this one process until
    ``duration_s``, ``stop`` or Ctrl-C: one monitoring connection per target, one COPY per
    flush for all of them. A target another sampler holds is left out (its stats say
    ``busy``); a target that fails is retried with backoff while the others go on."""
    if mode not in MODES:
        raise InvalidInput(f"Unknown sampler mode {mode!r}.", f"Use one of: {', '.join(MODES)}.")
    if duration_s is not None and not duration_s > 0:
        raise InvalidInput(f"The duration must be positive, not {duration_s}.")
    s = get_settings()
    interval = s.ash_interval_s if interval_s is None else interval_s
    if not MIN_INTERVAL_S <= interval <= 3600:
        raise InvalidInput(
            f"The sampling interval must be from {MIN_INTERVAL_S} to 3600 seconds, not {interval}.",
            "1 second is the usual interval.",
        )
    chosen = [FleetTarget(t.target_id, t.name, target_dsn(t)) for t in _targets(targets)]
    sampler = FleetSampler(
        chosen,
        interval_s=interval,
        flush_interval_s=flush_interval_s or s.ash_flush_interval_s,
        mode=mode,
        include_opscore=s.include_opscore_activity if include_opscore is None else include_opscore,
        text_max=s.ash_query_text_max,
        on_flush=on_flush,
    )
    return sampler.run(duration_s=duration_s, stop=stop, lease_wait_s=lease_wait_s)


@dataclass
class FleetSnapshot:
    """One target's result in a fleet snapshot."""

    target: str
    status: str  # ok | partial | failed
    snapshot_id: int | None
    target_ms: float | None
    total_ms: float | None
    error: str | None = None
    is_baseline: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def _one_snapshot(name: str) -> FleetSnapshot:
    from .snapshots import SnapshotFailed

    try:
        info = take_snapshot(name)
    except SnapshotFailed as exc:
        return FleetSnapshot(
            name, "failed", exc.info.snapshot_id, None, None, exc.message, exc.info.is_baseline
        )
    except OpsCoreError as exc:
        return FleetSnapshot(name, "failed", None, None, None, exc.message)
    return FleetSnapshot(
        name,
        info.status,
        info.snapshot_id,
        info.target_ms,
        info.total_ms,
        info.error,
        info.is_baseline,
    )


def snapshot_fleet(targets: list[str] | None = None, concurrency: int = 4) -> list[FleetSnapshot]:
    """Snapshot every registered target (or the given ones), at most ``concurrency`` at a
    time; a target that fails is recorded (a failed snapshot with its reason) and the others
    go on. Results in the order of the targets."""
    if not 1 <= concurrency <= 64:
        raise InvalidInput(
            f"concurrency must be from 1 to 64, not {concurrency}.",
            "Each concurrent snapshot holds one target and one repository connection.",
        )
    names = [t.name for t in _targets(targets)]
    with ThreadPoolExecutor(min(concurrency, len(names)), thread_name_prefix="snap") as pool:
        return list(pool.map(_one_snapshot, names))


def shard_of(name: str, shards: int) -> int:
    """The shard of a target: a stable hash of its name (the same on every machine and run,
    unlike Python's ``hash``), so adding a target never moves the others."""
    if shards < 1:
        raise InvalidInput(f"The number of shards must be at least 1, not {shards}.")
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_targets(shards: int, targets: list[str] | None = None) -> dict[str, list[str]]:
    """Targets (default: every registered one) split into ``shard-0`` .. ``shard-{K-1}`` by
    :func:`shard_of`."""
    names = [t.name for t in _targets(targets)]
    out: dict[str, list[str]] = {f"shard-{i}": [] for i in range(shards)}
    for n in names:
        out[f"shard-{shard_of(n, shards)}"].append(n)
    return out
