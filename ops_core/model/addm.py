"""ADDM's findings and recommendations as records: what an analysis produces, the repository
stores and the surfaces show. Plain dataclasses, below every layer (issue 20)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: finding types that are information, not problems
INFO_TYPES = frozenset({"top_sql", "nothing_significant"})


@dataclass
class Recommendation:
    action_type: str  # sql | setting | session | application
    action: str  # the exact action: SQL to run, setting to change, session to end
    rationale: str
    benefit_db_time_s: float | None = None
    benefit_pct: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sql"] = self.action if self.action_type == "sql" else None
        return d


@dataclass
class Finding:
    type: str
    title: str
    impact_db_time_s: float  # DB time the problem accounts for in the range
    impact_pct: float  # share of total DB time
    evidence: dict[str, Any] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)  # queryid, query
    sessions: list[int] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    basis: str = "ash"  # ash | snapshot (no ASH: pg_stat_statements time) | risk
    risk_pct: float | None = None  # for risk findings (e.g. % of max_connections in use)
    rank: int = 0

    @property
    def cause(self) -> int | None:
        """Rank of the finding that causes this one (shown nested under it), if any."""
        c = self.evidence.get("caused_by_rank")
        return int(c) if c is not None else None

    @property
    def score(self) -> float:
        return max(self.impact_pct, self.risk_pct or 0.0)

    @property
    def is_problem(self) -> bool:
        return self.type not in INFO_TYPES

    @property
    def snapshot_only(self) -> bool:
        return self.basis == "snapshot"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recommendations"] = [r.as_dict() for r in self.recommendations]
        d["snapshot_only"] = self.snapshot_only
        d["cause"] = self.cause
        return d


@dataclass
class AddmResult:
    db_time_s: float
    db_time_source: str  # ash | pg_stat_statements
    ash_db_time_s: float | None
    pgss_time_s: float
    elapsed_s: float
    ash_samples: int
    breakdown: dict[str, list[dict[str, Any]]]
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    @property
    def aas(self) -> float:
        return self.db_time_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "findings"}
        d["aas"] = round(self.aas, 3)
        d["findings"] = [f.as_dict() for f in self.findings]
        return d
