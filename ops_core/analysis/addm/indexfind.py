"""Missing index: selective equality lookups that scanned a large table during the range.

The analysis is about the range, not about the catalog at the time it runs: an index created
(or rebuilt) after the lookups ran does not undo the DB time they spent scanning. So the live
catalog (which indexes exist now, and whether they are valid) is combined with what the range
recorded:

- no valid index leads with the column now: the lookups scan, the index is missing;
- a valid one exists now, but it served fewer scans in the range than the statement had calls
  (pg_stat_user_indexes deltas) and the statement itself read a large share of the table's pages
  per call (pg_stat_statements buffers): during the range the lookups ran without it (it was
  created since, was invalid, or the planner did not use it). The finding then says which index
  exists now and, from the current generic plan where the server can tell (16+), whether the
  statement uses it now.

Pure.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from psycopg import sql

from .indexbase import (
    LARGE_TABLE_ROWS,
    SCAN_SHARE,
    SELECTIVE,
    IndexState,
    _index_finding,
    _plan_index,
    _scans,
    _table_pages,
    _table_rows,
    filter_columns,
    index_state,
    missing_index_finding,
    scan_time_s,
)
from .indexplans import join_missing_index, sort_limit_missing_index, weak_index_missing_index
from .model import AddmInput, Finding, Recommendation, pct, qident, qtable
from .sqlshape import canonical_expr, leading_index_expr, predicate_likes


def plan_missing_index(inp: AddmInput, r: Any, sh: Any, tables: dict[str, Any], total: float):
    """Missing index decided from the statement's plan: a sequential scan with a selective
    equality filter on a large table, with no valid index leading with the filtered column.
    None when there is no plan (the caller falls back to the table counters)."""
    if inp.explain is None:
        return None  # (calls may be 0: a statement seen by ASH only, its plan decides)
    datname = getattr(r, "datname", None)
    if datname is not None and not pd.isna(datname) and datname != inp.catalog_database:
        return None
    p = inp.explain(r.query)
    if not p:
        return None
    for node in _scans(p, []):
        table = f"{node.get('Schema') or 'public'}.{node.get('Relation Name')}"
        t = tables.get(table)
        rows = _table_rows(inp, table, t, float(node.get("Plan Width") or 0))
        if rows < LARGE_TABLE_ROWS:
            continue
        est = float(node.get("Plan Rows") or 0)
        per_call = float(r.rows) / float(r.calls) if r.calls > 0 else est
        if node.get("Parallel Aware"):
            est *= 1 + int(node.get("Workers Planned") or p.get("Workers Planned") or 0)
        limit = max(1.0, SELECTIVE * rows)
        if est > limit or (not sh.aggregates and sh.kind == "select" and per_call > limit):
            continue
        cols = [c for tb, c in sh.eq_columns if tb == table] or filter_columns(node["Filter"])
        for column in cols:
            group = next((g for g in sh.or_columns if (table, column) in g), None)
            if group is not None and all(tb == table for tb, _ in group):
                f = _or_finding(inp, r, table, [c for _, c in group], node, rows, per_call, total)
                if f is not None:
                    return f
                continue
            st = index_state(inp, inp.catalog_database, table, column)
            if st is None or not st.missing:
                continue
            ev: dict[str, Any] = {
                "queryid": int(r.queryid),
                "calls": int(r.calls),
                "rows_per_call": round(per_call, 2),
                "table_rows": round(rows),
                "n_live_tup": int(t.n_live_tup or 0) if t is not None else None,
                "predicate": node["Filter"],
                "plan": {
                    "node": "Parallel Seq Scan" if node.get("Parallel Aware") else "Seq Scan",
                    "filter": node["Filter"],
                    "estimated_rows": est,
                    "method": "plan",
                },
                "db_time_s": round(float(r.db_time_s), 3),
            }
            return _finding(r, table, column, rows, per_call, ev, st, total)
        for tb, column, expr, how in sh.eq_exprs:
            # parameters inside (substr(code, $1, $2)): pg_stat_statements hid the constants
            # an index on the expression would need
            if tb != table or "$" in expr or _expr_indexed(inp, table, expr):
                continue
            ev = {**_scan_evidence(r, node, rows, per_call, est), "expression": expr}
            return _expr_finding(inp, r, table, column, expr, how, rows, per_call, ev, total)
        likes = [(c, op) for tb, c, op in sh.like_columns if tb == table] or list(
            predicate_likes(node["Filter"])
        )
        for column, op in likes:
            st = index_state(inp, inp.catalog_database, table, column)
            if st is None or _trigram_indexed(inp, table, column):
                continue
            ev = _scan_evidence(r, node, rows, per_call, est)
            return _like_finding(inp, r, table, column, op, st, rows, per_call, ev, total)
    # the other plan shapes (ORDER BY ... LIMIT, a hash join): indexplans
    return (
        sort_limit_missing_index(inp, r, p, tables, total)
        or join_missing_index(inp, r, p, tables, total)
        or weak_index_missing_index(inp, r, p, tables, total)
    )


#: functions an index expression may use as they are (IMMUTABLE in PostgreSQL, one column in):
#: others (date() of a timestamptz, to_char, unaccent...) are not, or not always, so the
#: advice is to compare the column itself
IMMUTABLE_FUNCTIONS = frozenset(
    "lower upper btrim ltrim rtrim md5 abs length char_length character_length octet_length "
    "reverse initcap sha224 sha256 sha384 sha512 floor ceil ceiling round trunc sign".split()
)


def _expr_indexed(inp: AddmInput, table: str, expr: str) -> bool:
    """A valid index of ``table`` leads with ``expr`` (compared without casts)."""
    want = canonical_expr(expr, casts=False)
    for d in inp.index_catalog.get(table) or []:
        if d.get("valid", True) and d.get("exprs") and leading_index_expr(d["exprs"]) == want:
            return True
    return False


def _expr_finding(inp, r, table, column, expr, how, rows, per_call, ev, total) -> Finding:
    """Selective lookups by a function or cast of a column: an index on the column (if any)
    cannot serve them; an index on the expression, or comparing the column itself, can."""
    impact = scan_time_s(r)
    ev["scan_time_s"] = round(impact, 3)
    benefit = 0.95 * impact
    st = index_state(inp, inp.catalog_database, table, column)
    on_col = [d.get("name") or f"the index on {column}" for d in (st.valid if st else [])]
    ev["column_indexes"] = on_col
    title = f"Missing index on {table} ({expr}): lookups by {expr} scan the whole table"
    if on_col:
        title += f" ({on_col[0]} on {column} cannot serve them)"
    lead = (
        f"Each call reads ~{rows:,.0f} rows to return ~{per_call:.1f}: the predicate compares "
        f"{expr}, not {column} itself, so "
        + (f"{on_col[0]} on {column} is of no use to it" if on_col else "no index serves it")
    )
    fn = expr.split("(", 1)[0].strip().lower() if how == "function" else ""
    col = qident(column)
    # ``expr`` is pglast's deparse of the statement's own expression: identifiers quoted as
    # PostgreSQL needs them, no parameters (refused above), so it is written into the action
    if how == "function" and fn in IMMUTABLE_FUNCTIONS:
        recs = [
            Recommendation(
                "sql",
                f"CREATE INDEX CONCURRENTLY ON {qtable(table)} (({expr}));",
                lead + f"; an index on the expression makes each lookup read a few pages (or "
                f"compare {column} itself, if the application can).",
                benefit,
                pct(benefit, total),
            )
        ]
    elif how == "cast":
        recs = [
            Recommendation(
                "application",
                f"Compare {col} with a value of its own type: cast the parameter, not the "
                f"column (WHERE {col} = $1::<type of {column}>).",
                lead + f"; cast that way, the lookup can use an index on {column} (create one "
                "if there is none). An index on the cast expression would also serve it.",
                benefit,
                pct(benefit, total),
            )
        ]
    else:
        recs = [
            Recommendation(
                "application",
                f"Rewrite the predicate on {expr} so that {col} is compared itself (e.g. "
                f"date(ts) = $1 as ts >= $1 AND ts < $1 + 1 day), then index {col}.",
                lead + f"; an index on ({expr}) also serves it when {fn or 'the expression'} "
                "is IMMUTABLE (PostgreSQL refuses the index otherwise).",
                benefit,
                pct(benefit, total),
            )
        ]
    return _column_finding(r, table, column, title, impact, ev, recs, total)


def _scan_evidence(r: Any, node: dict, rows: float, per_call: float, est: float) -> dict:
    """What a plan's filtered sequential scan shows, for a finding's evidence."""
    return {
        "queryid": int(r.queryid),
        "calls": int(r.calls),
        "rows_per_call": round(per_call, 2),
        "table_rows": round(rows),
        "predicate": node["Filter"],
        "plan": {"node": node.get("Node Type"), "filter": node["Filter"],
                 "estimated_rows": est, "method": "plan"},
        "db_time_s": round(float(r.db_time_s), 3),
    }  # fmt: skip


def _or_finding(inp, r, table, group, node, rows, per_call, total) -> Finding | None:
    """``email = $1 OR phone = $2`` scanning the table: an index serves only its own arm, and
    the planner combines one per column (BitmapOr) only when every column has one. One CREATE
    INDEX per column that lacks it; None when all have one or the catalog was not read."""
    states = [index_state(inp, inp.catalog_database, table, c) for c in group]
    if any(st is None for st in states):
        return None
    missing = [c for c, st in zip(group, states, strict=True) if st.missing]
    if not missing:
        return None
    impact = scan_time_s(r)
    benefit = 0.95 * impact
    est = float(node.get("Plan Rows") or 0)
    ev = {**_scan_evidence(r, node, rows, per_call, est), "or_columns": group,
          "scan_time_s": round(impact, 3)}  # fmt: skip
    why = (
        f"Each call reads ~{rows:,.0f} rows to return ~{per_call:.1f}: the lookups are an OR "
        f"over {', '.join(group)}, and an index serves only its own column's arm; with one "
        "on each column the planner combines them (BitmapOr)."
    )
    recs = [
        Recommendation(
            "sql",
            f"CREATE INDEX CONCURRENTLY ON {qtable(table)} ({qident(c)});",
            why,
            benefit if i == 0 else None,
            pct(benefit, total) if i == 0 else None,
        )
        for i, c in enumerate(missing)
    ]
    title = (
        f"Missing index on {table} ({', '.join(missing)}): lookups by {' OR '.join(group)} "
        "scan the whole table (each column of the OR needs its own index)"
    )
    return missing_index_finding(r, table, missing, title, impact, ev, recs, total)


def _trigram_indexed(inp: AddmInput, table: str, column: str) -> bool:
    """A valid trigram index (pg_trgm's GIN or GiST operator class) leads with ``column``."""
    return any(
        d.get("valid", True)
        and d.get("columns")[:1] == [column]
        and "trgm" in (d.get("method") or "")
        for d in inp.index_catalog.get(table) or []
    )


def _like_finding(inp, r, table, column, op, st: IndexState, rows, per_call, ev, total):
    """A pattern match (LIKE / ILIKE) scanning a large table for a few rows: a B-tree on the
    column serves neither a pattern starting with a wildcard nor a pattern given as a parameter
    (a generic plan), nor ILIKE; a trigram index serves all of them."""
    impact = scan_time_s(r)
    ev["scan_time_s"] = round(impact, 3)
    benefit = 0.95 * impact
    kind = "ILIKE" if op == "~~*" else "LIKE"
    named = ", ".join(d["name"] for d in st.valid if d.get("name"))
    title = f"Missing index on {table} ({column}): {kind} pattern searches scan the whole table"
    if named:
        title += f" ({named} cannot serve them)"
        ev["index_now"] = named
    why = (
        f"Each call reads ~{rows:,.0f} rows to return ~{per_call:.1f}: {kind} with a pattern "
        "that starts with a wildcard, or one given as a parameter, cannot use a B-tree on the "
        "column; a trigram index (pg_trgm) serves LIKE and ILIKE with any pattern of 3+ "
        "characters."
    )
    recs = []
    if "pg_trgm" not in inp.extensions:
        recs.append(
            Recommendation(
                "sql",
                "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
                f"The trigram operator classes (pg_trgm is not created in {inp.catalog_database}"
                "; it ships with PostgreSQL's contrib modules).",
            )
        )
    recs.append(
        Recommendation(
            "sql",
            f"CREATE INDEX CONCURRENTLY ON {qtable(table)} USING gin ({qident(column)} "
            "gin_trgm_ops);",
            why,
            benefit,
            pct(benefit, total),
        )
    )
    return _column_finding(r, table, column, title, impact, ev, recs, total)


def _column_finding(r, table, column, title, impact, ev, recs, total) -> Finding:
    """A missing_index finding on one column of ``table`` for statement ``r``."""
    return missing_index_finding(r, table, [column], title, impact, ev, recs, total)


def missing_index(inp: AddmInput, r: Any, sh: Any, tables: dict[str, Any], total: float):
    """A missing-index finding for statement profile row ``r`` (shape ``sh``), or None: from
    the statement's plan where there is one, else from the range's table counters, else a
    foreign key its DELETE (or UPDATE of the key) checks by scanning the referencing table."""
    f = plan_missing_index(inp, r, sh, tables, total)
    if f is None:
        f = _counters_missing_index(inp, r, sh, tables, total)
    return f if f is not None else foreign_key_missing_index(inp, r, sh, tables, total)


#: the referencing table's sequential scans in the range against the rows the DELETEs removed
#: (one foreign-key check per removed row): at least this share, or the scans were not theirs
FK_SCANS_PER_ROW = 0.5


def foreign_key_missing_index(inp: AddmInput, r: Any, sh: Any, tables: dict[str, Any], total):
    """A DELETE on a table that other tables reference by foreign key, or an UPDATE of the
    referenced key: PostgreSQL checks (or cascades to) each referencing table for every row
    removed or re-keyed, with a query on the referencing columns; without an index leading
    with them, each check scans the whole table. The statement's own plan shows an index
    lookup on its table (the checks run in triggers, not in the plan, and with
    pg_stat_statements.track = top nor in the statements): the evidence is the referencing
    table's sequential scans in the range, as many as the rows changed. An UPDATE that does
    not set a referenced column checks nothing (PostgreSQL skips the check)."""
    if not sh.parsed or sh.kind not in ("delete", "update") or r.calls <= 0 or not sh.tables:
        return None
    datname = getattr(r, "datname", None)
    if datname is not None and not pd.isna(datname) and datname != inp.catalog_database:
        return None
    parent = sh.tables[0]
    removed = float(r.rows or 0)
    deleting = sh.kind == "delete"
    for fk in (inp.table_catalog.get(parent) or {}).get("referenced_by") or []:
        child, cols = fk["table"], fk["columns"]
        if not deleting and not set(fk["ref_columns"]) & set(sh.set_columns):
            continue  # the key is not updated: no check
        st = index_state(inp, inp.catalog_database, child, cols[0])
        if st is None or not st.missing:
            continue
        t = tables.get(child)
        rows = _table_rows(inp, child, t)
        scans = int(t.seq_scan or 0) if t is not None and not pd.isna(t.seq_scan) else 0
        if rows < LARGE_TABLE_ROWS or removed <= 0 or scans < FK_SCANS_PER_ROW * removed:
            continue
        ev: dict[str, Any] = {
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "rows_deleted": int(removed),
            "foreign_key": fk["constraint"],
            "referencing_table": child,
            "referencing_columns": cols,
            "referenced_table": parent,
            "referenced_columns": fk["ref_columns"],
            "on_delete": fk["on_delete"],
            "table_rows": round(rows),
            "table_seq_scans": scans,
            "predicate": " AND ".join(f"{c} = $n" for c in cols),
            "db_time_s": round(float(r.db_time_s), 3),
        }
        verb, clause = "deleted from", f"ON DELETE {fk['on_delete']}"
        action = fk["on_delete"]
        if not deleting:
            action = fk.get("on_update", "NO ACTION")  # a catalog kept before it was read
            verb = f"whose key ({', '.join(fk['ref_columns'])}) is updated in"
            clause = f"ON UPDATE {action}"
            ev["on_update"] = action
            ev["rows_updated"] = int(ev.pop("rows_deleted"))
        what = "cascades to" if action == "CASCADE" else "checks"
        return _index_finding(
            r, child, cols, ", ".join(qident(c) for c in cols),
            f"Missing index on {child} ({', '.join(cols)}): every row {verb} {parent} "
            f"scans it for foreign key {fk['constraint']}",
            f"For each of the ~{removed:,.0f} rows {verb} {parent} in this range, "
            f"PostgreSQL {what} {child} on {', '.join(cols)} (foreign key {fk['constraint']}, "
            f"{clause}); with no index leading with {cols[0]} each check "
            f"read the whole table (~{rows:,.0f} rows; {scans:,} sequential scans of it in the "
            f"range). An index makes each check a lookup: most of the {sh.kind.upper()}'s time "
            "goes away.",
            ev, total,
        )  # fmt: skip
    return None


def _counters_missing_index(inp: AddmInput, r: Any, sh: Any, tables: dict[str, Any], total):
    """Missing index from the range's table counters (no plan): selective equality lookups
    whose table's sequential scans read many rows each."""
    if not sh.parsed or sh.aggregates or r.calls <= 0:
        return None
    for table, column in sh.eq_columns:
        t = tables.get(table)
        if t is None or not t.seq_scan:
            continue
        per_scan = float(t.seq_tup_read) / float(t.seq_scan)
        rows_per_call = float(r.rows) / float(r.calls)
        if per_scan < LARGE_TABLE_ROWS or rows_per_call > max(1.0, SELECTIVE * per_scan):
            continue
        datname = getattr(t, "datname", None)
        st = index_state(inp, datname, table, column)
        if st is None:
            continue
        blocks_per_call = float(r.shared_blks_hit + r.shared_blks_read) / float(r.calls)
        pages = _table_pages(inp, table, t)
        ev: dict[str, Any] = {
            "queryid": int(r.queryid),
            "calls": int(r.calls),
            "rows_per_call": round(rows_per_call, 2),
            "table_seq_scans": int(t.seq_scan),
            "rows_read_per_seq_scan": round(per_scan),
            "n_live_tup": int(t.n_live_tup or 0),
            "predicate": f"{column} = $n",
            "blocks_per_call": round(blocks_per_call, 1),
            "table_pages": None if pages is None else int(pages),
            "db_time_s": round(float(r.db_time_s), 3),
        }
        if st.missing:
            return _finding(r, table, column, per_scan, rows_per_call, ev, st, total)
        # an index leads with the column now: did the range's lookups run without it?
        if st.scans_in_range >= r.calls or pages is None:
            continue
        scanned = _pages_per_unindexed_call(r, st, t)
        if scanned < SCAN_SHARE * pages:
            continue
        if scanned > blocks_per_call:
            ev["unindexed_calls"] = int(_unindexed_calls(r, st, t))
            ev["blocks_per_unindexed_call"] = round(scanned, 1)
        return _finding(r, table, column, per_scan, rows_per_call, ev, st, total, inp)
    return None


#: pages an index lookup of one row reads (btree levels and the heap page): what the calls an
#: index served are assumed to have cost when the others' pages are worked out
INDEX_LOOKUP_PAGES = 4


def _unindexed_calls(r: Any, st: IndexState, t: Any) -> float:
    """The calls no index served, at most: not the index's scans in the range, and no more than
    the table's sequential scans (each such lookup is one)."""
    return min(float(r.calls) - st.scans_in_range, float(t.seq_scan or 0))


def _pages_per_unindexed_call(r: Any, st: IndexState, t: Any) -> float:
    """Pages read per call by the calls that ran without the index, when an index exists now.

    The statement's average is diluted by the calls an index did serve: an index dropped for
    part of the range (and recreated since: a new index's scans start as its baseline, so the
    range does not count them) leaves thousands of 4-page lookups around a few hundred scans of
    the whole table. Those calls are taken to cost INDEX_LOOKUP_PAGES each and the rest is
    shared by the unindexed ones, whose number is bounded by the table's sequential scans (more
    of them, from other statements, only lowers the figure: the claim errs on no finding)."""
    blocks = float(r.shared_blks_hit + r.shared_blks_read)
    k = _unindexed_calls(r, st, t)
    if k <= 0:
        return 0.0
    served = float(r.calls) - k
    return max(0.0, blocks - served * INDEX_LOOKUP_PAGES) / k


def _finding(r, table, column, per_scan, rows_per_call, ev, st: IndexState, total, inp=None):
    impact = scan_time_s(r)
    ev["scan_time_s"] = round(impact, 3)
    benefit = 0.95 * impact
    title = f"Missing index on {table} ({column}): selective lookups scan the whole table"
    if st.invalid and st.missing:
        names = ", ".join(d["name"] for d in st.invalid if d.get("name"))
        ev["invalid_indexes"] = names
        recs = [
            Recommendation(
                "sql",
                f"REINDEX INDEX CONCURRENTLY {qtable(st.invalid[0]['name'])};",
                f"{names} leads with {column} but is INVALID (a failed or interrupted CREATE "
                "INDEX CONCURRENTLY): the planner cannot use it, so each lookup scans the table.",
                benefit,
                pct(benefit, total),
            )
        ]
    elif st.missing:
        recs = [
            Recommendation(
                "sql",
                f"CREATE INDEX CONCURRENTLY ON {qtable(table)} ({qident(column)});",
                f"Each call reads ~{per_scan:,.0f} rows to return ~{rows_per_call:.1f}; an index "
                "lookup reads a few pages instead (most of the statement's time goes away).",
                benefit,
                pct(benefit, total),
            )
        ]
    else:
        idx = st.valid[0]
        name = idx.get("name") or f"an index on {table} ({column})"
        uses = _plan_index(inp, r.query, table) if inp is not None else None
        ev["index_now"] = name
        ev["index_scans_in_range"] = st.scans_in_range
        ev["plan_now"] = (
            f"uses {uses}" if uses else "sequential scan" if uses is False else "not available"
        )
        title = (
            f"Missing index on {table} ({column}) during this range: selective lookups scanned "
            f"the whole table ({name} exists now)"
        )
        lead = (
            f"In this range the statement read ~{ev['blocks_per_call']:,.0f} pages per call of "
            f"the table's ~{ev['table_pages']:,} and {name} served {st.scans_in_range:,} scans "
            f"for its {int(r.calls):,} calls: the lookups ran without the index."
        )
        if "blocks_per_unindexed_call" in ev:
            lead = (
                f"In this range up to {ev['unindexed_calls']:,} of the statement's "
                f"{int(r.calls):,} calls ran without an index (the table's sequential scans), "
                f"each reading ~{ev['blocks_per_unindexed_call']:,.0f} of its "
                f"~{ev['table_pages']:,} pages (the others were index lookups; {name} served "
                f"{st.scans_in_range:,} scans in the range): the lookups ran without the index "
                "for part of it."
            )
        if uses:
            recs = [
                Recommendation(
                    "sql",
                    "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelid = "
                    f"{sql.Literal(qtable(name)).as_string(None)}::regclass;",
                    lead + f" The statement's plan uses {uses} now (created or rebuilt since): "
                    "nothing to create; keep it and check that its scans follow the calls.",
                )
            ]
        else:
            recs = [
                Recommendation(
                    "sql",
                    f"ANALYZE {qtable(table)};",
                    lead + " If it was created since, nothing more is needed; if EXPLAIN still "
                    "shows a sequential scan, refresh the statistics and check that the "
                    "parameter's type matches the column (a cast on the column disables the "
                    "index).",
                    benefit,
                    pct(benefit, total),
                )
            ]
    return _column_finding(r, table, column, title, impact, ev, recs, total)
