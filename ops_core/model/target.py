"""A registered target (shared vocabulary: the repository stores it, every layer passes it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

__all__ = ["Target"]


@dataclass
class Target:
    target_id: int
    name: str
    dsn: str
    password_source: str
    embedded: bool
    created_at: datetime
    options: dict = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # key -> value labels (sharding)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        return d
