"""The catalog SQL opscore reads from a target, and the row type of each source.

SQL lives in ``sql/<source>/<min_version_num>.sql``; :func:`resolve` picks the file with the
highest minimum version not above the server's. Every version of a source returns the same
columns (older servers pad with typed NULLs), listed here as the source's row type; a test
runs every file on the server under test and checks names and types against it.

The row types (``Source``, ``SOURCES``, column kinds) live in ops_core.model.sources.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from psycopg import sql

# the row types moved to ops_core.model.sources (the repository reads them too)
from ..model.sources import (  # noqa: F401
    OWN_TEXTS,
    SOURCES,
    SQL_MARKER,
    Col,
    Source,
    is_own_sql,
)
from ..model.sources import columns as _cols  # noqa: F401


@cache
def versions(source: str) -> list[int]:
    """The minimum server versions that have a SQL file for ``source``, ascending."""
    folder = resources.files("ops_core.collectors").joinpath("sql", source)
    out = []
    for entry in folder.iterdir():
        m = re.fullmatch(r"(\d{6})\.sql", entry.name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def resolve(source: str, version_num: int) -> int | None:
    """The file version for a server: the highest minimum version not above ``version_num``
    (None: the server is too old for this source, i.e. "not available")."""
    if source not in SOURCES:
        raise KeyError(source)
    fitting = [v for v in versions(source) if v <= version_num]
    return fitting[-1] if fitting else None


@cache
def _text(source: str, version: int) -> str:
    return (
        resources.files("ops_core.collectors").joinpath("sql", source, f"{version}.sql").read_text()
    )


def query(source: str, version_num: int, **identifiers: sql.Composable) -> sql.Composed | None:
    """The composed SQL of ``source`` for this server, or None when not available."""
    v = resolve(source, version_num)
    if v is None:
        return None
    text = _text(source, v)
    return sql.SQL(text).format(**identifiers)  # type: ignore[arg-type]


def min_version(source: str) -> int | None:
    vs = versions(source)
    return vs[0] if vs else None
