"""Self-tuning (issue 16): tunable parameters with a recommendation and its evidence, changes
applied as trials through the actions module, measured on the snapshots after them and rolled
back when the same statements got slower per call; pinned parameters; the tuning report.

Scope of a change: parameters of context user/superuser are set for the target's database
(``ALTER DATABASE ... SET``: new sessions of that database, nothing else on the server);
sighup parameters with ``ALTER SYSTEM`` + ``pg_reload_conf()``; postmaster parameters (a
restart) are recommendations only. The mode of ``self_tuning`` governs every change (off:
refused, report_only: journaled, implement: done).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import repository
from ..analysis import tuning as judge
from ..analysis.tuning import Host, TunableParameter
from ..collectors import host as host_reads
from ..collectors import tuning as reads
from ..errors import InvalidInput, NotSupported
from ..repository import tuning as store
from ..repository.tuning import TuningTrial
from ..targets import actions, connection
from .performance import top_statements
from .snapshots import list_snapshots
from .targets import get_target, target_dsn

__all__ = [
    "TunableParameter",
    "TuningTrial",
    "TuningReport",
    "tuning_parameters",
    "override_parameter",
    "apply_tuning",
    "evaluate_tuning",
    "tuning_actions",
    "tuning_report",
]

TUNER = "self-tuning"


def _host(t: Any, ram_gb: float | None) -> Host:
    if ram_gb is not None:
        if ram_gb <= 0:
            raise InvalidInput(f"ram_gb must be positive, got {ram_gb}.", "Use e.g. --ram-gb 64.")
        return Host(int(ram_gb * judge.GB), None, f"given: {ram_gb:g} GB of RAM")
    if host_reads.is_local(connection.parse_dsn(t.dsn), t.embedded):
        s = host_reads.sample()
        return Host(int(s["mem_total"]), int(s["cpu_count"]), "this host (psutil)")
    return Host(None, None, "the server is not on this host: its memory is unknown (pass --ram-gb)")


def _read(t: Any) -> tuple[list[dict], dict[str, Any], str]:
    with connection.monitoring_session(target_dsn(t)) as conn:
        return reads.settings(conn), reads.evidence(conn), conn.info.dbname


def tuning_parameters(target: str, ram_gb: float | None = None) -> list[TunableParameter]:
    """Every tunable parameter: value, context, source, the baseline for this host and the
    recommended value with its evidence (temporary files -> work_mem, requested checkpoints ->
    max_wal_size, hit ratio -> shared_buffers, dead rows -> autovacuum)."""
    t = get_target(target)
    settings, evidence, _ = _read(t)
    with repository.session() as repo:
        pins = store.overrides(repo, t.target_id)
    return judge.recommend(settings, evidence, _host(t, ram_gb), pins)


def override_parameter(
    target: str, name: str, value: str | None = None, by: str = "opscore"
) -> TunableParameter:
    """Pin a parameter at ``value`` (self-tuning then reports it and never changes it), or
    unpin it with ``value=None``. Nothing is changed on the server."""
    t = get_target(target)
    if name not in reads.TUNABLE:
        raise InvalidInput(
            f"{name!r} is not a parameter self-tuning manages.",
            "Use one of: " + ", ".join(reads.TUNABLE) + ".",
        )
    if value is not None:
        try:
            judge.to_base(value, None)
        except ValueError as exc:
            raise InvalidInput(
                f"Bad value for {name}: {exc}.", "Use e.g. 256MB, 30s, 0.9."
            ) from None
    with repository.session() as repo:
        store.set_override(repo, t.target_id, name, value, by)
    return next(p for p in tuning_parameters(t.name) if p.name == name)


def apply_tuning(
    target: str,
    name: str | None = None,
    value: str | None = None,
    *,
    ram_gb: float | None = None,
    requested_by: str = TUNER,
) -> list[TuningTrial]:
    """Apply changes as trials, as the target's ``self_tuning`` mode allows.

    Without ``name``: every recommended change of a reload- or session-context parameter,
    within its bounded range (see ``analysis.tuning.bounds``). With ``name`` and ``value``: a
    trial of that value (a DBA's experiment; any value the server accepts), measured and rolled
    back like the others. Each trial records the value before and is judged by
    :func:`evaluate_tuning` once snapshots after it exist."""
    t = get_target(target)
    settings, _, dbname = _read(t)
    by_name = {s["name"]: s for s in settings}
    params = {p.name: p for p in tuning_parameters(t.name, ram_gb)}
    wanted: list[tuple[str, str, str]] = []
    if name is not None:
        if name not in by_name:
            raise InvalidInput(
                f"{name!r} is not a parameter self-tuning manages.",
                "Use one of: " + ", ".join(reads.TUNABLE) + ".",
            )
        if value is None:
            value = params[name].recommended
            if value is None:
                raise InvalidInput(
                    f"Nothing is recommended for {name}; give the value to try.",
                    "Use --value, e.g. --value 64MB.",
                )
        try:
            judge.to_base(value, by_name[name]["unit"])
        except ValueError as exc:
            raise InvalidInput(
                f"Bad value for {name}: {exc}.", "Use e.g. 256MB, 30s, 0.9."
            ) from None
        if params[name].status == "pinned":
            raise InvalidInput(
                f"{name} is pinned at {params[name].pinned} on {t.name}.",
                f"Unpin it first: opscore autonomous tuning override {name} --unpin.",
            )
        wanted.append((name, value, f"trial of {name} = {value} asked by {requested_by}"))
    else:
        for p in params.values():
            if p.status != "change" or p.recommended is None:
                continue
            lo, hi = judge.bounds(p, by_name[p.name])
            v = judge.to_base(p.recommended, by_name[p.name]["unit"])
            if lo <= v <= hi:
                wanted.append((p.name, p.recommended, "; ".join(p.evidence) or "baseline"))
    out: list[TuningTrial] = []
    dsn = target_dsn(t)
    with repository.session() as repo:
        for pname, pval, reason in wanted:
            s = by_name[pname]
            if s["context"] == "postmaster":
                raise NotSupported(
                    f"{pname} needs a server restart: self-tuning only recommends it.",
                    "Change it in postgresql.conf and restart in a maintenance window.",
                )
            scope = "system" if s["context"] == "sighup" else "database"
            with connection.monitoring_session(dsn) as conn:
                old = reads.database_setting(conn, pname) if scope == "database" else None
            if scope == "system" and s["source"] == "configuration file":
                old = s["value"]  # ALTER SYSTEM RESET would fall back to it anyway
            act = actions.set_parameter(
                pname, pval, scope=scope, database=dbname, undo_value=old, why=reason,
                evidence={"before": s["value"], "source": s["source"], "context": s["context"]},
                requested_by=requested_by,
            )  # fmt: skip
            snaps = list_snapshots(t.name, limit=1)
            status, action_id, note = "measuring", None, ""
            try:
                res = actions.perform(repo, t.target_id, dsn, act, governed_by="self_tuning")
                action_id = res.action_id
                if res.outcome == "reported":
                    status, note = "reported", "self_tuning is report_only: journaled only"
                elif scope == "system":
                    actions.perform(
                        repo, t.target_id, dsn,
                        actions.reload_configuration(why=reason, requested_by=requested_by),
                        governed_by="self_tuning",
                    )  # fmt: skip
            except actions.ActionRefused as exc:
                status, note = "refused", str(exc)
            except Exception as exc:  # journaled as failed by perform
                status, note = "failed", str(exc)[:500]
            tid = store.start_trial(
                repo,
                target_id=t.target_id,
                parameter=pname,
                scope=scope,
                database=dbname if scope == "database" else None,
                old_value=old,
                new_value=pval,
                reason=reason,
                action_id=action_id,
                status=status,
                note=note
                or (
                    "measuring from the next snapshot (last before the change: "
                    f"{snaps[0].snapshot_id if snaps else 'none'}); new sessions only"
                    if scope == "database"
                    else "measuring from the next snapshot"
                ),
            )
            out += [x for x in store.trials(repo, t.target_id, limit=50) if x.trial_id == tid]
    return out


def evaluate_tuning(target: str, tolerance_pct: float = 10.0) -> list[TuningTrial]:
    """Judge every trial still measuring: the snapshot interval just before it against the
    interval from the first snapshot after it to the latest; the same statements (of the
    target's database, run >= 5 times in both) per call, weighted by the calls before. Worse by
    more than ``tolerance_pct``: the value before is put back (journaled), else kept."""
    if not 0 <= tolerance_pct <= 1000:
        raise InvalidInput(f"tolerance must be 0..1000 %, got {tolerance_pct}.", "Use e.g. 10.")
    t = get_target(target)
    snaps = sorted(list_snapshots(t.name, limit=1000), key=lambda s: s.captured_at)
    snaps = [s for s in snaps if s.status != "failed"]
    dsn = target_dsn(t)
    with repository.session() as repo:
        open_trials = store.trials(repo, t.target_id, "measuring", 1000)
    with connection.monitoring_session(dsn) as conn:
        dbname = conn.info.dbname
    for tr in open_trials:
        before = [s for s in snaps if s.captured_at <= tr.applied_at]
        after = [s for s in snaps if s.captured_at > tr.applied_at]
        if len(before) < 2 or len(after) < 2:
            continue

        def rows(b: int, e: int, db: str = tr.database or dbname) -> list[dict]:
            df = top_statements(t.name, b, e, limit=1000)
            if "datname" in df.columns:
                df = df[df["datname"] == db]
            return df[["queryid", "calls", "total_ms"]].to_dict("records")

        v = judge.judge_trial(
            rows(before[-2].snapshot_id, before[-1].snapshot_id),
            rows(after[0].snapshot_id, after[-1].snapshot_id),
            tolerance_pct,
        )
        if v.verdict == "measuring":
            continue
        rollback_id = None
        with repository.session() as repo:
            if v.verdict == "rolled_back":
                act = actions.set_parameter(
                    tr.parameter, tr.old_value, scope=tr.scope, database=tr.database,
                    undo_value=tr.new_value, why=f"roll back trial {tr.trial_id}: {v.note}",
                    evidence={"trial": tr.trial_id, "before_ms_per_call": v.before_ms_per_call,
                              "after_ms_per_call": v.after_ms_per_call},
                    requested_by=TUNER,
                )  # fmt: skip
                # governed like the change it undoes (a mode switched to report_only since
                # then journals the rollback instead of doing it: the note says so)
                try:
                    res = actions.perform(repo, t.target_id, dsn, act, governed_by="self_tuning")
                    rollback_id = res.action_id
                    if res.outcome == "reported":
                        v.note += "; rollback only reported (self_tuning is report_only now)"
                    elif tr.scope == "system":
                        actions.perform(
                            repo, t.target_id, dsn,
                            actions.reload_configuration(why="roll back", requested_by=TUNER),
                            governed_by="self_tuning",
                        )  # fmt: skip
                except actions.ActionRefused as exc:
                    v.note += f"; rollback refused: {exc}"
            store.finish_trial(
                repo,
                tr.trial_id,
                status=v.verdict,
                before_ms_per_call=v.before_ms_per_call,
                after_ms_per_call=v.after_ms_per_call,
                statements=v.statements,
                evaluated_at=datetime.now(UTC),
                rollback_action_id=rollback_id,
                note=v.note,
            )
    with repository.session() as repo:
        return store.trials(repo, t.target_id, None, 100)


def tuning_actions(target: str, limit: int = 100) -> list[TuningTrial]:
    """The trials of self-tuning on a target, newest first: value before and after, status
    (measuring / kept / rolled_back / reported / refused / failed), the measurements."""
    t = get_target(target)
    with repository.session() as repo:
        return store.trials(repo, t.target_id, None, limit)


@dataclass
class TuningReport:
    target: str
    mode: str
    host: str
    parameters: list[TunableParameter]
    trials: list[TuningTrial]
    summary: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tuning_report(target: str, ram_gb: float | None = None) -> TuningReport:
    """Self-tuning at a glance: the mode, every parameter with its recommendation, the trials."""
    t = get_target(target)
    params = tuning_parameters(t.name, ram_gb)
    with repository.session() as repo:
        mode = actions.policy(repo, t.target_id, "self_tuning")
        trials = store.trials(repo, t.target_id, None, 50)
    summary: dict[str, int] = {}
    for p in params:
        summary[p.status] = summary.get(p.status, 0) + 1
    for tr in trials:
        summary[f"trials {tr.status}"] = summary.get(f"trials {tr.status}", 0) + 1
    return TuningReport(t.name, mode, _host(t, ram_gb).source, params, trials, summary)
