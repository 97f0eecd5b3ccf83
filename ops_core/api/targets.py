"""Targets: register, list, remove and check monitored servers; open monitoring sessions."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from .. import repository
from ..config import get_settings
from ..errors import ConfigError, InvalidInput, UnknownTarget
from ..repository import targets as repo_targets
from ..repository.targets import Target
from ..targets import connection, pgpass
from ..targets.probe import Capabilities, probe

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

__all__ = [
    "Target",
    "TargetCheck",
    "add_target",
    "list_targets",
    "get_target",
    "resolve_target",
    "remove_target",
    "check_target",
    "target_session",
    "target_dsn",
]


def _passfile() -> Path:
    return get_settings().home_dir / "pgpass"


def _check_name(name: str) -> None:
    if NAME_RE.match(name or ""):
        return
    if name and ("=" in name or "://" in name):
        # name and DSN swapped: never echo what may be a connection string with its password
        raise InvalidInput(
            "The target name looks like a connection string (the name comes first).",
            "Use `opscore target add NAME DSN`, e.g. opscore target add prod "
            "'postgresql://monitor@db1:5432/app'.",
        )
    shown = name if len(name or "") <= 80 else name[:77] + "..."
    raise InvalidInput(
        f"{shown!r} is not a valid target name.",
        "Use 1-63 letters, digits, '_', '.', '-', starting with a letter or digit.",
    )


def target_dsn(target: Target) -> str:
    """The DSN to connect with, credentials resolved from where the target says they are."""
    src = target.password_source
    if src.startswith("env:"):
        var = src[4:]
        pw = os.environ.get(var)
        if pw is None:
            raise ConfigError(
                f"Target {target.name!r} takes its password from the environment variable "
                f"{var}, which is not set.",
                f"export {var}=... before running opscore (or re-add the target with a "
                "password in ~/.pgpass).",
            )
        return make_conninfo(target.dsn, password=pw)
    return target.dsn


def add_target(
    name: str,
    dsn: str,
    *,
    password_env: str | None = None,
    verify: bool = True,
    embedded: bool = False,
) -> Target:
    """Register a target. The DSN is stored without its password.

    A password inside the DSN moves to opscore's pgpass file (``$OPSCORE_HOME/pgpass``, 0600)
    and the stored DSN references it; ``password_env`` names an environment variable instead.
    With ``verify`` the server is contacted first; nothing is stored if that fails.
    """
    _check_name(name)
    if password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
        raise InvalidInput(f"{password_env!r} is not a valid environment variable name.")
    stripped, password = connection.strip_password(dsn)
    params = connection.parse_dsn(stripped)
    if password is not None and not password_env:
        pgpass.escape(password)  # a password pgpass cannot hold is refused before anything
    source = "none"
    if password_env:
        source = f"env:{password_env}"
    elif params.get("passfile"):
        source = f"pgpass:{params['passfile']}"
    elif params.get("service"):
        source = "service"
    check_dsn = make_conninfo(stripped, password=password) if password else stripped
    if password_env and os.environ.get(password_env):
        check_dsn = make_conninfo(stripped, password=os.environ[password_env])
    with repository.session() as repo:
        # fail on a duplicate name before contacting anything
        existing = {t.name for t in repo_targets.all_targets(repo)}
        if name in existing:
            raise InvalidInput(
                f"A target named {name!r} already exists.",
                f"Pick another name, or `opscore target remove {name}` first.",
            )
        if verify:
            connection.connect(check_dsn).close()
        if password and not password_env:
            passfile = pgpass.store(_passfile(), name, params, password)
            stripped = make_conninfo(stripped, passfile=str(passfile))
            source = f"pgpass:{passfile}"
        return repo_targets.insert(repo, name, stripped, source, embedded=embedded)


def list_targets() -> list[Target]:
    with repository.session() as repo:
        return repo_targets.all_targets(repo)


def get_target(name: str) -> Target:
    with repository.session() as repo:
        return repo_targets.get(repo, name)


def resolve_target(name: str | None) -> Target:
    """The target a command means: the one named, else the only one registered, else the one
    embedded server (what `opscore demo` registers) when exactly one target is embedded.

    Several targets and no name: an error that lists them, nothing guessed."""
    with repository.session() as repo:
        if name:
            return repo_targets.get(repo, name)
        targets = repo_targets.all_targets(repo)
    if len(targets) == 1:
        return targets[0]
    if not targets:
        raise UnknownTarget(
            "No target is registered.",
            "Add one with `opscore target add NAME DSN` (or run `opscore demo`).",
        )
    embedded = [t for t in targets if t.embedded]
    if len(embedded) == 1:
        return embedded[0]
    raise InvalidInput(
        "Several targets are registered; say which one ("
        + ", ".join(t.name for t in targets)
        + ").",
        "Pass --target NAME.",
    )


def remove_target(name: str) -> Target:
    """Remove a target and its password from opscore's pgpass file."""
    with repository.session() as repo:
        target = repo_targets.delete(repo, name)
    try:
        params = connection.parse_dsn(target.dsn)
    except InvalidInput:
        params = None
    pgpass.remove(_passfile(), target.name, params)
    return target


@contextmanager
def target_session(name_or_target: str | Target, **kw) -> Iterator[psycopg.Connection]:
    """A monitoring session (read-only, time-limited, named ``opscore``) on a target."""
    target = name_or_target if isinstance(name_or_target, Target) else get_target(name_or_target)
    with connection.monitoring_session(target_dsn(target), **kw) as conn:
        yield conn


@dataclass
class TargetCheck:
    target: Target
    capabilities: Capabilities

    @property
    def ok(self) -> bool:
        return all(c.status in ("ok", "info") for c in self.capabilities.checks)

    def as_dict(self) -> dict:
        return {
            "target": self.target.as_dict(),
            "ok": self.ok,
            "capabilities": self.capabilities.as_dict(),
        }


def check_target(name: str) -> TargetCheck:
    """Connect and probe: version, pg_stat_statements, optional views, privileges, track_*."""
    target = get_target(name)
    with target_session(target) as conn:
        caps = probe(conn)
    return TargetCheck(target, caps)
