"""AWR report sections over object and host data: host/OS, settings, tables, indexes,
checkpoints and WAL. Pure (range aggregate in, frames out); assembled by :mod:`.awr`.

A section whose source was not captured says why (remote target, sizes not measured in the
range) instead of showing a number.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _moved(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    if df is None or df.empty:
        return df
    present = [c for c in cols if c in df.columns]
    mask = (df[present].fillna(0) != 0).any(axis=1)
    return df[mask].reset_index(drop=True)


# ------------------------------------------------------------------------------ host / OS
HOST_COLUMNS = ["metric", "value", "unit"]


def host(agg: Any, local: bool | None = None) -> tuple[pd.DataFrame, str | None]:
    """Host CPU, load, memory, disk and network of the interval (the host collector runs for
    same-host targets only: ``local`` says whether the target is one), and a note when there
    is nothing to show."""
    h = agg.cluster.get("host")
    if not h:
        if local is False:
            why = (
                f"Host figures are not available: {agg.target} is a remote target. opscore "
                "reads host CPU, load, memory and disk (psutil) only for targets on the host it "
                "runs on (the embedded server, a Unix socket or a loopback address); use the "
                "host's own monitoring for this server."
            )
        else:
            why = (
                f"Host figures are not available: no snapshot of {agg.target} in this range "
                "recorded them (snapshots taken before the host collector existed, or a "
                "target not on the opscore host)."
            )
        return pd.DataFrame(columns=HOST_COLUMNS), why
    g = h.get("_latest") or {}  # gauges as the newest snapshot read them (never summed)

    def counter(key: str) -> float | None:
        """A counter's sum over the interval: a delta of 0 is stored as NULL, so a counter the
        host reports (its raw reading is there) counts 0; one it lacks stays out."""
        return (_num(h, key) or 0.0) if g.get(key) is not None else None

    cpu = {k: counter(f"cpu_{k}") for k in ("user", "system", "idle", "iowait", "steal")}
    total = sum(v for v in cpu.values() if v)
    rows: list[tuple[str, float | None, str]] = [("CPUs", _num(g, "cpu_count"), "count")]
    for k, label in (
        ("user", "CPU user (incl. nice)"),
        ("system", "CPU system"),
        ("iowait", "CPU I/O wait"),
        ("steal", "CPU steal"),
        ("idle", "CPU idle"),
    ):
        if cpu[k] is not None:
            rows.append((label, cpu[k] / total * 100.0 if total else None, "%"))
    if total and cpu["user"] is not None and cpu["system"] is not None:
        busy_s = cpu["user"] + cpu["system"]
        rows.append(("CPU busy (user + system)", busy_s, "s"))
    for key, label in (("load1", "load average 1 min (end)"), ("load5", "load average 5 min"),
                       ("load15", "load average 15 min")):  # fmt: skip
        rows.append((label, _num(g, key), "load"))
    mem_total = _num(g, "mem_total")
    rows += [
        ("memory total", mem_total, "bytes"),
        ("memory available (end)", _num(g, "mem_available"), "bytes"),
        ("memory used (end)", _num(g, "mem_used"), "bytes"),
        ("swap used (end)", _num(g, "swap_used"), "bytes"),
    ]
    disk_total, disk_used = _num(g, "data_disk_total"), _num(g, "data_disk_used")
    if disk_total:
        rows += [
            ("data directory file system size", disk_total, "bytes"),
            ("data directory file system used", disk_used, "bytes"),
            ("data directory file system used %",
             (disk_used or 0) / disk_total * 100.0, "%"),
        ]  # fmt: skip
    rows += [
        ("disk read (all disks)", counter("disk_read_bytes"), "bytes"),
        ("disk written (all disks)", counter("disk_write_bytes"), "bytes"),
        ("disk reads", counter("disk_reads"), "count"),
        ("disk writes", counter("disk_writes"), "count"),
        ("network sent", counter("net_bytes_sent"), "bytes"),
        ("network received", counter("net_bytes_recv"), "bytes"),
    ]
    df = pd.DataFrame([r for r in rows if r[1] is not None], columns=HOST_COLUMNS)
    note = None
    if not disk_total:
        note = (
            "The data directory's file system size is not known: opscore could not read the "
            "data_directory setting (needs superuser or pg_read_all_settings) or stat it."
        )
    return df, note


# ------------------------------------------------------------------------------ settings
SETTINGS_COLUMNS = ["name", "setting", "unit", "source", "changed"]


def settings(values: list[dict[str, Any]] | None, changes: pd.DataFrame) -> pd.DataFrame:
    """Settings not at their default at the end snapshot (pg_settings.source <> 'default'),
    with ``changed`` set for the ones that differ from the begin snapshot."""
    if not values:
        return pd.DataFrame(columns=SETTINGS_COLUMNS)
    moved = set(changes["name"]) if changes is not None and not changes.empty else set()
    rows = [
        {
            "name": v.get("name"),
            "setting": v.get("setting"),
            "unit": v.get("unit"),
            "source": v.get("source"),
            "changed": "changed in the interval" if v.get("name") in moved else "",
        }
        for v in values
    ]
    return pd.DataFrame(rows, columns=SETTINGS_COLUMNS).sort_values("name", ignore_index=True)


# ------------------------------------------------------------------------------ objects
TABLE_COLS = [
    "datname",
    "schemaname",
    "relname",
    "seq_scan",
    "seq_tup_read",
    "idx_scan",
    "idx_tup_fetch",
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_hot_upd",
    "n_tup_del",
    "n_live_tup",
    "n_dead_tup",
    "vacuum_count",
    "autovacuum_count",
    "analyze_count",
    "autoanalyze_count",
    "heap_blks_read",
    "heap_blks_hit",
    "idx_blks_read",
    "idx_blks_hit",
]
INDEX_COLS = [
    "datname",
    "schemaname",
    "relname",
    "indexrelname",
    "idx_scan",
    "idx_tup_read",
    "idx_tup_fetch",
    "idx_blks_read",
    "idx_blks_hit",
    "index_bytes",
]


def tables(agg: Any, top: int = 25) -> pd.DataFrame:
    df = agg.tables
    if df is None or df.empty:
        return pd.DataFrame(columns=TABLE_COLS)
    df = _moved(df[[c for c in TABLE_COLS if c in df.columns]], TABLE_COLS[3:11] + TABLE_COLS[13:])
    return df.head(top)


def _with_sizes(df: pd.DataFrame, sizes: pd.DataFrame | None) -> pd.DataFrame:
    """Fill ``index_bytes`` the range did not measure from the newest measurement at or
    before its end (``sizes``: datname, indexrelid, index_bytes)."""
    if sizes is None or sizes.empty or df.empty or "indexrelid" not in df.columns:
        return df
    known = {(d, int(i)): b for d, i, b in sizes[["datname", "indexrelid", "index_bytes"]].values}
    df = df.copy()
    filled = [
        known.get((d, int(i))) if pd.isna(b) else b
        for d, i, b in zip(df["datname"], df["indexrelid"], df["index_bytes"], strict=True)
    ]
    df["index_bytes"] = pd.to_numeric(pd.Series(filled, index=df.index), errors="coerce")
    return df


def indexes(agg: Any, sizes: pd.DataFrame | None = None, top: int = 25) -> pd.DataFrame:
    """Indexes with activity in the interval, busiest first, with their size."""
    df = agg.indexes
    if df is None or df.empty:
        return pd.DataFrame(columns=INDEX_COLS)
    df = _with_sizes(df, sizes)
    df = _moved(df[[c for c in INDEX_COLS if c in df.columns]], INDEX_COLS[4:9])
    return df.head(top)


UNUSED_COLS = ["datname", "schemaname", "relname", "indexrelname", "index_bytes", "idx_blks_hit"]


def unused_indexes(agg: Any, sizes: pd.DataFrame | None = None, top: int = 25) -> pd.DataFrame:
    """Indexes captured in the interval that no scan used (idx_scan did not move), largest
    first: candidates to check before dropping (an index may serve a constraint or a rare
    report)."""
    df = agg.indexes
    if df is None or df.empty or "idx_scan" not in df.columns:
        return pd.DataFrame(columns=UNUSED_COLS)
    df = _with_sizes(df, sizes)
    idle = df[pd.to_numeric(df["idx_scan"], errors="coerce").fillna(0) == 0]
    if "index_bytes" in idle.columns:
        idle = idle.sort_values("index_bytes", ascending=False, na_position="last")
    return idle[[c for c in UNUSED_COLS if c in idle.columns]].head(top).reset_index(drop=True)


def index_size_note(indexes: pd.DataFrame, sizes_at: Any) -> str | None:
    """Why the size column is empty, when it is."""
    if indexes is None or indexes.empty or "index_bytes" not in indexes.columns:
        return None
    sized = indexes["index_bytes"].notna()
    parts = []
    if sized.any() and sizes_at is not None:
        parts.append(
            f"Index sizes as measured at {sizes_at:%Y-%m-%d %H:%M} UTC (sizes are measured "
            "every snapshot_sizes_interval_minutes, default 60, not at every snapshot)."
        )
    if not sized.all():
        parts.append(
            "An index without a size was idle in the snapshots that measured sizes at or "
            "before the end of this range (a snapshot keeps an index's row only when one of "
            "its counters moved), or no snapshot measured sizes yet."
        )
    return " ".join(parts) or None


# ------------------------------------------------------------------------------ checkpoints, WAL
def checkpoints(agg: Any) -> pd.DataFrame:
    c = agg.cluster.get("checkpointer", {})
    items = [
        ("checkpoints by timeout", "num_timed", "count"),
        ("checkpoints requested", "num_requested", "count"),
        ("checkpoint write time", "write_time", "ms"),
        ("checkpoint sync time", "sync_time", "ms"),
        ("buffers written by checkpoints", "buffers_written", "blocks"),
        ("buffers written by bgwriter", "buffers_clean", "blocks"),
        ("bgwriter stopped (maxwritten_clean)", "maxwritten_clean", "count"),
        ("buffers written by backends", "buffers_backend", "blocks"),
        ("buffers allocated", "buffers_alloc", "blocks"),
        ("restartpoints done", "restartpoints_done", "count"),
    ]
    rows = [(label, _num(c, key), unit) for label, key, unit in items if key in c]
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])


def wal(agg: Any) -> pd.DataFrame:
    w = agg.cluster.get("pg_stat_wal", {})
    a = agg.cluster.get("pg_stat_archiver", {})
    items = [
        ("WAL generated", w, "wal_bytes", "bytes"),
        ("WAL records", w, "wal_records", "count"),
        ("full-page images", w, "wal_fpi", "count"),
        ("WAL buffers full", w, "wal_buffers_full", "count"),
        ("WAL writes", w, "wal_write", "count"),
        ("WAL syncs", w, "wal_sync", "count"),
        ("WAL write time", w, "wal_write_time", "ms"),
        ("WAL sync time", w, "wal_sync_time", "ms"),
        ("segments archived", a, "archived_count", "count"),
        ("archive failures", a, "failed_count", "count"),
    ]
    rows = [(label, _num(d, key), unit) for label, d, key, unit in items if key in d]
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])
