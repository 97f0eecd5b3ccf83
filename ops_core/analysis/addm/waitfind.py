"""The safety net: a wait event that takes a significant share of DB time and that no other
finding explains gets a finding of its own (``wait_event``), named by its class and event, with
what the event means and what is usually done about it. Oracle's ADDM reports "wait class X
was consuming significant database time" the same way; without it, a fault whose waits no
specific finding models (subtransaction or lock-manager LWLocks, a synchronous standby, a
buffer pin, an extension waiting on a remote server) ended as "nothing significant" or as
top SQL with no cause. Pure.

Judged elsewhere, so never here: CPU (the statement findings), Lock (lock and
idle-in-transaction findings), IO (I/O-bound SQL, temp spills, WAL, checkpoints), the idle
classes, a parallel query's own coordination waits (its leader waiting for its workers, whose
work is sampled too), the application's own sleeps (``pg_sleep``) and a manual VACUUM's cost
delay. Time of statements another finding already explains (a missing index, a CPU- or
I/O-bound statement, a bulk writer...) is not counted again.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .dbtime import db_samples
from .model import Finding, Recommendation, pct, short
from .server import MIN_SAMPLES, WAL_EVENTS, WAL_LWLOCKS
from .sqlshape import shape

__all__ = ["EVENTS", "wait_findings"]

JUDGED_ELSEWHERE = frozenset({"CPU", "Lock", "IO", "Client", "Activity"})
#: events (lower case, no underscores) of normal work other findings weigh or that are no cause
NORMAL_EVENTS = frozenset({"pgsleep", "vacuumdelay", "vacuumtruncate"})
#: IPC events of a parallel query coordinating its workers (prefixes, lower case)
PARALLEL_PREFIXES = ("bgworker", "executegather", "parallel", "hash", "messagequeue")
#: findings whose statements are the waiters of a lock: they explain those statements' Lock
#: waits only (judged elsewhere anyway), not their other waits
WAITERS_ONLY = frozenset({"lock_contention", "relation_extension", "idle_in_transaction"})


def _norm(event: Any) -> str:
    """An event name compared across majors (PostgreSQL 13 renamed ``lock_manager`` to
    ``LockManager``, 17 ``WALSync`` to ``WalSync``)."""
    return str(event).replace("_", "").replace(" ", "").lower()


#: what an event means and what to do, by normalized event name (PostgreSQL's wait event
#: documentation; the advice is the usual remedy)
EVENTS: dict[str, tuple[str, str]] = {
    "subtransslru": (
        "subtransaction SLRU: sessions look up the parent of subtransactions in pg_subtrans "
        "because a transaction has more than 64 subtransactions (overflowed snapshot)",
        "Use fewer SAVEPOINTs per transaction (ORMs and drivers with autosave, PL/pgSQL "
        "EXCEPTION blocks in loops each open one), and end long transactions that hold many "
        "subtransactions open.",
    ),
    "lockmanager": (
        "lock manager: sessions contend for the shared lock table because each transaction "
        "locks more relations than the 16 fast-path slots (many partitions or indexes)",
        "Touch fewer relations per transaction: let partition pruning work (constants or "
        "plan-time parameters in the WHERE clause), drop unused indexes, use fewer "
        "partitions; PostgreSQL 18 sizes fast-path slots from max_locks_per_transaction.",
    ),
    "buffercontent": (
        "buffer content lock: many sessions read and change the same data pages at once "
        "(a small hot table, the right-most page of an index on an increasing key)",
        "Spread the writes over more pages: fewer hot rows per page (fillfactor), a key that "
        "does not always insert at the end (hash or UUIDv7 with a random part), or batch "
        "the changes.",
    ),
    "buffermapping": (
        "buffer mapping: sessions contend to find or load pages in shared_buffers (the "
        "working set churns through the buffer cache)",
        "Give shared_buffers room for the working set, and read less (indexes, fewer "
        "full scans of large tables).",
    ),
    "procarray": (
        "process array: sessions contend to take snapshots and end transactions (many "
        "connections, very many short transactions)",
        "Use fewer server connections (a pooler such as PgBouncer in transaction mode) and "
        "group small transactions.",
    ),
    "xactgroupupdate": (
        "transaction status group update: a very high rate of commits waiting to update the "
        "commit log",
        "Group small transactions (commit batches), and use fewer concurrent writers.",
    ),
    "multixactoffsetslru": (
        "multixact SLRU: many sessions share-lock the same rows (foreign key checks on a "
        "popular parent row, SELECT ... FOR SHARE/KEY SHARE)",
        "Fewer concurrent locks on the same parent rows (batch child inserts, avoid FOR SHARE "
        "where not needed); watch multixact age.",
    ),
    "xactslru": (
        "transaction status SLRU: sessions read the commit status of many old transactions "
        "(hint bits not yet set on recently changed rows)",
        "Let VACUUM set the hint bits after large changes (VACUUM the table after a bulk "
        "load or update) before heavy reads.",
    ),
    "syncrep": (
        "synchronous replication: commits wait for a synchronous standby to confirm them",
        "Check the standby named in synchronous_standby_names (down, lagging, or a slow "
        "network): bring it back or relax synchronous_commit (remote_write, local) for the "
        "transactions that can afford it.",
    ),
    "bufferpin": (
        "buffer pin: a session (often a VACUUM needing a cleanup lock, or a replica applying "
        "WAL) waits for other sessions to release a page they keep pinned (an open cursor, a "
        "long scan)",
        "Find the session holding the page pinned (an open cursor or a long query on the same "
        "table) and end it, or run the VACUUM when none is open.",
    ),
    "spindelay": (
        "spinlock delay: sessions spin on a contended spinlock",
        "A sign of CPU oversubscription or heavy contention on one shared structure: fewer "
        "active sessions than CPUs (a pooler), and find which statements run at the time.",
    ),
    "dblinkgetresult": (
        "dblink: sessions wait for a remote server to answer",
        "The remote server or the network is slow: look at the remote query, or call it "
        "asynchronously.",
    ),
    "postgresfdwgetresult": (
        "postgres_fdw: sessions wait for a remote server to answer",
        "The remote server or the network is slow: push less work to it (use_remote_estimate, "
        "fetch_size), or look at the remote query.",
    ),
}
for _alias, _of in (
    ("subtransbuffer", "subtransslru"),
    ("subtranscontrollock", "subtransslru"),
    ("procarraygroupupdate", "procarray"),
    ("multixactmemberslru", "multixactoffsetslru"),
    ("multixactoffsetbuffer", "multixactoffsetslru"),
    ("multixactmemberbuffer", "multixactoffsetslru"),
    ("xactbuffer", "xactslru"),
):
    EVENTS[_alias] = EVENTS[_of]


def _judged_elsewhere(wait_class: Any, event: Any) -> bool:
    if wait_class in JUDGED_ELSEWHERE:
        return True
    e = _norm(event)
    if e in NORMAL_EVENTS:
        return True
    if wait_class == "IPC" and e.startswith(PARALLEL_PREFIXES):
        return True
    # WAL insert/write waits: the commit-wait and WAL-volume findings judge them with their
    # own bars (a commit's flush under 5 ms on average is the normal price of durability)
    return e in WAL_EVENTS or e in WAL_LWLOCKS


def wait_findings(
    samples: pd.DataFrame,
    prof: pd.DataFrame,
    total: float,
    min_pct: float,
    others: list[Finding],
) -> list[Finding]:
    """One ``wait_event`` finding per wait event above ``min_pct`` of DB time (and seen in at
    least ``MIN_SAMPLES`` samples) that the ``others`` findings do not explain."""
    ds = db_samples(samples)
    if ds.empty or total <= 0:
        return []
    claimed = {
        int(s["queryid"])
        for f in others
        if f.type not in WAITERS_ONLY
        for s in f.statements
        if s.get("queryid") is not None and not pd.isna(s.get("queryid"))
    }
    qid = pd.to_numeric(ds["query_id"], errors="coerce")
    free = ds[~qid.isin(claimed)] if claimed else ds
    out: list[Finding] = []
    for (cls, event), g in free.groupby(["wait_class", "event"], dropna=True):
        if _judged_elsewhere(cls, event):
            continue
        t = float(g["weight_s"].sum())
        if len(g) < MIN_SAMPLES or pct(t, total) < min_pct:
            continue
        out.append(_finding(str(cls), str(event), g, prof, t, total))
    return out


def _finding(
    cls: str, event: str, g: pd.DataFrame, prof: pd.DataFrame, t: float, total: float
) -> Finding:
    known = EVENTS.get(_norm(event))
    what, advice = known or (
        f"{cls} wait {event}",
        f"PostgreSQL's documentation of wait event {event} ({cls}) says what the sessions "
        "wait for; find what the sessions and statements below do while they wait.",
    )
    by_q = g.groupby("query_id", dropna=True)["weight_s"].sum().sort_values(ascending=False)
    texts = g.dropna(subset=["query_id"]).groupby("query_id")["query"].first()
    stmts: list[dict[str, Any]] = []
    for q, secs in by_q.head(3).items():
        text = texts.get(q)
        row = prof[prof["queryid"] == int(q)] if len(prof) else prof
        if not isinstance(text, str):  # no text sampled (NaN): the statement statistics'
            text = row["query"].iloc[0] if len(row) else None
        stmts.append(
            {
                "queryid": int(q),
                "query": text if isinstance(text, str) else None,
                "wait_s": round(float(secs), 2),
            }
        )
    tables: list[str] = []
    for st in stmts:
        for tb in shape(st["query"]).tables if st["query"] else []:
            if tb not in tables:
                tables.append(tb)
    by_pid = g.groupby("pid")["weight_s"].sum().sort_values(ascending=False)
    sessions = [int(p) for p in by_pid.index[:5]]
    apps = sorted({a for a in g["application_name"].dropna().astype(str) if a})[:5]
    on = f" on {', '.join(tables[:3])}" if tables else ""
    label = f" ({what.split(':')[0]})" if known else ""
    title = f"Wait event {cls}:{event}{label} took {pct(t, total):.0f} % of DB time{on}"
    share = pct(t, total)
    recs = [Recommendation("application", advice, f"The sessions wait on {what}.", t, share)]
    if stmts and stmts[0]["query"]:
        recs.append(
            Recommendation(
                "application",
                f"Statement {stmts[0]['queryid']} ({short(stmts[0]['query'], 80)}) waited "
                f"{stmts[0]['wait_s']:.1f} s on {event}: start with it.",
                "The statement with the most time in this wait.",
                None,
                None,
            )
        )
    return Finding(
        type="wait_event",
        title=title,
        impact_db_time_s=t,
        impact_pct=pct(t, total),
        evidence={
            "wait_class": cls,
            "event": event,
            "meaning": what,
            "known_event": known is not None,
            "wait_s": round(t, 2),
            "samples": int(len(g)),
            "waiting_sessions": int(g["pid"].nunique()),
            "applications": apps,
            "sessions_by_wait_s": {int(p): round(float(v), 2) for p, v in by_pid.head(5).items()},
        },
        objects=tables,
        statements=stmts,
        sessions=sessions,
        recommendations=recs,
    )
