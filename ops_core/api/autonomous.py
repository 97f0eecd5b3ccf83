"""Autonomous database: the mode of each autonomous feature per target, and self-healing
(issue 16).

Each feature (``self_healing``, ``self_tuning``, ``auto_indexing``) has a mode per target:
``off`` (the default: nothing acts), ``report_only`` (every action it would take is journaled
with the SQL, nothing runs) or ``implement``. Every change goes through
``ops_core.targets.actions`` (policy + journal + way back); a DBA's policy on a kind of change
(``terminate_session``, ``vacuum``, ...) set for the target makes the feature's mode stricter,
never looser (``actions.effective_mode``).

Self-healing checks (read-only, live): sessions idle in transaction holding locks others wait
for (judged over several samples), blocking chains, invalid indexes, table bloat, xid and
multixact wraparound, sequences near exhaustion, inactive replication slots, stale statistics,
data checksum failures, a nearly full data disk, and (on demand, it reads every index) B-tree
corruption with amcheck.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import repository
from ..analysis import healing as judge
from ..analysis.healing import HealingIssue, HealingRules, IndexVerdict
from ..backup.walstream import default_slot
from ..collectors import healing as reads
from ..collectors.health_reads import data_disk
from ..collectors.scrub import scrub
from ..errors import InvalidInput
from ..repository import actions as journal
from ..repository import healing as store
from ..repository.actions import JournalEntry
from ..repository.healing import CorruptionCheck
from ..targets import actions, connection
from .targets import get_target, target_dsn

__all__ = [
    "AutonomousConfig",
    "HealingIssue",
    "HealingRules",
    "HealingIssues",
    "HealingActionOutcome",
    "HealingRun",
    "HealingReport",
    "IndexVerdict",
    "CorruptionCheck",
    "autonomous_config",
    "set_autonomous_config",
    "healing_issues",
    "run_healing",
    "healing_actions",
    "healing_report",
    "check_corruption",
    "corruption_results",
    "index_health",
]

#: the action kinds each autonomous feature may request
FEATURE_ACTIONS = {
    "self_healing": ("terminate_session", "reindex", "vacuum", "analyze", "drop_inactive_slot"),
    "self_tuning": ("alter_system",),
    "auto_indexing": ("create_index", "drop_index"),
}
_ALIASES = {
    "healing": "self_healing",
    "self-healing": "self_healing",
    "tuning": "self_tuning",
    "self-tuning": "self_tuning",
    "indexing": "auto_indexing",
    "auto-indexing": "auto_indexing",
}
HEALER = "self-healing"  # requested_by of every action self-healing takes


def _feature(name: str) -> str:
    f = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if f not in actions.AUTONOMOUS:
        raise InvalidInput(
            f"Unknown autonomous feature {name!r}.", "Use healing, tuning or indexing."
        )
    return f


def _mode(mode: str) -> str:
    m = mode.strip().lower().replace("-", "_").replace(" ", "_")
    if m not in actions.MODES:
        raise InvalidInput(f"Unknown mode {mode!r}.", "Use off, report-only or implement.")
    return m


@dataclass
class AutonomousConfig:
    target: str
    #: feature -> off / report_only / implement
    modes: dict[str, str]
    #: feature -> {action kind: its own policy (a stricter one limits the feature)}
    action_policies: dict[str, dict[str, str]]
    healing_rules: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def autonomous_config(target: str) -> AutonomousConfig:
    """The mode of each autonomous feature on a target and the policies of the changes each
    may request."""
    t = get_target(target)
    with repository.session() as repo:
        modes = {f: actions.policy(repo, t.target_id, f) for f in actions.AUTONOMOUS}
        kinds = {
            f: {k: actions.effective_mode(repo, t.target_id, k, f) for k in ks}
            for f, ks in FEATURE_ACTIONS.items()
        }
    notes = [
        "auto_indexing: settings (budget, window, validation) with `opscore autonomous "
        "indexing config`",
    ]
    return AutonomousConfig(t.name, modes, kinds, HealingRules().as_dict(), notes)


def set_autonomous_config(
    target: str, feature: str, mode: str, by: str = "opscore"
) -> AutonomousConfig:
    """Set the mode of one autonomous feature (healing / tuning / indexing) on a target:
    off, report-only or implement."""
    f, m = _feature(feature), _mode(mode)
    t = get_target(target)
    with repository.session() as repo:
        actions.set_policy(repo, t.target_id, f, m, by)
    return autonomous_config(t.name)


# ------------------------------------------------------------------------------ checks
@dataclass
class HealingIssues:
    target: str
    checked_at: datetime
    samples: int
    observed_s: float
    issues: list[HealingIssue]
    #: checks that could not run here, and why
    not_checked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checked_at"] = self.checked_at.isoformat()
        return d


_ORDER = {s: i for i, s in enumerate(judge.SEVERITIES)}


def healing_issues(
    target: str,
    *,
    samples: int = 3,
    interval_s: float = 1.0,
    rules: HealingRules | None = None,
) -> HealingIssues:
    """Run every self-healing check on a target now (read-only): ``samples`` live samples of
    the blockers ``interval_s`` apart, then one reading of each other condition. Worst first."""
    if samples < 1 or samples > 60:
        raise InvalidInput(f"samples must be 1..60, got {samples}.", "Use e.g. --samples 3.")
    if interval_s < 0 or interval_s > 60:
        raise InvalidInput(f"interval must be 0..60 s, got {interval_s}.", "Use e.g. 1.")
    r = rules or HealingRules()
    t = get_target(target)
    dsn = target_dsn(t)
    not_checked: list[str] = []
    started = time.monotonic()
    with connection.monitoring_session(dsn) as conn:
        blocker_samples = []
        for i in range(samples):
            if i:
                time.sleep(interval_s)  # the observation itself: samples spaced in time
            blocker_samples.append(reads.blockers(conn))
        issues = judge.judge_blockers(blocker_samples, r)
        issues += judge.judge_invalid_indexes(reads.invalid_indexes(conn))
        bloat, measured_by = reads.table_bloat_measured(conn, r.bloat_min_dead_rows)
        issues += judge.judge_bloat(bloat, r, measured_by)
        issues += judge.judge_wraparound(reads.wraparound(conn), reads.oldest_tables(conn, 5), r)
        issues += judge.judge_sequences(reads.sequences(conn), r)
        own = {default_slot(t.name)}
        issues += judge.judge_slots(reads.inactive_slots(conn), r, own)
        issues += judge.judge_stale_statistics(
            reads.stale_statistics(conn, r.stale_min_changes, r.stale_fraction)
        )
        issues += judge.judge_checksums(reads.checksum_failures(conn))
        disk = data_disk(reads.data_directory(conn))
        if disk is None:
            not_checked.append(
                "disk: the data directory is not readable from here (remote server or a role "
                "without pg_read_all_settings)"
            )
        issues += judge.judge_disk(disk, r)
    for i in issues:
        if "last_query" in i.evidence:
            i.evidence["last_query"] = scrub(i.evidence["last_query"])
    issues.sort(key=lambda i: (_ORDER.get(i.severity, 9), i.kind, i.object))
    return HealingIssues(
        t.name,
        datetime.now(UTC),
        samples,
        round(time.monotonic() - started, 1),
        issues,
        not_checked,
    )


# ------------------------------------------------------------------------------ acting
@dataclass
class HealingActionOutcome:
    kind: str
    object: str
    action: str
    #: the mode it ran in and what came of it: done / reported / refused / failed / skipped
    mode: str
    outcome: str
    action_id: int | None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HealingRun:
    target: str
    mode: str
    issues: HealingIssues
    actions: list[HealingActionOutcome]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "issues": self.issues.as_dict(),
            "actions": [a.as_dict() for a in self.actions],
            "summary": self.summary,
        }


def _action_for(issue: HealingIssue) -> actions.Action | None:
    s, ev, why = issue.subject, issue.evidence, issue.summary
    kw = {"why": why, "evidence": ev, "requested_by": HEALER}
    if issue.action == "terminate_session":
        return actions.terminate_idle_blocker(s["pid"], s["xact_start"], **kw)
    if issue.action == "reindex":
        return actions.reindex_index(s["schema"], s["index"], **kw)
    if issue.action == "vacuum":
        return actions.vacuum_table(s["schema"], s["table"], freeze=s.get("freeze", False), **kw)
    if issue.action == "analyze":
        return actions.analyze_table(s["schema"], s["table"], **kw)
    if issue.action == "drop_inactive_slot":
        return actions.drop_inactive_slot(s["slot"], **kw)
    return None


def run_healing(
    target: str,
    *,
    samples: int = 3,
    interval_s: float = 1.0,
    rules: HealingRules | None = None,
) -> HealingRun:
    """One self-healing cycle: the checks, then for each issue with a remedy the action, as the
    target's ``self_healing`` mode allows (off: nothing, not even journaled; report_only:
    journaled, nothing runs; implement: done). Every action is in the journal with its
    evidence, the state before and after, and its outcome."""
    t = get_target(target)
    with repository.session() as repo:
        mode = actions.policy(repo, t.target_id, "self_healing")
    found = healing_issues(t.name, samples=samples, interval_s=interval_s, rules=rules)
    outcomes: list[HealingActionOutcome] = []
    if mode == "off":
        n = sum(1 for i in found.issues if i.action)
        return HealingRun(
            t.name,
            mode,
            found,
            [],
            f"self-healing is off for {t.name}: {len(found.issues)} issue(s) found, {n} with a "
            "remedy, nothing done (set it to report-only or implement with `opscore autonomous "
            "config set`).",
        )
    dsn = target_dsn(t)
    with repository.session() as repo:
        for issue in found.issues:
            act = _action_for(issue)
            if act is None:
                continue
            try:
                res = actions.perform(repo, t.target_id, dsn, act, governed_by="self_healing")
            except actions.ActionRefused as exc:
                eff = actions.effective_mode(repo, t.target_id, act.feature, "self_healing")
                outcomes.append(
                    HealingActionOutcome(
                        issue.kind, issue.object, act.what, eff, "refused", None, str(exc)
                    )
                )
                continue
            except Exception as exc:  # journaled as failed by perform; the cycle goes on
                outcomes.append(
                    HealingActionOutcome(
                        issue.kind, issue.object, act.what, mode, "failed", None, str(exc)[:300]
                    )
                )
                continue
            detail = ""
            if act.feature == "terminate_session" and res.done and res.rows and not res.rows[0][0]:
                detail = "the session had moved on (not idle in that transaction): left alone"
            outcomes.append(
                HealingActionOutcome(
                    issue.kind, issue.object, act.what, res.mode, res.outcome, res.action_id, detail
                )
            )
    done = sum(1 for o in outcomes if o.outcome == "done")
    reported = sum(1 for o in outcomes if o.outcome == "reported")
    return HealingRun(
        t.name,
        mode,
        found,
        outcomes,
        f"{len(found.issues)} issue(s); {done} action(s) done, {reported} reported only, "
        f"{len(outcomes) - done - reported} refused or failed.",
    )


def healing_actions(target: str, limit: int = 100) -> list[JournalEntry]:
    """The journal of what self-healing did, reported or was refused on a target, newest
    first."""
    t = get_target(target)
    with repository.session() as repo:
        return journal.entries(repo, t.target_id, None, limit, requested_by=HEALER)


# ------------------------------------------------------------------------------ corruption
def check_corruption(target: str, *, max_bytes: int = 1024**3) -> CorruptionCheck:
    """Check the target database's B-tree indexes with amcheck's ``bt_index_check`` (reads
    every page of each index under AccessShareLock; smallest first, up to ``max_bytes`` in all,
    the rest counted as skipped), and the data checksum failures PostgreSQL counted. Stored in
    the repository. Without amcheck installed nothing is checked and the result says how to
    install it."""
    if max_bytes <= 0:
        raise InvalidInput(f"max_bytes must be positive, got {max_bytes}.", "Use e.g. 1073741824.")
    t = get_target(target)
    started = datetime.now(UTC)
    with connection.monitoring_session(target_dsn(t)) as conn:
        if not reads.extension_installed(conn, "amcheck"):
            check = CorruptionCheck(
                t.target_id,
                started,
                datetime.now(UTC),
                "not available: amcheck is not installed in this database (a superuser runs "
                "CREATE EXTENSION amcheck; it ships with PostgreSQL's contrib)",
                False,
                0,
                0,
                0,
            )
        else:
            indexes = [r for r in reads.index_health(conn) if r["method"] == "btree" and r["valid"]]
            indexes.sort(key=lambda r: r["bytes"] or 0)
            results, budget, skipped = [], max_bytes, 0
            for r in indexes:
                if (r["bytes"] or 0) > budget:
                    skipped += 1
                    continue
                budget -= r["bytes"] or 0
                error = reads.btree_check(conn, r["schema"], r["index"])
                results.append(
                    {
                        "schema": r["schema"],
                        "index": r["index"],
                        "table": r["table"],
                        "bytes": r["bytes"],
                        "ok": error is None,
                        "error": error,
                    }
                )
            sums = reads.checksum_failures(conn)
            for f in sums["failures"]:
                results.append(
                    {
                        "schema": "",
                        "index": "",
                        "table": f"database {f['datname']}",
                        "bytes": 0,
                        "ok": False,
                        "error": f"{f['checksum_failures']} data checksum failure(s), last "
                        f"{f['checksum_last_failure']}",
                    }
                )
            check = CorruptionCheck(
                t.target_id,
                started,
                datetime.now(UTC),
                "amcheck bt_index_check"
                + ("" if sums["data_checksums"] else " (data checksums are off on this server)"),
                True,
                len(indexes) - skipped,
                skipped,
                sum(1 for x in results if not x["ok"]),
                results,
            )
    with repository.session() as repo:
        check.check_id = store.save_corruption_check(repo, check)
    return check


def corruption_results(target: str, limit: int = 10) -> list[CorruptionCheck]:
    """The stored corruption checks of a target, newest first (`check_corruption` runs one)."""
    t = get_target(target)
    with repository.session() as repo:
        return store.corruption_checks(repo, t.target_id, limit)


def index_health(target: str) -> list[IndexVerdict]:
    """Every index of the target database judged: invalid, duplicate, redundant (a prefix of
    another), unused, or ok — whoever created it (opscore only acts on its own)."""
    t = get_target(target)
    with connection.monitoring_session(target_dsn(t)) as conn:
        rows = reads.index_health(conn)
    return judge.index_verdicts(rows)


# ------------------------------------------------------------------------------ report
@dataclass
class HealingReport:
    target: str
    mode: str
    issues: HealingIssues
    by_severity: dict[str, int]
    recent_actions: list[JournalEntry]
    index_verdicts: dict[str, int]
    last_corruption_check: CorruptionCheck | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "issues": self.issues.as_dict(),
            "by_severity": self.by_severity,
            "recent_actions": [a.as_dict() for a in self.recent_actions],
            "index_verdicts": self.index_verdicts,
            "last_corruption_check": self.last_corruption_check.as_dict()
            if self.last_corruption_check
            else None,
        }


def healing_report(target: str, *, samples: int = 2, interval_s: float = 1.0) -> HealingReport:
    """Self-healing at a glance: the mode, the issues now by severity, the last actions, index
    health counts and the last corruption check."""
    t = get_target(target)
    found = healing_issues(t.name, samples=samples, interval_s=interval_s)
    counts = {s: sum(1 for i in found.issues if i.severity == s) for s in judge.SEVERITIES}
    verdicts: dict[str, int] = {}
    for v in index_health(t.name):
        verdicts[v.verdict] = verdicts.get(v.verdict, 0) + 1
    with repository.session() as repo:
        mode = actions.policy(repo, t.target_id, "self_healing")
        recent = journal.entries(repo, t.target_id, None, 20, requested_by=HEALER)
        checks = store.corruption_checks(repo, t.target_id, 1)
    return HealingReport(
        t.name, mode, found, counts, recent, verdicts, checks[0] if checks else None
    )
