"""The operations catalog (copied from the user's reference, one row per capability) with where
each row is served: the ``ops_core.api`` function, the CLI command, the app page and the flow.

A row is *served* when its ``api_function`` names a callable of ``ops_core.api``; tests check
that every named function exists, and the app lists coverage from here.
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

    @property
    def served(self) -> bool:
        return bool(self.api_function) and resolve(self.api_function) is not None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["served"] = self.served
        return d


def resolve(function: str):
    from .. import api

    return getattr(api, function, None) if function else None


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


def coverage() -> dict[str, int]:
    ops = operations()
    served = sum(1 for o in ops if o.served)
    return {"operations": len(ops), "served": served, "not_served": len(ops) - served}
