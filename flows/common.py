"""What every flow shares: target resolution and publishing outcomes as artifacts."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from ops_core import api


def resolve_targets(targets: list[str] | None) -> list[str]:
    """The named targets (each must exist) or every registered target."""
    if targets:
        for name in targets:
            api.get_target(name)  # raises UnknownTarget with the known names
        return list(targets)
    return [t.name for t in api.list_targets()]


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    import re

    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:200]


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    if rows:
        create_table_artifact(table=rows, key=key, description=description)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=key, description=description)
