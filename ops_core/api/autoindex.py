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

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.conninfo import make_conninfo

from .. import repository
from ..analysis import autoindex as ai
from ..analysis import autoindex_choice as choice
from ..analysis import whatif
from ..analysis.autoindex import IndexCandidate
from ..analysis.autoindex_whatif import cost_candidate
from ..analysis.sqltune.advisor import MIN_TABLE_ROWS, bind_parameters
from ..collectors import autoindex as reads
from ..collectors import live, sqltune_reads
from ..errors import InvalidInput, NotFound
from ..repository import autoindex as store
from ..repository.autoindex import AutoIndex, IndexingConfig
from ..targets import actions, connection
from .autonomous import index_health, set_autonomous_config
from .backup_remote import list_clones
from .performance import top_statements
from .snapshots import list_snapshots
from .targets import get_target, target_dsn

__all__ = [
    "IndexingConfig",
    "AutoIndex",
    "IndexCandidate",
    "IndexingCandidates",
    "IndexingReport",
    "indexing_config",
    "set_indexing_config",
    "indexing_candidates",
    "indexing_recommendations",
    "indexing_created",
    "indexing_dropped",
    "indexing_report",
]


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
    clone: str | None = None,
    clear_clone: bool = False,
    by: str = "opscore",
) -> IndexingConfig:
    """Change auto-indexing's mode (off / report-only / implement) and settings on a target;
    what is not given stays. ``clone``: a clone of the target (``opscore clone list``) to cost
    candidates on when the target has no hypopg. Nothing changes on the server."""
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
    if clone is not None and clone not in [c.clone for c in list_clones()]:
        raise NotFound(f"No clone {clone!r}.", "See `opscore clone list`.")
    for name in ("budget_mb", "max_builds", "validation_hours", "unused_days", "min_gain_pct",
                 "window_start_hour", "window_end_hour", "clone"):  # fmt: skip
        v = locals()[name]
        if v is not None:
            setattr(cfg, name, v)
    if clear_window:
        cfg.window_start_hour = cfg.window_end_hour = None
    if clear_clone:
        cfg.clone = None
    if mode is not None:
        set_autonomous_config(t.name, "indexing", mode, by)
    with repository.session() as repo:
        store.set_config(repo, t.target_id, cfg, by)
    return indexing_config(t.name)


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


def snapshot_range(t: Any, hours: float, begin_id: int | None, end_id: int | None):
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
    return candidates_with_texts(target, hours, begin_id, end_id)[0]


def candidates_with_texts(
    target: str, hours: float, begin_id: int | None, end_id: int | None
) -> tuple[IndexingCandidates, dict[int, dict[str, Any]]]:
    """The candidates, and per read statement its text with values bound (kept out of the
    answer: the values come from the table's statistics). Used by the cycle."""
    if hours <= 0:
        raise InvalidInput(f"hours must be positive (got {hours}).", "Use e.g. --hours 24.")
    t = get_target(target)
    cfg = indexing_config(t.name)
    b, e, _ = snapshot_range(t, hours, begin_id, end_id)
    out = IndexingCandidates(t.name, b, e, None, cfg.budget_mb, [], [], 0)
    if b is None or e is None:
        out.notes.append(
            f"fewer than two snapshots in the last {hours:g} h: nothing to learn the workload "
            "from (take snapshots: `opscore snapshot take`, or let the snapshot flow run)"
        )
        return out, {}
    with repository.session() as repo:
        regressed = {r.key for r in store.indexes(repo, t.target_id, ("regressed",), limit=10000)}
    with connection.monitoring_session(target_dsn(t)) as conn:
        rows = _statements(t, b, e, conn.info.dbname)
        shapes = {int(r["queryid"]): ai.statement_columns(r["query"] or "") for r in rows}
        names = sorted({tb for s in shapes.values() if s.parsed for tb in s.tables})
        quoted = {n: sql.Identifier(*n.split(".", 1)).as_string(conn) for n in names}
        trows = reads.tables(conn, list(quoted.values()))
        tables = {n: trows[q] for n, q in quoted.items() if q in trows}
        pairs = sorted(
            {(quoted[tb], c) for s in shapes.values() if s.parsed
             for tb, c in s.eq + s.range + s.join + s.order + s.refs if tb in quoted}
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
        clone_dsn = None if hyp else _clone_dsn(cfg.clone, conn.info.dbname, out.notes)
        out.method = "hypopg" if hyp else "clone" if clone_dsn else "estimate"
        if clone_dsn:
            out.notes.append(
                f"{why}: each candidate is built on clone {cfg.clone} in a rolled-back "
                "transaction and the statements planned with it (the planner's costs)"
            )
        elif not hyp:
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
            if out.method == "estimate":
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
                if table in shapes[int(r["queryid"])].tables
                and _serves(c, shapes[int(r["queryid"])].on(table))
            ]
            cost_candidate(conn, c, affected, hypopg=hyp, plans=plans, table=tables[table],
                           costs=costs, clone_dsn=clone_dsn)  # fmt: skip
            c.write_ms, detail = choice.write_overhead(
                c.columns, [w for w in writes if w["table"] == table], tables[table]
            )
            c.column_stats["writes"] = detail
            widths = [float((stats.get((table, col)) or {}).get("avg_width") or 8)
                      for col in c.columns + c.include]  # fmt: skip
            frac = float(c.predicate["freq"]) if c.predicate else 1.0
            c.est_bytes = choice.estimate_bytes(float(tables[table]["reltuples"]) * frac, widths)
    choice.choose(cands, cfg.budget_mb * 2**20, cfg.min_gain_pct)
    cands.sort(key=lambda c: (not c.chosen, -c.net_ms))
    out.candidates = cands
    return out, bound


def _serves(c: IndexCandidate, cols: dict[str, list[str]]) -> bool:
    """Whether a statement's use of the table (``StatementColumns.on``) may be served by the
    candidate: it filters, joins or sorts on its leading column, and (a partial index) tests
    its predicate's column."""
    used = cols["eq"] + cols["range"] + cols["join"] + cols["order"]
    if c.predicate and c.predicate["column"] not in cols["eq"]:
        return False
    return c.columns[0] in used


def _clone_dsn(clone: str | None, dbname: str, notes: list[str]) -> str | None:
    """The clone's connection string (the target's database on it) when one is configured and
    running; else None, with a note saying why."""
    if not clone:
        return None
    found = [c for c in list_clones() if c.clone == clone]
    if not found or not found[0].running:
        notes.append(f"clone {clone} is {'not running' if found else 'gone'}: not used")
        return None
    return make_conninfo(found[0].url, dbname=dbname)


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
