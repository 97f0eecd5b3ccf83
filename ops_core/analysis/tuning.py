"""Self-tuning judgement: a PGTune-like baseline from the host (RAM, CPUs, connections) refined
by workload evidence, the bounded range a change may take, and the verdict of a trial (the
same statements, per call, before and after). Pure: no server, no repository.

The baseline follows PGTune's "mixed" profile: shared_buffers = RAM/4, effective_cache_size =
3/4 RAM, maintenance_work_mem = RAM/16 capped at 2 GB, work_mem = (RAM - shared_buffers) /
(3 x max_connections) / parallel workers per gather (at least 4 MB), max_wal_size 4 GB,
parallel workers from the CPU count. Without the host's memory (a remote server) the memory
parameters have no baseline and say so; storage-dependent ones (random_page_cost,
effective_io_concurrency) are not recommended without knowing the storage.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Host",
    "TunableParameter",
    "TrialVerdict",
    "to_base",
    "fmt_memory",
    "recommend",
    "bounds",
    "judge_trial",
]

KB, MB, GB = 1024, 1024**2, 1024**3
_UNITS = {"B": 1, "kB": KB, "MB": MB, "GB": GB, "TB": 1024**4, "8kB": 8 * KB, "16kB": 16 * KB}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
MEMORY = frozenset(
    {"shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem",
     "max_wal_size", "min_wal_size"}
)  # fmt: skip


@dataclass(frozen=True)
class Host:
    ram_bytes: int | None
    cpus: int | None
    #: where the figures come from ("this host (psutil)", "given: --ram-gb 64", or why none)
    source: str


def to_base(value: str, unit: str | None) -> float:
    """A parameter value (as ``SHOW`` prints it or as a user writes it: '128MB', '4GB', '30s',
    '0.9', '100') in base units: bytes for memory, seconds for time, else the number."""
    v = value.strip()
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*([a-zA-Z0-9]*)", v)
    if not m:
        raise ValueError(f"{value!r} is not a number with an optional unit")
    num, suffix = float(m.group(1)), m.group(2)
    if suffix in _UNITS:
        return num * _UNITS[suffix]
    if suffix in _TIME:
        return num * _TIME[suffix]
    if suffix:
        raise ValueError(f"unknown unit {suffix!r} in {value!r}")
    # a bare number is in the parameter's own unit (pg_settings.unit)
    if unit in _UNITS:
        return num * _UNITS[unit]
    if unit in _TIME:
        return num * _TIME[unit]
    return num


def fmt_memory(n: float) -> str:
    """Bytes as a PostgreSQL memory value: whole GB when it divides, else MB (at least 1MB),
    kB under 1 MB."""
    n = int(n)
    if n >= GB and (n % GB == 0 or n >= 8 * GB):
        return f"{n // GB}GB"  # large values in whole GB (rounded down)
    if n >= MB:
        return f"{max(1, round(n / MB))}MB"
    return f"{max(64, n // KB)}kB"


@dataclass
class TunableParameter:
    name: str
    value: str  # as the server shows it
    unit: str | None
    context: str  # postmaster (restart) / sighup (reload) / user, superuser (per database)
    source: str
    #: what self-tuning would set, None when it keeps the value (or cannot tell)
    recommended: str | None
    baseline: str | None
    #: ok / change / restart (a recommendation that needs a restart) / pinned / unknown
    status: str
    evidence: list[str] = field(default_factory=list)
    pinned: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _baseline(host: Host, settings: dict[str, dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    conns = int(float(settings.get("max_connections", {}).get("setting", 100) or 100))
    cpus = host.cpus
    per_gather = 2
    if cpus:
        per_gather = max(1, min(4, cpus // 2))
        out["max_worker_processes"] = str(max(8, cpus))
        out["max_parallel_workers"] = str(cpus)
        out["max_parallel_workers_per_gather"] = str(per_gather)
        out["max_parallel_maintenance_workers"] = str(max(1, min(4, cpus // 2)))
    if host.ram_bytes:
        ram = host.ram_bytes
        sb = ram // 4
        out["shared_buffers"] = fmt_memory(sb)
        out["effective_cache_size"] = fmt_memory(ram * 3 // 4)
        out["maintenance_work_mem"] = fmt_memory(min(ram // 16, 2 * GB))
        out["work_mem"] = fmt_memory(max(4 * MB, (ram - sb) // (3 * conns) // per_gather))
    out["max_wal_size"] = "4GB"
    out["min_wal_size"] = "1GB"
    out["checkpoint_completion_target"] = "0.9"
    return out


def recommend(
    settings: list[dict],
    evidence: dict[str, Any],
    host: Host,
    pinned: dict[str, str] | None = None,
) -> list[TunableParameter]:
    """Each tunable parameter with its baseline and what the evidence says. ``settings``:
    rows of ``collectors.tuning.settings``; ``evidence``: ``collectors.tuning.evidence``."""
    pins = pinned or {}
    by_name = {s["name"]: s for s in settings}
    base = _baseline(host, by_name)
    hours = max((evidence.get("seconds") or 0) / 3600.0, 1e-9)
    out: list[TunableParameter] = []
    for s in settings:
        name, unit = s["name"], s["unit"]
        cur = to_base(s["setting"], unit)
        b = base.get(name)
        ev: list[str] = []
        rec: str | None = None
        if b is not None and name not in MEMORY:
            if abs(to_base(b, unit) - cur) > 1e-9 and name in (
                "checkpoint_completion_target",
                "max_parallel_workers_per_gather",
                "max_parallel_maintenance_workers",
            ):
                rec = b
                ev.append(f"baseline for {host.cpus} CPU(s)" if "parallel" in name else "baseline")
        if name == "work_mem":
            temp_files = evidence.get("temp_files") or 0
            if temp_files > 0:
                ev.append(
                    f"{temp_files} temporary file(s), {int(evidence.get('temp_bytes') or 0):,} "
                    f"bytes since the statistics reset ({temp_files / hours:.1f} files/hour): "
                    "sorts and hashes spill to disk"
                )
                target = max(cur * 2, to_base(b, None) if b else cur * 2)
                cap = to_base(b, None) * 4 if b else 256 * MB
                rec = fmt_memory(min(target, cap))
            elif b and cur < to_base(b, None) / 4:
                ev.append("no temporary files: no evidence it needs more")
        elif name == "max_wal_size":
            req = evidence.get("checkpoints_requested") or 0
            timed = evidence.get("checkpoints_timed") or 0
            timeout = to_base(
                by_name.get("checkpoint_timeout", {}).get("setting", "300"),
                by_name.get("checkpoint_timeout", {}).get("unit", "s"),
            )
            wal = evidence.get("wal_bytes")
            per_window = wal / max(evidence.get("seconds") or 1, 1) * timeout if wal else None
            # requested checkpoints also come from CREATE DATABASE, base backups and CHECKPOINT:
            # only WAL written faster than max_wal_size per checkpoint_timeout says it is small
            if req >= 3 and req > 0.1 * (req + timed) and per_window and per_window >= cur / 2:
                ev.append(
                    f"{req} of {req + timed} checkpoints were requested and "
                    f"{fmt_memory(per_window)} of WAL is written per checkpoint_timeout on "
                    f"average: WAL fills max_wal_size before the timeout"
                )
                rec = fmt_memory(min(cur * 2, 64 * GB))
            elif req >= 3 and req > 0.1 * (req + timed):
                ev.append(
                    f"{req} of {req + timed} checkpoints were requested, but WAL volume "
                    f"({fmt_memory(per_window or 0)} per checkpoint_timeout) does not fill "
                    "max_wal_size: CREATE DATABASE, base backups or CHECKPOINT commands"
                )
            elif b and cur < to_base(b, None) and req > 0:
                ev.append(f"{req} requested checkpoint(s) of {req + timed}")
        elif name == "shared_buffers":
            hit, read = evidence.get("blks_hit") or 0, evidence.get("blks_read") or 0
            ratio = hit / (hit + read) if hit + read else None
            if ratio is not None:
                ev.append(f"buffer hit ratio {ratio * 100:.2f} % since the statistics reset")
            if b and ratio is not None and ratio < 0.99 and cur < to_base(b, None):
                rec = b
        elif name in ("effective_cache_size", "maintenance_work_mem") and b:
            if cur < to_base(b, None) / 2:
                rec = b
                ev.append(f"below half of the baseline for {fmt_memory(host.ram_bytes or 0)} RAM")
        elif name == "autovacuum_vacuum_scale_factor":
            bloated = evidence.get("bloated_tables") or 0
            if bloated and cur >= 0.1:
                rec = "0.05"
                ev.append(
                    f"{bloated} table(s) with more than 20 % dead rows: autovacuum starts late"
                )
        elif name in ("random_page_cost", "effective_io_concurrency"):
            ev.append("depends on the storage (SSD or disks), which opscore cannot see: kept")
        if b is None and name in MEMORY and name not in ("max_wal_size", "min_wal_size"):
            ev.append(f"no baseline: {host.source}")
        if rec is not None and abs(to_base(rec, unit) - cur) < 1e-9:
            rec = None
        status = "ok" if rec is None else ("restart" if s["context"] == "postmaster" else "change")
        if name in pins:
            status, rec = "pinned", None
        out.append(
            TunableParameter(
                name=name,
                value=s["value"],
                unit=unit,
                context=s["context"],
                source=s["source"],
                recommended=rec,
                baseline=b,
                status=status,
                evidence=ev,
                pinned=pins.get(name),
            )
        )
    return out


def bounds(p: TunableParameter, setting: dict) -> tuple[float, float]:
    """The range self-tuning may move a parameter in by itself (base units): memory between a
    quarter of the lower and four times the higher of (current, baseline); other numbers
    between a quarter and four times the current value; never outside pg_settings' min/max."""
    unit = setting["unit"]
    cur = to_base(setting["setting"], unit)
    ref = [cur] + ([to_base(p.baseline, unit)] if p.baseline else [])
    lo, hi = min(ref) / 4, max(ref) * 4
    if setting.get("min_val") not in (None, ""):
        lo = max(lo, to_base(setting["min_val"], unit))
    if setting.get("max_val") not in (None, ""):
        hi = min(hi, to_base(setting["max_val"], unit))
    return lo, hi


@dataclass
class TrialVerdict:
    verdict: str  # kept / rolled_back / measuring
    before_ms_per_call: float | None
    after_ms_per_call: float | None
    statements: int
    note: str


def judge_trial(
    before: list[dict], after: list[dict], tolerance_pct: float, min_calls: int = 5
) -> TrialVerdict:
    """Compare the statements run in both intervals (each row: queryid, calls, total_ms).

    The after interval's mean time per call of each statement is weighted by its calls before,
    so a change in the workload's mix does not pass for a change in speed: the figure is what
    the same work costs now. Worse by more than ``tolerance_pct``: rolled back."""
    b = {r["queryid"]: r for r in before if (r["calls"] or 0) >= min_calls}
    a = {r["queryid"]: r for r in after if (r["calls"] or 0) >= min_calls}
    common = [q for q in b if q in a]
    if not common:
        return TrialVerdict(
            "measuring", None, None, 0, "no statement ran often enough in both intervals yet"
        )
    weight = sum(b[q]["calls"] for q in common)
    before_ms = sum(b[q]["total_ms"] for q in common) / weight
    after_ms = sum(a[q]["total_ms"] / a[q]["calls"] * b[q]["calls"] for q in common) / weight
    change = (after_ms / before_ms - 1) * 100 if before_ms > 0 else 0.0
    if change > tolerance_pct:
        return TrialVerdict(
            "rolled_back",
            before_ms,
            after_ms,
            len(common),
            f"the same statements took {change:+.0f} % per call ({before_ms:.3f} -> "
            f"{after_ms:.3f} ms over {len(common)} statements): worse than the "
            f"{tolerance_pct:.0f} % tolerance",
        )
    return TrialVerdict(
        "kept",
        before_ms,
        after_ms,
        len(common),
        f"the same statements took {change:+.0f} % per call ({before_ms:.3f} -> "
        f"{after_ms:.3f} ms over {len(common)} statements): within {tolerance_pct:.0f} %",
    )
