"""Auto-indexing's cycle (issue 16): look after the indexes it built, then candidates, the
chosen set and its builds, each verified by execution (see ``ops_core.api.autoindex`` for the
whole loop). Every change goes through ``ops_core.targets.actions`` governed by the target's
``auto_indexing`` mode."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import repository
from ..analysis import whatif
from ..analysis.autoindex import IndexCandidate
from ..analysis.tuning import judge_trial
from ..collectors import autoindex as reads
from ..repository import autoindex as store
from ..repository.autoindex import AutoIndex, IndexingConfig
from ..targets import actions, connection
from .autoindex import IndexingCandidates, candidates_with_texts, indexing_config, snapshot_range
from .performance import top_statements
from .targets import get_target, target_dsn

__all__ = ["IndexingStep", "IndexingRun", "run_indexing"]

INDEXER = "auto-indexing"  # requested_by of every action auto-indexing takes
TOLERANCE_PCT = 10.0


def _in_window(cfg: IndexingConfig, now: datetime) -> bool:
    s, e = cfg.window_start_hour, cfg.window_end_hour
    if s is None or e is None:
        return True
    h = now.astimezone(UTC).hour
    return s <= h < e if s < e else (h >= s or h < e)


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
        evidence=evidence, include=c.include, where=c.where,
        why=f"auto-indexing: saves ~{c.saved_ms:.1f} ms of its statements, costs "
            f"~{c.write_ms:.1f} ms of writes ({c.method}); " + "; ".join(c.reasons[:3]),
    )  # fmt: skip
    row = {"target_id": t.target_id, "schema_name": c.schema_name, "table_name": c.table_name,
           "index_name": c.name, "columns": c.columns, "ddl": c.ddl, "est_saved_ms": c.saved_ms,
           "est_write_ms": c.write_ms, "est_bytes": c.est_bytes, "evidence": evidence,
           "include": c.include, "predicate": c.predicate}  # fmt: skip
    label = f"{c.schema_name}.{c.table_name}"
    dsn = target_dsn(t)
    with connection.monitoring_session(dsn) as conn:
        before = _measure(conn, affected, c.name)
    mode, outcome, aid, detail = _perform(repo, t, act)
    if outcome == "failed":
        # a failed CREATE INDEX CONCURRENTLY leaves an invalid index behind: drop it (ours)
        with connection.monitoring_session(dsn) as conn:
            left = reads.usage(conn, [(c.schema_name, c.name)]).get((c.schema_name, c.name))
        if left is not None:
            rid = store.record(repo, **row, status="failed", created=True, action_id=aid,
                               created_at=datetime.now(UTC), note=detail)  # fmt: skip
            mine = next(r for r in store.indexes(repo, t.target_id, limit=20)
                        if r.autoindex_id == rid)  # fmt: skip
            _drop(repo, t, mine, "failed", f"the build failed and left an invalid index: {detail}")
            return IndexingStep("create", c.name, label, mode, "failed", aid, detail)
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
    cands, texts = candidates_with_texts(t.name, hours, begin_id, end_id)
    if cfg.mode == "off":
        return IndexingRun(t.name, "off", cands, [],
                           f"auto-indexing is off for {t.name}: {len(cands.chosen)} index(es) "
                           "would be chosen, nothing done (`opscore autonomous config set "
                           "--feature indexing --mode report-only|implement`).")  # fmt: skip
    _, _, snaps = snapshot_range(t, hours, begin_id, end_id)
    steps: list[IndexingStep] = []
    with repository.session() as repo:
        steps += _look_after(repo, t, cfg, snaps, now)
        # a recommendation already journaled is not repeated; in implement it gets built
        live_statuses = ("verifying", "kept") + (("recommended",) if cfg.mode != "implement"
                                                 else ())  # fmt: skip
        open_rows = store.indexes(repo, t.target_id, live_statuses, dropped=False, limit=10000)
        # one index per table and key columns at a time: a partial or INCLUDE alternative of
        # an index being verified waits for its verdict (it would be costed against it)
        open_keys = {r.key[:3] for r in open_rows}
        builds = 0
        for c in cands.chosen:
            if c.key[:3] in open_keys:
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
