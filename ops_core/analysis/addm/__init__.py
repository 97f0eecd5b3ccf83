"""ADDM: automatic diagnosis of a snapshot range, ranked by DB time. Pure: frames in,
findings out (``analyze``).

DB time = ASH time of sessions on CPU or in non-idle waits (ClientRead and sessions idle in
transaction are not DB time), cross-checked with pg_stat_statements execution time over the
snapshot range. Without ASH samples, DB time falls back to pg_stat_statements and only the
findings that snapshots can support are made (``basis='snapshot'``).

Modules: :mod:`.sqlshape` (statement text -> tables, predicate columns), :mod:`.dbtime`
(totals, breakdowns, per-statement profile), :mod:`.sessions` (locks, idle in transaction,
vacuum blocked, connections), :mod:`.sqlfind` (missing index, stale statistics, temp spills,
I/O-bound, CPU-bound, top SQL), :mod:`.server` (checkpoints, commit waits), :mod:`.waitfind`
(any other wait event taking a significant share of DB time that no finding explains).
"""

from __future__ import annotations

from .baseline import history
from .churn import churn_findings
from .dbtime import background_samples, breakdown, db_samples, statement_profile
from .model import CAUSES, PRIORITY, AddmInput, AddmResult, Finding, Recommendation
from .server import bulk_writers, checkpoint_findings, commit_findings, wal_volume_findings
from .sessions import connection_findings, lock_findings, vacuum_findings
from .sqlfind import CpuLoad, statement_findings, top_sql_findings
from .sqlshape import SqlShape, shape
from .waitfind import wait_findings

__all__ = [
    "AddmInput",
    "AddmResult",
    "Finding",
    "Recommendation",
    "SqlShape",
    "analyze",
    "nest",
    "shape",
]

TIE_PCT = 1.0


def _related(cause: Finding, symptom: Finding) -> bool:
    if (cause.type, symptom.type) not in CAUSES:
        return False
    if cause.type == "idle_in_transaction":  # the idle holder is among the waiters' blockers
        roots = {b["pid"] for b in symptom.evidence.get("root_blockers", [])}
        return bool(set(cause.sessions) & roots) or bool(set(cause.objects) & set(symptom.objects))
    if cause.type == "wait_event":  # the lock's root blocker is itself stuck in that wait
        roots = {b["pid"] for b in symptom.evidence.get("root_blockers", [])}
        return bool(set(cause.sessions) & roots)
    if cause.type == "wal_volume" and symptom.type == "commit_waits":
        return True
    if cause.type == "wal_volume" and symptom.type == "checkpoint_pressure":
        return bool(symptom.evidence.get("requested_by_bulk_load"))
    tables = {o for o in cause.objects if o.count(".") == 1}
    return bool(tables & set(symptom.objects))


def nest(problems: list[Finding]) -> list[Finding]:
    """Order: by the DB time a finding explains, a cause's own time plus its symptoms' (ties
    by root-cause priority); each symptom right after its cause, linked to it."""
    cause_of: dict[int, Finding] = {}
    for s in problems:
        for c in problems:
            if c is not s and id(s) not in cause_of and _related(c, s):
                cause_of[id(s)] = c
    roots = [f for f in problems if id(f) not in cause_of]

    def explained(f: Finding) -> float:
        return f.score + sum(s.score for s in problems if cause_of.get(id(s)) is f)

    roots.sort(key=lambda f: (-round(explained(f), 1), PRIORITY.index(f.type)))
    out: list[Finding] = []
    for r in roots:
        out.append(r)
        kids = sorted((s for s in problems if cause_of.get(id(s)) is r), key=lambda f: -f.score)
        for k in kids:
            k.evidence["_cause"] = r
            out.append(k)
    return out


def analyze(inp: AddmInput) -> AddmResult:
    notes: list[str] = []
    has_ash = not inp.samples.empty
    prof = statement_profile(inp)
    pgss_s = float(prof["exec_s"].sum()) if len(prof) else 0.0
    ash_s = float(db_samples(inp.samples)["weight_s"].sum()) if has_ash else None
    if has_ash:
        total, source, basis = float(ash_s or 0.0), "ash", "ash"
        if pgss_s > 0 and total > 0:
            ratio = pgss_s / total
            notes.append(
                f"DB time cross-check: ASH {total:.1f} s, pg_stat_statements execution time "
                f"{pgss_s:.1f} s (ratio {ratio:.2f}); ASH also counts time outside statements "
                "(parse, commit, parallel workers) and pg_stat_statements only completed calls."
            )
    else:
        total, source, basis = pgss_s, "pg_stat_statements", "snapshot"
        notes.append(
            "No ASH samples in this range: ADDM needs ASH for DB time by wait, lock chains and "
            "sessions. DB time here is pg_stat_statements execution time, and the findings are "
            "snapshot-only (no lock, idle-in-transaction or commit-wait findings). Run the ASH "
            "sampler (`opscore ash run`) during the period you want diagnosed."
        )
    bg = background_samples(inp.samples) if has_ash else inp.samples
    if has_ash and not bg.empty:
        bg_s = float(bg["weight_s"].sum())
        by = bg.groupby("backend_type")["weight_s"].sum().sort_values(ascending=False)
        notes.append(
            f"Background processes (not DB time, see the background section): {bg_s:.1f} s "
            + ", ".join(f"{k} {v:.1f} s" for k, v in by.items())
        )
    load = CpuLoad(cpus=inp.cpu_count)
    if has_ash and inp.elapsed_s > 0:
        cpu_aas = (
            float(db_samples(inp.samples).query("wait_class == 'CPU'")["weight_s"].sum())
            / inp.elapsed_s
        )
        load.cpu_aas = cpu_aas
        if inp.cpu_count:
            notes.append(f"Average sessions on CPU {cpu_aas:.2f} for {inp.cpu_count} CPUs.")
        else:
            notes.append("CPU count of the target host not known: CPU-bound findings need it.")
    findings: list[Finding] = []
    findings += lock_findings(inp, prof, total)
    findings += vacuum_findings(inp, prof, total)
    findings += connection_findings(inp, total)
    findings += churn_findings(inp, total)
    findings += checkpoint_findings(inp, prof, total, basis)
    cp = any(f.type == "checkpoint_pressure" for f in findings)
    wv = wal_volume_findings(inp, prof, total)
    if wv and cp:
        # requested checkpoints with max_wal_size at or above its default, most WAL from bulk
        # writers: the load requests them (the checkpoints are its symptom); with a smaller
        # max_wal_size the setting is the cause and keeps the writers' time
        c = next(f for f in findings if f.type == "checkpoint_pressure")
        mws = inp.settings.get("max_wal_size")
        bulk = float(bulk_writers(prof)["wal_bytes"].sum())
        all_wal = float(prof["wal_bytes"].sum()) or 1.0
        if isinstance(mws, int | float) and mws >= 1024 and bulk >= 0.5 * all_wal:
            c.evidence["requested_by_bulk_load"] = True
        else:
            wv = []
    findings += wv
    for f in commit_findings(inp, total, prof):
        if cp:  # a symptom of the checkpoint pressure: evidence there, not a finding of its own
            next(x for x in findings if x.type == "checkpoint_pressure").evidence["wal_waits"] = (
                f.evidence
            )
        else:
            findings.append(f)
    taken_by_cause = {
        s["queryid"]
        for f in findings
        if f.type in ("checkpoint_pressure", "vacuum_blocked", "wal_volume")
        for s in f.statements
        if s.get("queryid") is not None
    }
    hist = history(inp, prof)
    notes.append(
        f"Statements judged against their history: {hist.intervals} earlier interval(s) "
        f"({hist.span.get('from')} .. {hist.span.get('to')}), {len(hist.sums)} statements"
        + (
            f"; the statements seen in both run {hist.slowdown:.2f}x their usual time per call"
            if hist.slowdown
            else ""
        )
        if hist.known
        else "No earlier snapshots of this target: statements cannot be judged against their "
        "history, so a statement's CPU use alone must be large to be reported."
    )
    stmt = statement_findings(
        inp, prof[~prof["queryid"].isin(taken_by_cause)], total, basis, load, hist
    )
    findings += stmt
    if has_ash:  # the safety net: a wait no finding above explains
        above = [f for f in findings if f.score >= inp.min_impact_pct]
        findings += wait_findings(inp.samples, prof, total, inp.min_impact_pct, above)
    taken = {s["queryid"] for f in findings for s in f.statements if s.get("queryid") is not None}
    problems = [f for f in findings if f.score >= inp.min_impact_pct]
    omitted = [f for f in findings if f.score < inp.min_impact_pct]
    if omitted:
        notes.append(
            f"{len(omitted)} finding(s) below the {inp.min_impact_pct:g} % threshold omitted: "
            + "; ".join(f"{f.type} {f.score:.1f} %" for f in omitted)
        )
    problems.sort(key=lambda f: (-round(f.score, 1), PRIORITY.index(f.type)))
    info: list[Finding] = []
    if not problems:
        info.append(
            Finding(
                type="nothing_significant",
                title="Nothing significant: no problem above "
                f"{inp.min_impact_pct:g} % of DB time"
                + (
                    f" (DB time {total:.1f} s, {total / inp.elapsed_s:.2f} average active sessions)"
                    if inp.elapsed_s > 0
                    else ""
                ),
                impact_db_time_s=0.0,
                impact_pct=0.0,
                basis=basis,
                evidence={"db_time_s": round(total, 2)},
            )
        )
    # on a quiet interval (under a second of DB time, or 1 % of one session) the top
    # statements are noise (often unmarkable COMMITs of monitoring transactions): none shown
    if total >= max(1.0, 0.01 * inp.elapsed_s):
        info += top_sql_findings(prof, total, taken, inp.min_impact_pct, basis)
    ranked = nest(problems) + info
    for i, f in enumerate(ranked, 1):
        f.rank = i
    for f in ranked:  # the cause link, by rank (stored with the finding's evidence)
        c = f.evidence.pop("_cause", None)
        if c is not None:
            f.evidence["caused_by_rank"] = c.rank
            f.evidence["caused_by"] = c.type
    for a, b in zip(problems, problems[1:], strict=False):
        if abs(a.score - b.score) < TIE_PCT:
            order = " > ".join(t for t in PRIORITY if t in (a.type, b.type))
            why = (
                f"findings {a.rank} ({a.type}, {a.score:.1f} %) and {b.rank} ({b.type}, "
                f"{b.score:.1f} %) are within {TIE_PCT:g} point of DB time: ranked by "
                f"root-cause priority ({order})"
            )
            a.evidence["tie"] = b.evidence["tie"] = why
    bd = breakdown(inp, prof, total)
    planned = [r for r in bd["sql"] if r.get("plan")]
    if bd["sql"]:
        notes.append(
            f"Plans: {len(planned)} of the {len(bd['sql'])} top statements planned (generic "
            "plans, never executed); the others with the reason in the SQL breakdown."
        )
    return AddmResult(
        db_time_s=round(total, 3),
        db_time_source=source,
        ash_db_time_s=None if ash_s is None else round(ash_s, 3),
        pgss_time_s=round(pgss_s, 3),
        elapsed_s=inp.elapsed_s,
        ash_samples=int(len(inp.samples)),
        breakdown=bd,
        findings=ranked,
        notes=notes,
    )
