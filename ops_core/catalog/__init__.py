"""The operations catalog (copied from the user's reference, one row per capability) with where
each row is served: the ``ops_core.api`` function, the CLI command, the app page and the flow.

This module only reads the TSV files; ``ops_core.api.REGISTRY`` (ops_core/api/registry.py)
turns each row into an operation with its status, models and effects, and every surface reads
the registry.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from importlib import resources


@dataclass(frozen=True)
class Operation:
    kind: str  # GET/POST/... for endpoints; query/mutation/subscription for GraphQL
    name: str  # route or GraphQL operation
    description: str
    section: str
    api_function: str
    cli: str
    app_page: str
    flow: str

    def as_dict(self) -> dict:
        return asdict(self)


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("ops_core.catalog").joinpath(name).read_text()
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


def operations() -> list[Operation]:
    out: list[Operation] = []
    for r in _read("endpoints.tsv"):
        out.append(
            Operation(
                r["method"],
                r["path"],
                r["description"],
                r["seed_section"],
                r["api_function"],
                r["cli"],
                r["app_page"],
                r["flow"],
            )
        )
    for r in _read("graphql.tsv"):
        out.append(
            Operation(
                r["kind"],
                r["operation"],
                r.get("description", "") or r["operation"],
                r["seed_section"],
                r["api_function"],
                r["cli"],
                r["app_page"],
                r["flow"],
            )
        )
    return out
