"""One statement through the SQL Tuning Advisor: its plan (the safe EXPLAIN path), its
execution when it only reads, and four analyses — statistics, access paths (what-if indexes),
SQL structure (rewrites executed and compared row for row) and plan alternatives (planner
settings as SET LOCAL) — each recommendation with its rationale and a measured benefit, or
why it was not measured."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from ...collectors import live, sqltune_reads
from .. import whatif
from ..addm.sqlshape import shape
from . import indexcols, structure

#: a sequential scan of a table with fewer rows than this is not worth an index
MIN_TABLE_ROWS = 1000
#: an estimate off by this factor or more is a misestimate
MISESTIMATE = 10.0


@dataclass
class Recommendation:
    type: str  # index / statistics / rewrite / setting / structure
    sql: str | None
    rationale: str
    method: str | None = None  # hypopg / clone / target / None
    before_ms: float | None = None
    after_ms: float | None = None
    cost_before: float | None = None
    cost_after: float | None = None
    measured_speedup: float | None = None
    why_not: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StatementAdvice:
    sql: str
    plan_method: str | None
    plan_reason: str | None
    executed: bool
    why_not_executed: str | None
    before_ms: float | None
    misestimates: list[dict[str, Any]]
    recommendations: list[Recommendation]
    #: $n -> value, column and where the value came from, when parameters were bound
    parameters: dict[str, Any] = field(default_factory=dict)
    executed_sql: str | None = None  # the text executed (with the values bound)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def _ratio(b: float | None, a: float | None) -> float | None:
    return round(b / a, 2) if b and a and a > 0 else None


_walk = whatif.plan_nodes


def misestimates(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Scan nodes of an actual plan whose estimated rows are off by MISESTIMATE or more."""
    out = []
    for n in _walk(plan):
        if "Actual Rows" not in n or "Relation Name" not in n:
            continue
        est = float(n.get("Plan Rows") or 0)
        act = float(n.get("Actual Rows") or 0)
        factor = max(est, 1.0) / max(act, 1.0)
        factor = factor if factor >= 1 else 1 / factor
        if factor >= MISESTIMATE:
            out.append(
                {
                    "schema": n.get("Schema"),
                    "table": n["Relation Name"],
                    "node": n.get("Node Type"),
                    "filter": n.get("Filter") or n.get("Index Cond"),
                    "estimated_rows": est,
                    "actual_rows": act,
                    "factor": round(factor, 1),
                }
            )
    return out


def _statistics(conn: psycopg.Connection, text: str, mis: list[dict]) -> list[Recommendation]:
    sh = shape(text)
    names = [".".join(f'"{p}"' for p in t.split(".")) for t in sh.tables]
    out = []
    for t in sqltune_reads.tables(conn, names) if names else []:
        live_rows = float(t["n_live_tup"] or 0)
        changed = float(t["n_mod_since_analyze"] or 0)
        never = t["last_analyze"] is None and t["last_autoanalyze"] is None
        stale = (never and live_rows > 0) or (changed > max(50.0, 0.1 * max(live_rows, 1.0)))
        off = [m for m in mis if m["table"] == t["table_name"] and m["schema"] == t["schema"]]
        if not stale and not off:
            continue
        ident = f'"{t["schema"]}"."{t["table_name"]}"'
        why = []
        if never:
            why.append("it has never been analysed")
        elif stale:
            why.append(f"{changed:.0f} rows changed since the last analyze ({live_rows:.0f} live)")
        if t["reltuples"] is not None and t["reltuples"] < 0:
            why.append("the planner has no row count for it")
        for m in off[:2]:
            why.append(
                f"the {m['node']} estimated {m['estimated_rows']:.0f} rows and read "
                f"{m['actual_rows']:.0f} ({m['factor']}x off)"
            )
        if not t["autoanalyze_on"]:
            why.append("auto-analyze is off for it")
        out.append(
            Recommendation(
                "statistics",
                f"ANALYZE {ident};",
                f"Statistics of {t['schema']}.{t['table_name']} are stale: " + "; ".join(why),
                why_not="ANALYZE changes the target's statistics: accept it (through the action "
                "policy) and run the task again to measure the plan it gives",
                evidence={
                    "n_live_tup": live_rows,
                    "n_mod_since_analyze": changed,
                    "reltuples": t["reltuples"],
                    "misestimates": off,
                },
            )
        )
    return out


def _index_candidates(conn: psycopg.Connection, text: str, plan: dict[str, Any]) -> list[tuple]:
    out = []
    for n in _walk(plan):
        if n.get("Node Type") != "Seq Scan" or not n.get("Filter"):
            continue
        schema, table = n.get("Schema") or "public", n["Relation Name"]
        cols = indexcols.index_columns(n["Filter"], text)
        if not cols:
            continue
        rows = sqltune_reads.tables(conn, [f'"{schema}"."{table}"'])
        total = (
            max(float(rows[0]["reltuples"] or 0), float(rows[0]["n_live_tup"] or 0)) if rows else 0
        )
        if total < MIN_TABLE_ROWS:
            continue
        existing = sqltune_reads.indexes(conn, schema, table)
        if any(ix["columns"] and ix["columns"][0] == cols[0] for ix in existing):
            continue
        out.append((whatif.IndexSpec(schema, table, tuple(dict.fromkeys(cols))[:3]), n, total))
    return out


def _index(
    conn: psycopg.Connection,
    text: str,
    plan: dict[str, Any],
    *,
    clone_dsn: str | None,
    executable: bool,
    runs: int,
    timeout_ms: int,
) -> list[Recommendation]:
    out = []
    for spec, node, total in _index_candidates(conn, text, plan):
        hypo = whatif.hypothetical(conn, text, spec)
        rec = Recommendation(
            "index",
            spec.ddl(name=f"{spec.table}_{'_'.join(spec.columns)}_idx"[:63]),
            f"Seq Scan on {spec.schema}.{spec.table} ({total:.0f} rows) filtering "
            f"{node['Filter']} (estimated {node.get('Plan Rows')} rows kept): no valid index "
            f"leads with {spec.columns[0]} (index columns: equalities, then a range or the "
            "ORDER BY of a LIMIT)",
            evidence={"filter": node["Filter"], "table_rows": total},
        )
        if hypo.method == "hypopg" and hypo.cost_before is not None:
            rec.method, rec.cost_before, rec.cost_after = (
                "hypopg",
                hypo.cost_before,
                hypo.cost_after,
            )
            rec.evidence["hypopg_used"] = hypo.used
            if not hypo.used:
                rec.type = "note"
                rec.rationale += "; hypopg: the planner would not use such an index"
            rec.why_not = hypo.why_not
        elif hypo.why_not:
            rec.evidence["hypopg"] = hypo.why_not
        if clone_dsn and executable:
            try:
                w = whatif.on_clone(clone_dsn, text, spec, runs=runs, timeout_ms=timeout_ms)
            except (psycopg.Error, Exception) as exc:  # noqa: BLE001 - the clone's error is an answer
                rec.why_not = f"the clone trial failed: {str(exc).strip().splitlines()[0]}"
            else:
                rec.method = "clone"
                rec.before_ms, rec.after_ms = w.before_ms, w.after_ms
                rec.measured_speedup, rec.why_not = w.measured_speedup, w.why_not
                rec.cost_before = rec.cost_before or w.cost_before
                rec.cost_after = rec.cost_after if rec.method == "hypopg" else w.cost_after
                rec.evidence.update({"clone_used_index": w.used, "runs": w.runs})
        elif rec.method is None:
            rec.why_not = (
                (hypo.why_not or "no hypopg")
                + "; and no clone was given to build it on (`opscore backup restore --target T "
                "--to DIR --start`, then `--clone NAME`): not measured"
                if executable
                else "the statement is not executed (see why_not_executed): not measured"
            )
        out.append(rec)
    return out


def _rewrites(
    conn: psycopg.Connection, text: str, executable: bool, runs: int, timeout_ms: int
) -> list[Recommendation]:
    found, rewrite = structure.check(text)
    out = [
        Recommendation("structure", None, f.message, evidence={"kind": f.kind, "column": f.column})
        for f in found
    ]
    if rewrite is None:
        return out
    rec = Recommendation(
        "rewrite",
        rewrite,
        "Rewritten so an index on the column can serve the predicate: "
        + "; ".join(f.message for f in found if f.kind == "non_sargable"),
    )
    if not executable:
        rec.why_not = "the statement is not executed: the rewrite is not verified"
    else:
        try:
            same = whatif.same_rows(conn, text, rewrite, timeout_ms=timeout_ms)
            rec.evidence["same_rows"] = same
            if not same:
                rec.type = "note"
                rec.rationale = "A rewrite was tried and returned different rows: not advised"
                rec.why_not = "different rows"
            else:
                b, a, _ = whatif.compare(conn, text, rewrite, runs=runs, timeout_ms=timeout_ms)
                rec.method, rec.before_ms, rec.after_ms = "target", _median(b), _median(a)
                rec.measured_speedup = _ratio(rec.before_ms, rec.after_ms)
                rec.evidence["runs"] = runs
        except (psycopg.Error, ValueError) as exc:
            rec.why_not = f"not verified: {str(exc).strip().splitlines()[0]}"
    out.append(rec)
    return out


def _settings_to_try(doc: dict[str, Any]) -> list[tuple[dict[str, str], str]]:
    plan = doc["Plan"]
    out = []
    disk = [n for n in _walk(plan) if n.get("Sort Space Type") == "Disk"]
    batches = [n for n in _walk(plan) if int(n.get("Hash Batches") or 1) > 1]
    if disk or batches:
        kb = max([int(n.get("Sort Space Used") or 0) for n in disk] + [4096])
        mb = max(16, min(1024, 4 * kb // 1024 + 1))
        out.append(({"work_mem": f"{mb}MB"}, "sorts or hashes spilled to disk"))
    if doc.get("JIT"):
        out.append(({"jit": "off"}, "JIT compiled this statement"))
    loops = [
        c
        for n in _walk(plan)
        if n.get("Node Type") == "Nested Loop"
        for c in n.get("Plans", [])[1:]
        if int(c.get("Actual Loops") or 0) >= 1000
    ]
    if loops:
        out.append(({"enable_nestloop": "off"}, "a nested loop ran its inner side 1000+ times"))
    # A hash join built on an input estimated 10x too small: the planner chose it on a wrong
    # size, so the other join methods are worth measuring.
    if any(n.get("Node Type") == "Hash" and _off_by(n) >= 10 for n in _walk(plan)):
        out.append(({"enable_hashjoin": "off"}, "a hash join's build side was misestimated 10x+"))
    # A merge join fed by a sort that went to disk: the sort is the price of the method.
    for n in _walk(plan):
        if n.get("Node Type") == "Merge Join" and any(
            c.get("Node Type") == "Sort" and c.get("Sort Space Type") == "Disk"
            for c in n.get("Plans", [])
        ):
            out.append(({"enable_mergejoin": "off"}, "a merge join sorted its input on disk"))
            break
    # Sequential scans that read a large table to keep few rows while the planner judged an
    # index path dearer: random_page_cost 4 (the default) models spinning disks; on SSD-class
    # storage 1.1 is usual. Measured, never assumed (the storage is not known from here).
    scans = [
        n
        for n in _walk(plan)
        if n.get("Node Type") == "Seq Scan"
        and int(n.get("Rows Removed by Filter") or 0) >= 10_000
        and int(n.get("Rows Removed by Filter") or 0) >= 20 * max(int(n.get("Actual Rows") or 0), 1)
    ]
    if scans:
        out.append(
            ({"random_page_cost": "1.1"}, "a sequential scan kept under 5 % of 10,000+ rows read")
        )
    return out


def _off_by(node: dict[str, Any]) -> float:
    """How many times the planner's row estimate missed the actual rows (either way)."""
    est = max(float(node.get("Plan Rows") or 0), 1.0)
    act = max(float(node.get("Actual Rows") or 0) * max(int(node.get("Actual Loops") or 1), 1), 1.0)
    return max(est / act, act / est)


def _settings(
    conn: psycopg.Connection, text: str, doc: dict[str, Any], runs: int, timeout_ms: int
) -> list[Recommendation]:
    out = []
    for settings, why in _settings_to_try(doc):
        lines = " ".join(f"SET LOCAL {k} = '{v}';" for k, v in settings.items())
        rec = Recommendation(
            "setting", lines, f"Tried because {why}", evidence={"settings": settings}
        )
        try:
            b, a, _ = whatif.compare(
                conn, text, text, after_settings=settings, runs=runs, timeout_ms=timeout_ms
            )
        except (psycopg.Error, ValueError) as exc:
            rec.why_not = f"not measured: {str(exc).strip().splitlines()[0]}"
        else:
            rec.method, rec.before_ms, rec.after_ms = "target", _median(b), _median(a)
            rec.measured_speedup = _ratio(rec.before_ms, rec.after_ms)
        out.append(rec)
    return out


def advise(
    conn: psycopg.Connection,
    text: str,
    *,
    clone_dsn: str | None = None,
    execute: bool = True,
    runs: int = 3,
    timeout_ms: int = 30000,
) -> StatementAdvice:
    """Analyse one statement on a monitoring connection to its database (see the module)."""
    structure.parse(text)  # ParseFailed: the parser's message
    body = live.rewrite_typed_params(text.strip().rstrip(";").strip())
    p = live.plan(conn, body, fmt="json")
    ro = whatif.read_only_reason(body)
    params: dict[str, Any] = {}
    if ro is None and structure.param_numbers(body):
        bound, params, missing = bind_parameters(conn, body)
        if missing:
            ro = (
                "it has parameter placeholders with no sampled values ("
                + ", ".join(f"${n}" for n in missing)
                + ": not compared with a column that has statistics)"
            )
        else:
            body = bound
    if ro is None and not execute:
        ro = "execution was not allowed for this task"
    if ro is None and p.plan is None:
        ro = f"it has no plan: {p.reason}"
    adv = StatementAdvice(text, p.method, p.reason, False, ro, None, [], [], params, body)
    doc = None
    if ro is None:
        try:
            times, doc = whatif.measure(conn, body, runs=runs, timeout_ms=timeout_ms)
            adv.executed = True
            adv.before_ms = _median(times)
            adv.misestimates = misestimates(doc["Plan"]) if doc else []
        except (psycopg.Error, ValueError) as exc:
            adv.why_not_executed = f"execution failed: {str(exc).strip().splitlines()[0]}"
    executable = adv.executed
    adv.recommendations += _statistics(conn, body, adv.misestimates)
    plan = doc["Plan"] if doc else p.plan
    if isinstance(plan, dict):
        adv.recommendations += _index(
            conn, body, plan, clone_dsn=clone_dsn, executable=executable, runs=runs,
            timeout_ms=timeout_ms,
        )  # fmt: skip
    adv.recommendations += _rewrites(conn, body, executable, runs, timeout_ms)
    if doc is not None:
        adv.recommendations += _settings(conn, body, doc, runs, timeout_ms)
    return adv


def bind_parameters(conn: psycopg.Connection, text: str) -> tuple[str, dict[str, Any], list[int]]:
    """Values for the statement's ``$n`` from the planner's statistics of the column each is
    compared with (a most common value, else the middle histogram bound): (the statement with
    them bound, what was used, the parameters left without a value)."""
    cols = structure.parameter_columns(text)
    stats = sqltune_reads.column_values(conn, sorted(set(cols.values())))
    chosen: dict[int, str] = {}
    used: dict[str, Any] = {}
    for n, key in cols.items():
        vals, source = stats.get(key, ([], None))
        if not vals:
            continue
        v = vals[-1] if source == "most common value" else vals[len(vals) // 2]
        chosen[n] = v
        used[f"${n}"] = {"value": v, "column": f"{key[0]}.{key[1]}", "source": source}
    for n, v in indexcols.limit_params(text).items():
        if n not in chosen:
            chosen[n] = v
            used[f"${n}"] = {"value": v, "column": None, "source": "LIMIT/OFFSET (no statistics)"}
    missing = sorted(structure.param_numbers(text) - set(chosen))
    return (structure.bind_values(text, chosen) if not missing else text), used, missing
