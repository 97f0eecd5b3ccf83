"""What holds the xmin horizon (and locks) without being a session ASH can see.

Three holders live outside pg_stat_activity: a **prepared transaction** (PREPARE TRANSACTION:
its locks and its xid stay until COMMIT/ROLLBACK PREPARED, whoever prepared it may be long gone;
a waiter's ``pg_blocking_pids`` names it as pid 0), a **replication slot with an xmin** (a
standby's physical slot with hot_standby_feedback: kept even while the standby is down), and a
**standby's feedback** (the WAL sender's backend_xmin: a long query on the standby). The
snapshot captures them (source ``xmin_holders``); here they are judged and named, with what to
do about each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import sql

from .model import AddmInput, Finding, Recommendation, pct

#: a slot's or standby's xmin at least this many transactions old holds back vacuum materially
#: (a standby without long queries reports an xmin a few transactions old)
MIN_XMIN_AGE = 1_000


def _when(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if isinstance(v, str) and v:
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            return None
    return None


def literal(text: str) -> str:
    """A SQL string literal (a gid or slot name is free text), quoted by psycopg as the other
    recommended SQL is (``indexfind``), backslashes included."""
    return sql.Literal(text).as_string(None)


def holders(inp: AddmInput, min_open_s: float) -> list[dict[str, Any]]:
    """The end snapshot's non-session horizon holders that plausibly held vacuum back over the
    range: a prepared transaction open at least ``min_open_s``, a slot or standby whose xmin
    is at least MIN_XMIN_AGE transactions old. Oldest xmin first, each with ``open_s`` (None
    when unknown)."""
    out = []
    for h in inp.xmin_holders or []:
        age = h.get("xmin_age")
        if age is None:
            continue
        since = _when(h.get("since"))
        open_s = (inp.end_at - since).total_seconds() if since and inp.end_at else None
        if h.get("kind") == "prepared_transaction":
            if open_s is None or open_s < min_open_s:
                continue
        elif int(age) < MIN_XMIN_AGE:
            continue
        out.append({**h, "xmin_age": int(age), "open_s": open_s})
    return sorted(out, key=lambda h: -h["xmin_age"])


def describe(h: dict[str, Any]) -> str:
    """One holder in a sentence's words."""
    name = h.get("name") or "?"
    if h["kind"] == "prepared_transaction":
        opened = f", prepared {h['open_s']:.0f} s before the end" if h.get("open_s") else ""
        return (
            f"prepared transaction {literal(name)} (database {h.get('database') or '?'}, "
            f"owner {h.get('owner') or '?'}{opened})"
        )
    if h["kind"] == "replication_slot":
        state = "active" if h.get("active") else "inactive"
        return f"replication slot {literal(name)} ({state}, xmin {h['xmin_age']} transactions old)"
    return f"standby {literal(name)} (hot_standby_feedback, xmin {h['xmin_age']} transactions old)"


def recommendations(
    h: dict[str, Any], impact: float | None, total: float, what: str
) -> list[Recommendation]:
    """What to do about one holder; ``what`` says what it holds (its locks, the horizon)."""
    name = h.get("name") or ""
    benefit = (impact, pct(impact, total)) if impact is not None else (None, None)
    if h["kind"] == "prepared_transaction":
        db = h.get("database") or "its database"
        return [
            Recommendation(
                "session",
                f"ROLLBACK PREPARED {literal(name)};  -- or COMMIT PREPARED, as its coordinator "
                f"decided; in database {db}, as {h.get('owner') or 'its owner'} or a superuser",
                f"The {describe(h)} keeps {what} until it is committed or rolled back: no "
                "session to end, no timeout applies. Ask the transaction manager that "
                "prepared it; if it is orphaned (its coordinator gone or failed), finish it "
                "the way the coordinator decided (ROLLBACK if it never decided).",
                *benefit,
            ),
            Recommendation(
                "application",
                "SELECT gid, prepared, owner, database FROM pg_prepared_xacts "
                "WHERE prepared < now() - interval '5 minutes';  -- alert on it",
                "Prepared transactions are meant to live for milliseconds between the two "
                "phases of a commit; alert on any older than a few minutes.",
                None,
                None,
            ),
        ]
    if h["kind"] == "replication_slot":
        if not h.get("active"):
            return [
                Recommendation(
                    "sql",
                    f"SELECT pg_drop_replication_slot({literal(name)});",
                    f"The inactive {describe(h)} keeps {what} for a consumer that is not "
                    "connected. Drop it if that consumer is gone (it must re-clone to return); "
                    "otherwise reconnect it.",
                    *benefit,
                )
            ]
        return [
            Recommendation(
                "application",
                f"On the standby using slot {literal(name)}: end its long queries, or "
                "ALTER SYSTEM SET hot_standby_feedback = off there",
                f"The {describe(h)} reports the oldest snapshot of the standby's queries "
                f"(hot_standby_feedback) and keeps {what} on this server for them.",
                *benefit,
            )
        ]
    return [
        Recommendation(
            "application",
            f"On standby {literal(name)}: end its long queries, or ALTER SYSTEM SET "
            "hot_standby_feedback = off there (its queries may then be cancelled by "
            "recovery conflicts)",
            f"The {describe(h)} holds {what} on this server for the standby's oldest query.",
            *benefit,
        )
    ]


def prepared_in(inp: AddmInput, databases: set[str]) -> list[dict[str, Any]]:
    """The end snapshot's prepared transactions in ``databases`` (any when empty), oldest
    first."""
    return [
        h
        for h in holders(inp, 0.0)
        if h["kind"] == "prepared_transaction" and (not databases or h.get("database") in databases)
    ]


def name_prepared_roots(inp: AddmInput, f: Finding, databases: set[str], total: float) -> None:
    """A lock finding whose root blocker is pid 0 (how pg_blocking_pids shows a prepared
    transaction): named as the prepared transaction(s) of the waiters' database, with what to
    do first."""
    roots = f.evidence.get("root_blockers") or []
    zero = [r for r in roots if r.get("pid") == 0]
    if not zero:
        return
    blocked = float(zero[0].get("blocked_time_s") or 0.0)
    prepared = prepared_in(inp, databases)
    zero[0]["prepared_transactions"] = [
        {k: h.get(k) for k in ("name", "database", "owner", "since", "xmin_age")} for h in prepared
    ]
    f.sessions = [p for p in f.sessions if p != 0]
    if not prepared:
        f.title += "; held by a prepared transaction (pid 0: see pg_prepared_xacts)"
        f.recommendations.insert(
            0,
            Recommendation(
                "session",
                "SELECT gid, prepared, owner, database FROM pg_prepared_xacts ORDER BY prepared;"
                "  -- then COMMIT PREPARED or ROLLBACK PREPARED the one holding the locks",
                "The waiters' blocker is pid 0: a prepared transaction, which holds its locks "
                "until it is committed or rolled back; this snapshot did not list them.",
                blocked,
                pct(blocked, total),
            ),
        )
        return
    h = prepared[0]
    more = f" (or one of {len(prepared)} prepared there)" if len(prepared) > 1 else ""
    f.title += f"; held by {describe(h)}{more}"
    f.objects = [*f.objects, f"prepared transaction {h.get('name')}"]
    if blocked >= 0.9 * sum(float(r.get("blocked_time_s") or 0.0) for r in roots):
        # the application's advice (shorter transactions on the hot rows) is not what ends
        # these waits: the transaction holding them has no application session any more
        f.recommendations = [
            r
            for r in f.recommendations
            if r.action_type != "application" or "deadlock" in r.rationale
        ]
    for i, rec in enumerate(recommendations(h, blocked, total, "its locks")):
        f.recommendations.insert(i, rec)
