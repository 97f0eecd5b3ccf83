"""Self-healing judgement: which conditions of a target are problems, how bad, and what a DBA
would do about each — from the rows ``ops_core.collectors.healing`` read. Pure: no server, no
repository; the API layer reads, this decides, ``ops_core.targets.actions`` acts.

The rule that matters most (issue 22): a session is blamed for holding others up while idle in
transaction only when it was seen idle in *the same* transaction, blocking, in every sample of
the observation, and idle for at least ``idle_blocker_s``. A busy worker running many short
transactions is seen active, or in a new transaction, in some sample, and is left alone (its
waits are reported as a blocking chain, with no action).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .addm.model import qident

__all__ = [
    "HealingRules",
    "HealingIssue",
    "IndexVerdict",
    "judge_blockers",
    "judge_invalid_indexes",
    "judge_bloat",
    "judge_wraparound",
    "judge_sequences",
    "judge_slots",
    "judge_stale_statistics",
    "judge_checksums",
    "judge_disk",
    "index_verdicts",
    "SEVERITIES",
]

SEVERITIES = ("critical", "warning", "info")
IDLE_STATES = ("idle in transaction", "idle in transaction (aborted)")
XID_LIMIT = 2**31  # transaction ids (and multixacts) wrap around at 2^31 of age


@dataclass(frozen=True)
class HealingRules:
    """Thresholds of the self-healing checks (defaults a DBA would start from)."""

    idle_blocker_s: float = 60.0  # idle in the same transaction this long while others wait
    bloat_min_dead_rows: int = 10_000
    bloat_dead_pct: float = 20.0
    #: warn when a database's xid/mxid age passes this multiple of autovacuum's freeze max age
    #: (autovacuum should have frozen it by 1x); critical past half the wraparound distance
    wraparound_warn_factor: float = 1.5
    wraparound_critical_age: int = XID_LIMIT // 2
    sequence_warn: float = 0.80
    sequence_critical: float = 0.95
    slot_retained_warn_bytes: int = 1024**3
    stale_min_changes: int = 1_000
    stale_fraction: float = 0.20
    disk_warn_pct: float = 90.0
    disk_critical_pct: float = 95.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HealingIssue:
    """One condition found on a target, with what it rests on and what would fix it.

    ``action`` names the kind of change (an ``ops_core.targets.actions`` feature) self-healing
    may make for it, or is None when the remedy is a DBA's decision (opscore alerts only)."""

    kind: str
    severity: str
    object: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remedy: str = ""
    action: str | None = None
    #: the values the action needs (pid, schema, table, index, slot), not for display
    subject: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _q(*names: str) -> str:
    """A qualified name quoted as PostgreSQL needs it (remedy texts a DBA can paste)."""
    return ".".join(qident(n) for n in names)


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds(), 1)


# ------------------------------------------------------------------------------ sessions
def judge_blockers(samples: list[list[dict]], rules: HealingRules) -> list[HealingIssue]:
    """Blockers seen over ``samples`` (each a list of rows of ``collectors.healing.blockers``,
    oldest first). Idle-in-transaction blockers that qualify (see the module doc) get the
    ``terminate_session`` action; every other blocker seen in the last sample is reported as
    a blocking chain with no action."""
    if not samples:
        return []
    last = samples[-1]
    issues: list[HealingIssue] = []
    for row in last:
        pid = row["pid"]
        seen = [next((r for r in s if r["pid"] == pid), None) for s in samples]
        idle_every_time = all(r is not None and r["state"] in IDLE_STATES for r in seen)
        same_xact = len({r["xact_start"] for r in seen if r is not None}) == 1
        idle_s = _seconds(row["state_change"], row["sampled_at"]) or 0.0
        xact_s = _seconds(row["xact_start"], row["sampled_at"])
        wait_s = _seconds(row["oldest_waiter_start"], row["sampled_at"])
        evidence = {
            "samples": len(samples),
            "samples_idle_in_same_transaction": sum(
                1
                for r in seen
                if r is not None
                and r["state"] in IDLE_STATES
                and r["xact_start"] == row["xact_start"]
            ),
            "state_now": row["state"],
            "idle_s": idle_s,
            "transaction_open_s": xact_s,
            "waiters": row["waiters"],
            "waiting_pids": list(row["waiting_pids"] or []),
            "longest_wait_s": wait_s,
            "user": row["usename"],
            "database": row["datname"],
            "application": row["application_name"],
            "client": row["client_addr"],
            "last_query": row["last_query"],
        }
        if idle_every_time and same_xact and idle_s >= rules.idle_blocker_s:
            issues.append(
                HealingIssue(
                    kind="idle_in_transaction_blocker",
                    severity="critical",
                    object=f"pid {pid}",
                    summary=(
                        f"Session {pid} ({row['usename']}@{row['datname']}) has been idle in "
                        f"transaction for {idle_s:.0f} s, in every one of {len(samples)} samples "
                        f"the same transaction, while {row['waiters']} session(s) wait for its "
                        "locks."
                    ),
                    evidence=evidence,
                    remedy=f"SELECT pg_terminate_backend({pid}); -- and fix the client that "
                    "leaves transactions open (idle_in_transaction_session_timeout)",
                    action="terminate_session",
                    subject={"pid": pid, "xact_start": row["xact_start"]},
                )
            )
        else:
            why = (
                "idle in transaction but not long enough yet"
                if idle_every_time and same_xact
                else "seen working or in a new transaction between samples"
            )
            evidence["not_acted_on_because"] = why
            issues.append(
                HealingIssue(
                    kind="blocking_chain",
                    severity="warning" if (wait_s or 0) >= 10 else "info",
                    object=f"pid {pid}",
                    summary=(
                        f"Session {pid} ({row['state']}) holds locks {row['waiters']} session(s) "
                        f"wait for (longest {wait_s or 0:.0f} s); {why}: no action."
                    ),
                    evidence=evidence,
                    remedy="Look at what the blocker runs (opscore ash blocking); an action is "
                    "only taken on a session idle in one transaction.",
                )
            )
    return issues


# ------------------------------------------------------------------------------ objects
def judge_invalid_indexes(rows: list[dict]) -> list[HealingIssue]:
    return [
        HealingIssue(
            kind="invalid_index",
            severity="warning",
            object=_q(r["schema"], r["index"]),
            summary=(
                f"Index {_q(r['schema'], r['index'])} on {r['table']} is invalid (a failed "
                "CREATE INDEX CONCURRENTLY or REINDEX): it is maintained on writes "
                f"({r['bytes']} bytes) but never used by queries."
            ),
            evidence=r,
            remedy=f"REINDEX INDEX CONCURRENTLY {_q(r['schema'], r['index'])};",
            action="reindex",
            subject={"schema": r["schema"], "index": r["index"]},
        )
        for r in rows
    ]


def judge_bloat(rows: list[dict], rules: HealingRules, measured_by: str) -> list[HealingIssue]:
    out = []
    for r in rows:
        if r["dead_rows"] < rules.bloat_min_dead_rows or r["dead_pct"] < rules.bloat_dead_pct:
            continue
        name = _q(r["schema"], r["table"])
        out.append(
            HealingIssue(
                kind="table_bloat",
                severity="warning",
                object=name,
                summary=(
                    f"Table {name}: {r['dead_rows']} dead rows, {r['dead_pct']:.1f} % of its "
                    f"rows ({measured_by})."
                ),
                evidence={**r, "measured_by": measured_by},
                remedy=f"VACUUM (ANALYZE) {name};",
                action="vacuum",
                subject={"schema": r["schema"], "table": r["table"], "freeze": False},
            )
        )
    return out


def judge_wraparound(
    databases: list[dict], oldest: list[dict], rules: HealingRules
) -> list[HealingIssue]:
    """Databases whose xid or multixact age passed autovacuum's freeze horizon by the rules'
    factor. For the database opscore is connected to, the tables holding the horizon back get
    a VACUUM (FREEZE) each; other databases are reported (connect a target to them to act)."""
    out = []
    for d in databases:
        for what, age_key, max_key in (
            ("xid", "xid_age", "freeze_max_age"),
            ("multixact", "mxid_age", "mxid_freeze_max_age"),
        ):
            age, horizon = d[age_key], d[max_key]
            if age is None or age < rules.wraparound_warn_factor * horizon:
                continue
            severity = "critical" if age >= rules.wraparound_critical_age else "warning"
            left = XID_LIMIT - age
            base = HealingIssue(
                kind=f"{what}_wraparound",
                severity=severity,
                object=d["datname"],
                summary=(
                    f"Database {d['datname']}: oldest {what} age {age:,} is "
                    f"{age / horizon:.1f} x autovacuum's freeze max age ({horizon:,}); "
                    f"{left:,} left before wraparound protection stops writes."
                ),
                evidence={**d, "left": left},
                remedy="VACUUM (FREEZE) the oldest tables; find what keeps autovacuum from "
                "freezing (long transactions, prepared transactions, replication slots).",
            )
            if not d["is_current"] or what != "xid":
                out.append(base)
                continue
            tables = [t for t in oldest if t["xid_age"] >= horizon]
            if not tables:
                out.append(base)
            for t in tables:
                name = _q(t["schema"], t["table"])
                out.append(
                    HealingIssue(
                        kind="xid_wraparound",
                        severity=severity,
                        object=name,
                        summary=f"{base.summary} Table {name} holds it back (age "
                        f"{t['xid_age']:,}).",
                        evidence={**base.evidence, "table": t},
                        remedy=f"VACUUM (FREEZE) {name};",
                        action="vacuum",
                        subject={"schema": t["schema"], "table": t["table"], "freeze": True},
                    )
                )
    return out


def judge_sequences(rows: list[dict], rules: HealingRules) -> list[HealingIssue]:
    out = []
    for r in rows:
        used = r["used_fraction"] or 0.0
        if r["cycle"] or used < rules.sequence_warn:
            continue
        name = _q(r["schema"], r["sequence"])
        out.append(
            HealingIssue(
                kind="sequence_exhaustion",
                severity="critical" if used >= rules.sequence_critical else "warning",
                object=name,
                summary=(
                    f"Sequence {name} ({r['data_type']}) has used {used * 100:.1f} % of its "
                    f"range (last value {r['last_value']:,} of {r['max_value']:,})."
                ),
                evidence=r,
                remedy=f"ALTER SEQUENCE {name} AS bigint; and widen the columns it feeds "
                "(a DBA's decision: the table is rewritten).",
            )
        )
    return out


def judge_slots(rows: list[dict], rules: HealingRules, own_slots: set[str]) -> list[HealingIssue]:
    out = []
    for r in rows:
        kept = r["retained_bytes"] or 0
        own = r["slot_name"] in own_slots
        if kept < rules.slot_retained_warn_bytes and not own:
            continue
        out.append(
            HealingIssue(
                kind="inactive_replication_slot",
                severity="critical" if kept >= 10 * rules.slot_retained_warn_bytes else "warning",
                object=r["slot_name"],
                summary=(
                    f"Replication slot {r['slot_name']} is inactive and keeps {kept:,} bytes of "
                    "WAL on the server"
                    + (
                        " (opscore's own WAL archiving slot: start `opscore backup wal stream`)."
                        if own
                        else "."
                    )
                ),
                evidence=r,
                remedy=f"SELECT pg_drop_replication_slot('{r['slot_name']}'); -- only when its "
                "consumer is gone for good",
                # never opscore's own slot; other slots only where drop_inactive_slot is allowed
                action=None if own else "drop_inactive_slot",
                subject={"slot": r["slot_name"]},
            )
        )
    return out


def judge_stale_statistics(rows: list[dict]) -> list[HealingIssue]:
    return [
        HealingIssue(
            kind="stale_statistics",
            severity="warning",
            object=_q(r["schema"], r["table"]),
            summary=(
                f"Table {_q(r['schema'], r['table'])}: {r['changed_rows']:,} rows changed since "
                f"its last ANALYZE (statistics describe {r['rows_at_analyze']:,} rows, it has "
                f"about {r['live_rows']:,})."
            ),
            evidence=r,
            remedy=f"ANALYZE {_q(r['schema'], r['table'])};",
            action="analyze",
            subject={"schema": r["schema"], "table": r["table"]},
        )
        for r in rows
    ]


def judge_checksums(reading: dict[str, Any]) -> list[HealingIssue]:
    return [
        HealingIssue(
            kind="checksum_failures",
            severity="critical",
            object=r["datname"],
            summary=(
                f"Database {r['datname']}: {r['checksum_failures']} data checksum failure(s), "
                f"last at {r['checksum_last_failure']}: pages on disk are corrupt."
            ),
            evidence=r,
            remedy="Find the relations (server log), restore them from a backup; check the "
            "storage.",
        )
        for r in reading["failures"]
    ]


def judge_disk(disk: dict[str, Any] | None, rules: HealingRules) -> list[HealingIssue]:
    if not disk or not disk.get("total_bytes"):
        return []
    pct = 100.0 * disk["used_bytes"] / disk["total_bytes"]
    if pct < rules.disk_warn_pct:
        return []
    return [
        HealingIssue(
            kind="disk_nearly_full",
            severity="critical" if pct >= rules.disk_critical_pct else "warning",
            object="data directory",
            summary=f"The file system of the data directory is {pct:.1f} % full "
            f"({disk['free_bytes']:,} bytes free).",
            evidence={**disk, "used_pct": round(pct, 1)},
            remedy="Free space or grow the volume before PostgreSQL stops on a full disk.",
        )
    ]


# ------------------------------------------------------------------------------ index health
@dataclass
class IndexVerdict:
    schema: str
    index: str
    table: str
    bytes: int
    scans: int | None
    valid: bool
    method: str
    definition: str
    #: ok / invalid / duplicate / redundant / unused (first that applies, worst first)
    verdict: str
    detail: str
    created_by_opscore: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(r: dict) -> tuple:
    return (r["schema"], r["table"], r["method"], r["expressions"], r["predicate"])


def index_verdicts(rows: list[dict], opscore_indexes: set[str] | None = None) -> list[IndexVerdict]:
    """Each index judged: invalid; a duplicate of another (same table, columns, operator
    classes, expressions and predicate: the one kept is the one backing a constraint, else
    the first by name); redundant (its columns a leading prefix of another B-tree's, and it
    backs no constraint); unused (no scan since the statistics reset, backs no constraint)."""
    own = opscore_indexes or set()
    out: list[IndexVerdict] = []
    for r in rows:
        keys = r["keys"].split()
        classes = r["opclasses"].split()
        verdict, detail = "ok", ""
        if not r["valid"]:
            verdict, detail = "invalid", "invalid: maintained on writes, never used"
        else:
            for o in rows:
                if o is r or not o["valid"] or _key(o) != _key(r):
                    continue
                okeys, oclasses = o["keys"].split(), o["opclasses"].split()
                if okeys == keys and oclasses == classes:
                    keep_other = o["backs_constraint"] and not r["backs_constraint"]
                    if keep_other or (
                        o["backs_constraint"] == r["backs_constraint"] and o["index"] < r["index"]
                    ):
                        verdict, detail = "duplicate", f"same definition as {o['index']}"
                        break
                elif (
                    r["method"] == "btree"
                    and not r["backs_constraint"]
                    and not r["expressions"]
                    and len(keys) < len(okeys)
                    and okeys[: len(keys)] == keys
                    and oclasses[: len(classes)] == classes
                ):
                    verdict, detail = "redundant", f"its columns lead {o['index']}"
                    break
            if verdict == "ok" and not r["backs_constraint"] and (r["scans"] or 0) == 0:
                verdict, detail = "unused", "no scan since the statistics were reset"
        out.append(
            IndexVerdict(
                schema=r["schema"],
                index=r["index"],
                table=r["table"],
                bytes=int(r["bytes"] or 0),
                scans=r["scans"],
                valid=bool(r["valid"]),
                method=r["method"],
                definition=r["definition"],
                verdict=verdict,
                detail=detail,
                created_by_opscore=f"{r['schema']}.{r['index']}" in own,
            )
        )
    return out
