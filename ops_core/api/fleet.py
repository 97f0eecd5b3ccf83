"""A fleet of targets: ASH of many targets from one process, snapshots of many targets in
parallel (bounded), and the stable split of targets into shards for Prefect work pools."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from .. import repository
from ..collectors.ash import MIN_INTERVAL_S
from ..collectors.ash_fleet import MODES, FleetSampler, FleetStats, FleetTarget
from ..config import get_settings
from ..errors import InvalidInput, OpsCoreError
from ..model.target import Target
from ..repository import fleet as repo_fleet
from .snapshots import take_snapshot
from .targets import get_target, list_targets, target_dsn

__all__ = [
    "FleetStats",
    "FleetSnapshot",
    "run_ash_fleet",
    "snapshot_fleet",
    "shard_of",
    "shard_targets",
    "tag_target",
]

_TAG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,30}")
_TAG_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}")
#: the shard of the targets without the tag a fleet is split by: ``KEY-untagged``
UNTAGGED = "untagged"


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
    mode: str = "burst",
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


def shard_targets(
    shards: int = 1, targets: list[str] | None = None, *, by_tag: str | None = None
) -> dict[str, list[str]]:
    """Targets (default: every registered one) split into shards: ``shard-0`` ..
    ``shard-{K-1}`` by :func:`shard_of`, or with ``by_tag`` one shard per value of that tag
    (``env-prod``, ``env-test``; targets without the tag in ``env-untagged``), so a target
    moves to another shard when its tag changes and to no other otherwise."""
    found = _targets(targets)
    if by_tag is None:
        out: dict[str, list[str]] = {f"shard-{i}": [] for i in range(shards)}
        for t in found:
            out[f"shard-{shard_of(t.name, shards)}"].append(t.name)
        return out
    _check_key(by_tag)
    if shards != 1:
        raise InvalidInput(
            f"Shard either by tag {by_tag!r} or into {shards} shards by hash, not both.",
            "Give --shard-tag KEY alone (one shard per value), or --shards K alone.",
        )
    by_value: dict[str, list[str]] = {}
    for t in found:
        by_value.setdefault(f"{by_tag}-{t.tags.get(by_tag, UNTAGGED)}", []).append(t.name)
    return dict(sorted(by_value.items()))


def _check_key(key: str) -> None:
    if not _TAG_KEY.fullmatch(key or ""):
        raise InvalidInput(
            f"{key!r} is not a tag key.",
            "A key is a letter then up to 30 letters, digits, '_' or '.', e.g. env or region.",
        )


def tag_target(
    name: str, tags: dict[str, str] | None = None, remove: list[str] | None = None
) -> Target:
    """Set the ``tags`` (key -> value) of a target and remove the keys in ``remove``; the other
    tags stay. Sharding by tag (``opscore deploy --shard-tag KEY``) follows the new values on
    the next deploy."""
    tags, remove = dict(tags or {}), list(remove or [])
    if not tags and not remove:
        raise InvalidInput("No tag to set or remove.", "Give KEY=VALUE pairs or --remove KEY.")
    for key, value in tags.items():
        _check_key(key)
        if not _TAG_VALUE.fullmatch(value or "") or value == UNTAGGED:
            raise InvalidInput(
                f"{value!r} is not a value for tag {key!r}.",
                "A value is a letter or digit then up to 40 letters, digits, '_', '.' or '-' "
                f"(not {UNTAGGED!r}, the shard of targets without the tag).",
            )
    for key in remove:
        _check_key(key)
    both = set(tags) & set(remove)
    if both:
        raise InvalidInput(f"Tag {sorted(both)[0]!r} is both set and removed.", "Pick one.")
    target = get_target(name)
    with repository.session() as conn:
        target.tags = repo_fleet.set_tags(conn, target.target_id, tags, remove)
    return target
