"""Bad input stops at the boundary, for every command: one rule per option (by name and type).

:func:`harden` wraps the function of every registered command so that its parsed values are
checked before it runs: numbers in range and finite, text not empty and free of control
characters, times and durations that parse, output directories that can be written, target
names that are names. A value that fails gets a usage error naming the option (exit code 2) and
nothing runs. String values are never echoed (one may be a DSN with its password); numbers are.

Rules apply by option name (``--output-dir``: ``output_dir``), so a new command with a
``--top`` or ``--output-dir`` is covered without a line of its own; the CLI fuzz test
(tests/test_cli_fuzz.py) checks every command.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from ..collectors.ash import MIN_INTERVAL_S as MIN_ASH_INTERVAL_S

INT64 = 2**63 - 1

#: whole numbers: name -> (min, max)
INT_RANGES: dict[str, tuple[int, int]] = {
    "top": (1, 10_000),
    "limit": (1, 1_000_000),
    "days": (1, 36_500),
    "clients": (1, 1_000),
    "scale": (1, 100_000),
    "redundancy": (1, 1_000),
    "jobs": (1, 64),
    "port": (1, 65_535),
    "snapshot_id": (1, INT64),
    "analysis_id": (1, INT64),
    "analysis": (1, INT64),
    "begin": (1, INT64),
    "end": (1, INT64),
    "begin1": (1, INT64),
    "end1": (1, INT64),
    "begin2": (1, INT64),
    "end2": (1, INT64),
}
#: other whole numbers (query ids, seeds) stay within bigint
INT_DEFAULT = (-INT64 - 1, INT64)

#: numbers with a fraction: name -> (min, max, min is exclusive)
FLOAT_RANGES: dict[str, tuple[float, float, bool]] = {
    "duration": (0.0, 366 * 86400.0, True),
    "interval": (MIN_ASH_INTERVAL_S, 3600.0, False),
    "rate": (0.0, 1e9, True),
    "recovery_window_days": (0.0, 36_500.0, True),
    "min_impact": (0.0, 100.0, False),
}

#: text options where an empty value has a meaning ('' removes a schedule)
EMPTY_OK = {"full", "incremental", "verify", "retention", "wal"}
#: text options holding an ISO 8601 time
TIME_NAMES = {"begin", "end", "time"}
#: text options naming a directory opscore writes into (created when missing)
OUTPUT_DIRS = {"output_dir"}
#: text options naming a directory another program creates (must be creatable, not a file)
NEW_DIRS = {"to", "path"}
#: text options holding an LSN
LSN_NAMES = {"until", "lsn"}

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$", re.I)
_SINCE_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _Bad(Exception):
    pass


def _check_int(name: str, value: int) -> None:
    lo, hi = INT_RANGES.get(name, INT_DEFAULT)
    if not lo <= value <= hi:
        if hi >= INT64:
            raise _Bad(f"must be a whole number of at least {lo} (got {value}).")
        raise _Bad(f"must be a whole number from {lo} to {hi:,} (got {value}).")


def _check_float(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise _Bad(f"must be a finite number (got {value}).")
    rng = FLOAT_RANGES.get(name)
    if rng is None:
        return
    lo, hi, exclusive = rng
    if (value <= lo if exclusive else value < lo) or value > hi:
        low = f"more than {lo:g}" if exclusive else f"at least {lo:g}"
        raise _Bad(f"must be {low} and at most {hi:g} (got {value:g}).")


def _check_dir(name: str, value: str, create: bool) -> None:
    path = Path(value).expanduser()
    if path.exists():
        if not path.is_dir():
            raise _Bad("names something that is not a directory.")
        if not os.access(path, os.W_OK | os.X_OK):
            raise _Bad("names a directory opscore cannot write into.")
        if create:  # /proc and other pseudo file systems: try for real
            try:
                probe = path / f".opscore-write-test-{os.getpid()}"
                probe.touch()
                probe.unlink()
            except OSError as exc:
                raise _Bad(
                    f"names a directory opscore cannot write into ({exc.strerror})."
                ) from None
        return
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise _Bad("lies under something that is not a directory.")
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise _Bad(f"cannot be created ({exc.strerror}).") from None
    if not create:  # only proving it can be made: the program that fills it creates it
        for d in [path, *path.parents]:
            if d == parent:
                break
            d.rmdir()


def _check_str(name: str, value: str) -> None:
    if value == "" and name in EMPTY_OK:
        return
    if not value.strip():
        raise _Bad("must not be empty.")
    if any(ord(c) < 32 and c not in "\t" for c in value) or "\x7f" in value:
        raise _Bad("must not contain control characters (newlines, NUL, ...).")
    if len(value) > 4096:
        raise _Bad("is too long.")
    if name == "target" and not _TARGET.match(value):
        raise _Bad(
            "is not a target name (1-63 letters, digits, '_', '.', '-'); "
            "list them with `opscore target list`."
        )
    if name == "since":
        m = _SINCE.match(value)
        if not m:
            raise _Bad("is not a duration: use a number and a unit, e.g. 30s, 10m, 2h, 1d.")
        seconds = float(m.group(1)) * _SINCE_UNITS[m.group(2).lower()]
        if not 0 < seconds <= timedelta(days=36_500).total_seconds():
            raise _Bad("must be more than 0 and at most 36500d.")
    if name in TIME_NAMES:
        from ..api.common import utc_time  # the one parser of times given by users
        from ..errors import OpsCoreError

        try:
            utc_time(value, name)
        except OpsCoreError:
            raise _Bad("is not a time: use ISO 8601, e.g. 2026-11-25T14:00:00Z.") from None
    if name in LSN_NAMES:
        if not _LSN.match(value):
            raise _Bad("is not an LSN (e.g. 0/3000060).")
        hi, lo = (int(x, 16) for x in value.split("/"))
        if hi == 0 and lo == 0:
            raise _Bad("must be after 0/0.")
    if name in OUTPUT_DIRS:
        _check_dir(name, value, create=True)
    if name in NEW_DIRS:
        _check_dir(name, value, create=False)


def check_value(name: str, value: Any) -> None:
    """Raise ``_Bad`` when ``value`` of parameter ``name`` is out of bounds."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        _check_int(name, value)
    elif isinstance(value, float):
        _check_float(name, value)
    elif isinstance(value, str | Path):
        _check_str(name, str(value))
    elif isinstance(value, list | tuple):
        for v in value:
            check_value(name, v)


def _flag(default: Any, name: str) -> str:
    decls = getattr(default, "param_decls", None) or ()
    longs = [d for d in decls if d.startswith("--")]
    if longs:
        return longs[0]
    if isinstance(default, typer.models.ArgumentInfo):
        return name.upper()
    return "--" + name.replace("_", "-")


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(fn, "_opscore_validated", False):
        return fn
    sig = inspect.signature(fn)
    flags = {n: _flag(p.default, n) for n, p in sig.parameters.items()}
    # rules are keyed by the option as users type it (--output-dir: output_dir)
    keys = {n: f.lstrip("-").replace("-", "_").lower() for n, f in flags.items()}

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind_partial(*args, **kwargs)
        for name, value in bound.arguments.items():
            try:
                check_value(keys[name], value)
            except _Bad as exc:
                raise typer.BadParameter(str(exc), param_hint=f"'{flags[name]}'") from None
        return fn(*args, **kwargs)

    checked._opscore_validated = True  # type: ignore[attr-defined]
    return checked


def harden(app: typer.Typer) -> typer.Typer:
    """Validate the input of every command of ``app`` (and of its sub-apps) first."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _wrap(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            harden(group.typer_instance)
    return app
