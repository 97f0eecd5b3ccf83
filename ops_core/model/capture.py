"""The record of one snapshot capture (shared vocabulary: ``collectors.capture`` fills it from a
target, ``model.deltas`` turns its counters into deltas, ``repository.snapshots`` writes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Capture", "StmtKey"]

StmtKey = tuple[int, int, int, bool]  # queryid, dbid, userid, toplevel


@dataclass
class Capture:
    target_id: int
    captured_at: datetime | None = None
    server_version_num: int | None = None
    postmaster_start: datetime | None = None
    datname: str | None = None
    own_datname: str | None = None  # the repository database, when it lives on this server
    with_sizes: bool = False
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # source -> rows
    texts: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # source -> ok | not available.. | error
    failed: str | None = None  # whole capture failed: why
    stmt_ids: dict[StmtKey, int] | None = None  # statements the repository knew (for the write)
    target_ms: float = 0.0

    def error_count(self) -> int:
        return sum(1 for v in self.sources.values() if v.startswith("error"))
