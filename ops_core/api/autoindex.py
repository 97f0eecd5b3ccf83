"""Auto-indexing (issue 16): Oracle's loop and Azure's validation, on PostgreSQL.

One cycle (:func:`run_indexing`), as the target's ``auto_indexing`` mode allows (off:
nothing is journaled or changed; report_only: each create or drop is journaled with its SQL,
nothing runs; implement: done through ``ops_core.targets.actions``):

1. **look after what it built**: each index it created and still verifying is judged on the
   snapshots after its build (the statements it serves and the table's writes, time per call
   weighted by the calls before, as self-tuning judges a trial) once ``validation_hours`` have
   passed: slower -> dropped and remembered as regressed (never proposed again for that table
   and columns); else kept. An index it created that was not scanned for ``unused_days`` is
   dropped. Indexes it did not create are never dropped (they are in the report only);
2. **candidates** from the read statements of the snapshot range with the most time
   (``analysis.autoindex``: pglast predicates, pg_stats), **costed** against every statement
   they affect (hypopg where created, else an estimate, ``analysis.autoindex_whatif``), their
   write overhead from the table's write statements, and **a set chosen** greedily under the
   storage budget;
3. **builds** (implement, inside the maintenance window when one is set, at most
   ``max_builds``): each statement it serves is executed (read-only, EXPLAIN ANALYZE) before,
   the index is built with ``CREATE INDEX CONCURRENTLY``, an invalid build is dropped, the
   statements are executed again: not used by their plans, or slower -> dropped at once;
   else it stays ``verifying`` until the snapshots judge it (step 1 of a later cycle).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from .. import repository
from ..analysis import autoindex as ai
from ..analysis import whatif
from ..analysis.autoindex import IndexCandidate
from ..analysis.autoindex_whatif import cost_candidate
from ..analysis.sqltune.advisor import MIN_TABLE_ROWS, bind_parameters
from ..analysis.tuning import judge_trial
from ..collectors import autoindex as reads
from ..collectors import live, sqltune_reads
from ..errors import InvalidInput
from ..repository import autoindex as store
from ..repository.autoindex import AutoIndex, IndexingConfig
from ..targets import actions, connection
from .performance import top_statements
from .snapshots import list_snapshots
from .targets import get_target, target_dsn

__all__ = [
    "IndexingConfig",
    "AutoIndex",
    "IndexCandidate",
    "IndexingCandidates",
    "IndexingStep",
    "IndexingRun",
    "IndexingReport",
    "indexing_config",
    "set_indexing_config",
    "indexing_candidates",
    "run_indexing",
    "indexing_recommendations",
    "indexing_created",
    "indexing_dropped",
    "indexing_report",
]

INDEXER = "auto-indexing"  # requested_by of every action auto-indexing takes
TOLERANCE_PCT = 10.0


# ------------------------------------------------------------------------------ config
def indexing_config(target: str) -> IndexingConfig:
    """Auto-indexing's mode and settings on a target: storage budget, builds per cycle,
    maintenance window (UTC hours), validation period, unused period, minimum gain."""
    t = get_target(target)
    with repository.session() as repo:
        cfg = store.config(repo, t.target_id, t.name)
        cfg.mode = actions.policy(repo, t.target_id, "auto_indexing")
    return cfg


def set_indexing_config(
    target: str,
    mode: str | None = None,
    budget_mb: float | None = None,
    max_builds: int | None = None,
    window_start_hour: int | None = None,
    window_end_hour: int | None = None,
    clear_window: bool = False,
    validation_hours: float | None = None,
    unused_days: float | None = None,
    min_gain_pct: float | None = None,
    by: str = "opscore",
) -> IndexingConfig:
    """Change auto-indexing's mode (off / report-only / implement) and settings on a target;
    what is not given stays. Nothing changes on the server."""
    t = get_target(target)
    cfg = indexing_config(t.name)
    checks = [
        (budget_mb, lambda v: v > 0, "budget_mb must be positive", "e.g. --budget-mb 512"),
        (max_builds, lambda v: 1 <= v <= 20, "max_builds must be 1..20", "e.g. --max-builds 2"),
        (validation_hours, lambda v: v >= 0, "validation_hours must be >= 0", "e.g. 24"),
        (unused_days, lambda v: v >= 0, "unused_days must be >= 0", "e.g. 14"),
        (min_gain_pct, lambda v: 0 <= v <= 100, "min_gain_pct must be 0..100", "e.g. 10"),
        (window_start_hour, lambda v: 0 <= v <= 23, "window hours are 0..23 (UTC)", "e.g. 2"),
        (window_end_hour, lambda v: 0 <= v <= 23, "window hours are 0..23 (UTC)", "e.g. 5"),
    ]
    for value, ok, msg, hint in checks:
        if value is not None and not ok(value):
            raise InvalidInput(f"{msg} (got {value}).", f"Use {hint}.")
    if (window_start_hour is None) != (window_end_hour is None):
        raise InvalidInput(
            "A maintenance window needs both its start and end hour.",
            "Give --window-start and --window-end (UTC hours), or --no-window.",
        )
    for name in ("budget_mb", "max_builds", "validation_hours", "unused_days", "min_gain_pct",
                 "window_start_hour", "window_end_hour"):  # fmt: skip
        v = locals()[name]
        if v is not None:
            setattr(cfg, name, v)
    if clear_window:
        cfg.window_start_hour = cfg.window_end_hour = None
    if mode is not None:
        from .autonomous import set_autonomous_config

        set_autonomous_config(t.name, "indexing", mode, by)
    with repository.session() as repo:
        store.set_config(repo, t.target_id, cfg, by)
    return indexing_config(t.name)


def _in_window(cfg: IndexingConfig, now: datetime) -> bool:
    s, e = cfg.window_start_hour, cfg.window_end_hour
    if s is None or e is None:
        return True
    h = now.astimezone(UTC).hour
    return s <= h < e if s < e else (h >= s or h < e)


# ------------------------------------------------------------------------------ candidates
@dataclass
class IndexingCandidates:
    target: str
    begin_id: int | None
    end_id: int | None
    #: hypopg (planner costs of hypothetical indexes) / estimate (no hypopg: see notes)
    method: str | None
    budget_mb: float
    candidates: list[IndexCandidate]
    #: candidates left out before costing, with why (covered by an index, regressed, small)
    skipped: list[dict[str, Any]]
    statements: int  # read statements considered
    notes: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> list[IndexCandidate]:
        return [c for c in self.candidates if c.chosen]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = [c.as_dict() for c in self.candidates]
        return d


def _range(t: Any, hours: float, begin_id: int | None, end_id: int | None):
    snaps = sorted(
        (s for s in list_snapshots(t.name, limit=1000) if s.status != "failed"),
        key=lambda s: s.captured_at,
    )
    if begin_id is not None and end_id is not None:
        return begin_id, end_id, snaps
    since = datetime.now(UTC) - timedelta(hours=hours)
    recent = [s for s in snaps if s.captured_at >= since]
    if len(recent) < 2:
        return None, None, snaps
    return recent[0].snapshot_id, recent[-1].snapshot_id, snaps


def _statements(t: Any, b: int, e: int, dbname: str) -> list[dict[str, Any]]:
    df = top_statements(t.name, b, e, limit=100)
    if "datname" in df.columns:
        df = df[df["datname"] == dbname]
    return df[["queryid", "query", "calls", "total_ms"]].to_dict("records")


def indexing_candidates(
    target: str,
    hours: float = 24.0,
    begin_id: int | None = None,
    end_id: int | None = None,
) -> IndexingCandidates:
    """Index candidates from the statements of the last ``hours`` of snapshots (or the range
    given), each costed against every statement it affects, with its write overhead and size,
    and the set auto-indexing would build (``chosen``, the others with why not). Read-only."""
    return _candidates(target, hours, begin_id, end_id)[0]


def _candidates(
    target: str, hours: float, begin_id: int | None, end_id: int | None
) -> tuple[IndexingCandidates, dict[int, dict[str, Any]]]:
    """The candidates, and per read statement its text with values bound (kept out of the
    answer: the values come from the table's statistics)."""
    if hours <= 0:
        raise InvalidInput(f"hours must be positive (got {hours}).", "Use e.g. --hours 24.")
    t = get_target(target)
    cfg = indexing_config(t.name)
    b, e, _ = _range(t, hours, begin_id, end_id)
    out = IndexingCandidates(t.name, b, e, None, cfg.budget_mb, [], [], 0)
    if b is None or e is None:
        out.notes.append(
            f"fewer than two snapshots in the last {hours:g} h: nothing to learn the workload "
            "from (take snapshots: `opscore snapshot take`, or let the snapshot flow run)"
        )
        return out, {}
    with repository.session() as repo:
        regressed = {
            (r.schema_name, r.table_name, tuple(r.columns))
            for r in store.indexes(repo, t.target_id, ("regressed",), limit=10000)
        }
    with connection.monitoring_session(target_dsn(t)) as conn:
        rows = _statements(t, b, e, conn.info.dbname)
        shapes = {int(r["queryid"]): ai.statement_columns(r["query"] or "") for r in rows}
        names = sorted({tb for s in shapes.values() if s.parsed for tb in s.tables})
        quoted = {n: sql.Identifier(*n.split(".", 1)).as_string(conn) for n in names}
        trows = reads.tables(conn, list(quoted.values()))
        tables = {n: trows[q] for n, q in quoted.items() if q in trows}
        pairs = sorted(
            {(quoted[tb], c) for s in shapes.values() if s.parsed
             for tb, c in s.eq + s.range + s.join + s.order if tb in quoted}
        )  # fmt: skip
        raw_stats = reads.columns(conn, pairs)
        by_name = {q: n for n, q in quoted.items()}
        stats = {(by_name[r], c): v for (r, c), v in raw_stats.items()}
        existing = {
            n: [list(ix["columns"] or []) for ix in sqltune_reads.indexes(conn, *n.split(".", 1))]
            for n in tables
        }
        reads_ = [r for r in rows if shapes[int(r["queryid"])].kind == "select"]
        out.statements = len(reads_)
        cands, out.skipped = ai.candidates_for(
            reads_, shapes, tables, stats, existing, regressed=regressed, min_rows=MIN_TABLE_ROWS
        )
        hyp, why = whatif.hypopg_status(conn)
        out.method = "hypopg" if hyp else "estimate"
        if not hyp:
            out.notes.append(
                f"{why}: costs are estimates from each statement's plan and pg_stats (see "
                "analysis/autoindex_whatif); builds are verified by execution either way"
            )
        costs = reads.cost_settings(conn)
        bound: dict[int, dict[str, Any]] = {}
        plans: dict[int, dict | None] = {}
        for r in reads_:
            q = int(r["queryid"])
            body = live.rewrite_typed_params((r["query"] or "").strip().rstrip(";").strip())
            try:
                text, _, missing = bind_parameters(conn, body)
            except Exception as exc:  # noqa: BLE001 - a text that cannot be bound: said why
                text, missing = None, [str(exc)[:200]]
            why_not = None
            if missing:
                text, why_not = None, f"no sampled values for parameters {missing}: costed "
                "on its generic plan, not executed"
            bound[q] = {**r, "bound": text, "why": why_not, "generic": body}
            if not hyp:
                p = live.plan(conn, text or body, fmt="json")
                plans[q] = p.plan if isinstance(p.plan, dict) else None
                if plans[q] is None:
                    bound[q]["why"] = p.reason
        writes = [
            {**r, "kind": shapes[int(r["queryid"])].kind,
             "set_columns": shapes[int(r["queryid"])].on(tb)["set"], "table": tb}
            for r in rows for tb in shapes[int(r["queryid"])].tables
            if shapes[int(r["queryid"])].kind in ("insert", "update", "delete")
        ]  # fmt: skip
        for c in cands:
            table = f"{c.schema_name}.{c.table_name}"
            affected = [
                bound[int(r["queryid"])]
                for r in reads_
                if c.columns[0] in sum(shapes[int(r["queryid"])].on(table).values(), [])
                and table in shapes[int(r["queryid"])].tables
            ]
            cost_candidate(conn, c, affected, hypopg=hyp, plans=plans, table=tables[table],
                           costs=costs)  # fmt: skip
            c.write_ms, detail = ai.write_overhead(
                c.columns, [w for w in writes if w["table"] == table], tables[table]
            )
            c.column_stats["writes"] = detail
            widths = [float((stats.get((table, col)) or {}).get("avg_width") or 8)
                      for col in c.columns]  # fmt: skip
            c.est_bytes = ai.estimate_bytes(float(tables[table]["reltuples"]), widths)
    ai.choose(cands, cfg.budget_mb * 2**20, cfg.min_gain_pct)
    cands.sort(key=lambda c: (not c.chosen, -c.net_ms))
    out.candidates = cands
    return out, bound


# ------------------------------------------------------------------------------ the cycle
@dataclass
class IndexingStep:
    action: str  # create / drop / verify
    index: str
    table: str
    mode: str
    outcome: str  # done / reported / refused / failed / kept / regressed / unused / deferred
    action_id: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IndexingRun:
    target: str
    mode: str
    candidates: IndexingCandidates
    steps: list[IndexingStep]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "candidates": self.candidates.as_dict(),
            "steps": [s.as_dict() for s in self.steps],
            "summary": self.summary,
        }


def _perform(repo, t: Any, act: actions.Action) -> tuple[str, str, int | None, str]:
    """(mode, outcome, action id, detail) of one action governed by auto_indexing."""
    try:
        res = actions.perform(repo, t.target_id, target_dsn(t), act, governed_by="auto_indexing")
    except actions.ActionRefused as exc:
        return "off", "refused", None, str(exc)
    except Exception as exc:  # noqa: BLE001 - journaled as failed by perform; the cycle goes on
        return "implement", "failed", None, str(exc).strip()[:300]
    return res.mode, res.outcome, res.action_id, ""


def _measure(conn, affected: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Each statement executed read-only (3 runs, EXPLAIN ANALYZE): median ms, whether its plan
    used the index ``name``; the total weighted by calls."""
    out = []
    for st in affected:
        if not st.get("bound"):
            continue
        try:
            times, doc = whatif.measure(conn, st["bound"], runs=3)
        except Exception as exc:  # noqa: BLE001 - a statement that cannot run: left out, said
            out.append({"queryid": int(st["queryid"]), "error": str(exc)[:200]})
            continue
        plan = doc["Plan"] if doc else {}
        out.append({"queryid": int(st["queryid"]), "calls": int(st["calls"]),
                    "ms": round(statistics.median(times), 3),
                    "used": whatif.uses_index(plan, "", (), name)})  # fmt: skip
    ok = [s for s in out if "ms" in s]
    weight = sum(s["calls"] for s in ok) or 1
    return {"statements": out, "ms_per_call": sum(s["ms"] * s["calls"] for s in ok) / weight}


def _build(
    repo, t: Any, c: IndexCandidate, affected: list[dict], rng: tuple[int, int]
) -> IndexingStep:
    evidence = {"candidate": c.as_dict(), "range": list(rng)}
    act = actions.create_index(
        c.schema_name, c.table_name, c.columns, name=c.name, requested_by=INDEXER,
        evidence=evidence,
        why=f"auto-indexing: saves ~{c.saved_ms:.1f} ms of its statements, costs "
            f"~{c.write_ms:.1f} ms of writes ({c.method}); " + "; ".join(c.reasons[:3]),
    )  # fmt: skip
    row = {"target_id": t.target_id, "schema_name": c.schema_name, "table_name": c.table_name,
           "index_name": c.name, "columns": c.columns, "ddl": c.ddl, "est_saved_ms": c.saved_ms,
           "est_write_ms": c.write_ms, "est_bytes": c.est_bytes, "evidence": evidence}  # fmt: skip
    label = f"{c.schema_name}.{c.table_name}"
    dsn = target_dsn(t)
    with connection.monitoring_session(dsn) as conn:
        before = _measure(conn, affected, c.name)
    mode, outcome, aid, detail = _perform(repo, t, act)
    if outcome != "done":
        status = {"reported": "recommended", "refused": "refused"}.get(outcome, "failed")
        store.record(repo, **row, status=status, action_id=aid, note=detail)
        return IndexingStep("create", c.name, label, mode, outcome, aid, detail)
    now = datetime.now(UTC)
    with connection.monitoring_session(dsn) as conn:
        use = reads.usage(conn, [(c.schema_name, c.name)]).get((c.schema_name, c.name))
        after = _measure(conn, affected, c.name) if use and use["valid"] else {}
        use = reads.usage(conn, [(c.schema_name, c.name)]).get((c.schema_name, c.name)) or use
    verification = {"method": "executed on the target read-only (3 runs each, plan with timings)",
                    "before": before, "after": after}  # fmt: skip
    rid = store.record(repo, **row, status="verifying", created=True, action_id=aid,
                           created_at=now, last_used_at=now, verification=verification,
                           idx_scan=(use or {}).get("idx_scan"))  # fmt: skip
    ran = [s for s in after.get("statements", []) if "ms" in s]
    if not use or not use["valid"]:
        reason, status = "the build left an invalid index", "failed"
    elif not ran:
        return IndexingStep("create", c.name, label, mode, "done", aid,
                            "no statement it serves could be executed with values: judged on "
                            "the snapshots only")  # fmt: skip
    elif not any(s.get("used") for s in ran):
        reason, status = "no statement's plan uses it", "unused"
    elif after["ms_per_call"] >= before["ms_per_call"]:
        reason, status = (
            f"statements not faster ({before['ms_per_call']:.3f} -> "
            f"{after['ms_per_call']:.3f} ms per call)", "regressed",
        )  # fmt: skip
    else:
        return IndexingStep("create", c.name, label, mode, "done", aid,
                            f"{before['ms_per_call']:.3f} -> {after['ms_per_call']:.3f} ms per "
                            "call; verifying on the snapshots")  # fmt: skip
    mine = next(r for r in store.indexes(repo, t.target_id, limit=20) if r.autoindex_id == rid)
    _drop(repo, t, mine, status, reason)
    return IndexingStep("create", c.name, label, mode, status, aid, reason)


def _drop(repo, t: Any, r: AutoIndex, status: str, reason: str) -> IndexingStep:
    """Drop an index auto-indexing created (never another), journaled; the row says why."""
    assert r.created, "only indexes auto-indexing created are dropped"
    act = actions.drop_index(r.schema_name, r.table_name, r.index_name, requested_by=INDEXER,
                             why=f"auto-indexing: {reason}", undo_sql=r.ddl,
                             evidence={"autoindex_id": r.autoindex_id,
                                       "verification": r.verification})  # fmt: skip
    mode, outcome, aid, detail = _perform(repo, t, act)
    if outcome == "done":
        store.update(repo, r.autoindex_id, status=status, dropped_at=datetime.now(UTC),
                     drop_action_id=aid, note=reason)  # fmt: skip
    else:
        store.update(repo, r.autoindex_id, note=f"{reason}; drop {outcome} {detail}".strip())
    return IndexingStep("drop", r.index_name, f"{r.schema_name}.{r.table_name}", mode, outcome,
                        aid, reason)  # fmt: skip


def _look_after(repo, t: Any, cfg: IndexingConfig, snaps: list, now: datetime) -> list:
    """Step 1 of the cycle: judge what is verifying, drop what is unused (own indexes only)."""
    steps: list[IndexingStep] = []
    mine = store.indexes(repo, t.target_id, ("verifying", "kept"), created=True, dropped=False)
    if not mine:
        return steps
    with connection.monitoring_session(target_dsn(t)) as conn:
        use = reads.usage(conn, [(r.schema_name, r.index_name) for r in mine])
        dbname = conn.info.dbname
    for r in mine:
        u = use.get((r.schema_name, r.index_name))
        label = f"{r.schema_name}.{r.table_name}"
        if u is None:
            store.update(repo, r.autoindex_id, status="unused", dropped_at=now,
                         note="dropped outside opscore")  # fmt: skip
            steps.append(IndexingStep("verify", r.index_name, label, "", "gone",
                                      detail="no longer on the server"))  # fmt: skip
            continue
        if u["idx_scan"] > (r.idx_scan or 0):
            store.update(repo, r.autoindex_id, idx_scan=u["idx_scan"], last_used_at=now)
            r.last_used_at = now
        since = r.last_used_at or r.created_at or now
        if now - since >= timedelta(days=cfg.unused_days):
            steps.append(_drop(repo, t, r, "unused",
                               f"not scanned for {(now - since).total_seconds() / 86400:.2f} "
                               f"days (unused_days {cfg.unused_days:g})"))  # fmt: skip
            continue
        if r.status != "verifying" or r.created_at is None:
            continue
        if now - r.created_at < timedelta(hours=cfg.validation_hours):
            continue
        after = [s for s in snaps if s.captured_at > r.created_at]
        b, e = (r.evidence.get("range") or [None, None])[:2]
        if len(after) < 2 or b is None:
            continue
        cand = r.evidence.get("candidate") or {}
        qids = {int(s["queryid"]) for s in cand.get("statements", [])}
        qids |= {int(w["queryid"]) for w in (cand.get("column_stats") or {}).get("writes", [])}

        def rows(b_: int, e_: int, qids: set[int] = qids) -> list[dict]:
            df = top_statements(t.name, b_, e_, limit=1000)
            if "datname" in df.columns:
                df = df[df["datname"] == dbname]
            df = df[df["queryid"].isin(qids)]
            return df[["queryid", "calls", "total_ms"]].to_dict("records")

        v = judge_trial(rows(b, e), rows(after[0].snapshot_id, after[-1].snapshot_id),
                        TOLERANCE_PCT, min_calls=2)  # fmt: skip
        if v.verdict == "measuring":
            continue
        check = {"method": "snapshots: the statements it serves and the table's writes, time "
                 "per call weighted by the calls before", "before_ms_per_call":
                 v.before_ms_per_call, "after_ms_per_call": v.after_ms_per_call,
                 "statements": v.statements, "before_range": [b, e],
                 "after_range": [after[0].snapshot_id, after[-1].snapshot_id]}  # fmt: skip
        store.update(repo, r.autoindex_id, verification={**r.verification, "snapshots": check})
        if v.verdict == "rolled_back":
            r.verification = {**r.verification, "snapshots": check}
            steps.append(_drop(repo, t, r, "regressed", f"the workload got slower: {v.note}"))
        else:
            store.update(repo, r.autoindex_id, status="kept", note=v.note)
            steps.append(IndexingStep("verify", r.index_name, label, "", "kept", None, v.note))
    return steps


def run_indexing(
    target: str,
    hours: float = 24.0,
    begin_id: int | None = None,
    end_id: int | None = None,
) -> IndexingRun:
    """One auto-indexing cycle (see the module) as the target's ``auto_indexing`` mode allows:
    off does nothing (not even a journal entry), report-only journals each create/drop it
    would make, implement makes them and verifies them by execution."""
    t = get_target(target)
    cfg = indexing_config(t.name)
    now = datetime.now(UTC)
    cands, texts = _candidates(t.name, hours, begin_id, end_id)
    if cfg.mode == "off":
        return IndexingRun(t.name, "off", cands, [],
                           f"auto-indexing is off for {t.name}: {len(cands.chosen)} index(es) "
                           "would be chosen, nothing done (`opscore autonomous config set "
                           "--feature indexing --mode report-only|implement`).")  # fmt: skip
    _, _, snaps = _range(t, hours, begin_id, end_id)
    steps: list[IndexingStep] = []
    with repository.session() as repo:
        steps += _look_after(repo, t, cfg, snaps, now)
        # a recommendation already journaled is not repeated; in implement it gets built
        live_statuses = ("verifying", "kept") + (("recommended",) if cfg.mode != "implement"
                                                 else ())  # fmt: skip
        open_rows = store.indexes(repo, t.target_id, live_statuses, dropped=False, limit=10000)
        open_keys = {(r.schema_name, r.table_name, tuple(r.columns)) for r in open_rows}
        builds = 0
        for c in cands.chosen:
            if c.key in open_keys:
                continue
            affected = [texts[int(s["queryid"])] for s in c.statements if s.get("used")]
            if cfg.mode == "implement":
                if not _in_window(cfg, now):
                    steps.append(IndexingStep("create", c.name, f"{c.schema_name}.{c.table_name}",
                                              "implement", "deferred", detail="outside the "
                                              f"maintenance window {cfg.window_start_hour}-"
                                              f"{cfg.window_end_hour} h UTC"))  # fmt: skip
                    continue
                if builds >= cfg.max_builds:
                    why = f"max_builds {cfg.max_builds} reached"
                    steps.append(IndexingStep("create", c.name, f"{c.schema_name}.{c.table_name}",
                                              "implement", "deferred", detail=why))  # fmt: skip
                    continue
                builds += 1
            assert cands.begin_id is not None and cands.end_id is not None
            steps.append(_build(repo, t, c, affected, (cands.begin_id, cands.end_id)))
    done = sum(1 for s in steps if s.outcome == "done")
    return IndexingRun(
        t.name, cfg.mode, cands, steps,
        f"{len(cands.candidates)} candidate(s), {len(cands.chosen)} chosen; {done} change(s) "
        f"done, {sum(1 for s in steps if s.outcome == 'reported')} reported only, "
        f"{sum(1 for s in steps if s.outcome == 'deferred')} deferred.",
    )  # fmt: skip


# ------------------------------------------------------------------------------ listings
def indexing_recommendations(target: str, limit: int = 100) -> list[AutoIndex]:
    """Indexes auto-indexing recommended (report-only: journaled, not built), newest first,
    with the evidence (statements, costs, write overhead, size)."""
    t = get_target(target)
    with repository.session() as repo:
        return store.indexes(repo, t.target_id, ("recommended",), limit=limit)


def indexing_created(target: str, limit: int = 100) -> list[AutoIndex]:
    """Indexes auto-indexing built (verifying / kept, and those dropped since), newest first,
    with the verification (statement times before and after)."""
    t = get_target(target)
    with repository.session() as repo:
        return store.indexes(repo, t.target_id, created=True, limit=limit)


def indexing_dropped(target: str, limit: int = 100) -> list[AutoIndex]:
    """Indexes auto-indexing dropped (regressed, unused, invalid builds), newest first, with
    why."""
    t = get_target(target)
    with repository.session() as repo:
        return store.indexes(repo, t.target_id, created=True, dropped=True, limit=limit)


@dataclass
class IndexingReport:
    target: str
    config: IndexingConfig
    counts: dict[str, int]
    recent: list[AutoIndex]
    #: every index of the database judged (duplicate / redundant / unused / invalid): REPORT
    #: ONLY for those auto-indexing did not create
    index_health: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def indexing_report(target: str) -> IndexingReport:
    """Auto-indexing at a glance: config and mode, its indexes by status, and the health of
    every index of the database (its own marked)."""
    from .autonomous import index_health

    t = get_target(target)
    cfg = indexing_config(t.name)
    with repository.session() as repo:
        rows = store.indexes(repo, t.target_id, limit=1000)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    mine = {(r.schema_name, r.index_name) for r in rows if r.created and r.dropped_at is None}
    health = []
    for v in index_health(t.name):
        d = v.as_dict()
        d["auto_indexing"] = (d.get("schema"), d.get("index")) in mine
        if d["verdict"] != "ok":
            health.append(d)
    return IndexingReport(t.name, cfg, counts, rows[:20], health)
