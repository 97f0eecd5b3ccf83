"""CLI fuzz: every command of the `opscore` app, bad values generated for each option's type.

Each invocation gives one bad value (the other required values are well formed) and must end
with a non-zero exit code and a message naming the option: never a traceback, never exit 0.
The repository points at a closed port, so a value that slipped through the boundary checks
shows as a "repository unreachable" error instead of the option's message (and nothing can run
for real); os.execv* is disabled so `opscore app` can never replace the test process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ops_core import api
from ops_core.cli import app
from ops_core.cli.validate import (
    EMPTY_OK,
    FLOAT_RANGES,
    INT_RANGES,
    LSN_NAMES,
    NEW_DIRS,
    OUTPUT_DIRS,
    TIME_NAMES,
)
from ops_core.config import reset_settings_cache


def _commands() -> Iterator[tuple[list[str], object]]:
    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    yield from walk(typer.main.get_command(app), [])


def _key(param) -> str:
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0].lstrip("-").replace("-", "_").lower() if longs else param.name


def _kind(param) -> type:
    ann = param.type_descriptor.annotation
    args = getattr(ann, "__args__", None)
    if getattr(ann, "__origin__", None) is list and args:
        return args[0]
    if args:  # Optional[...]
        ann = next(a for a in args if a is not type(None))
    return ann


def _good(param, tmp: Path) -> str:
    key, kind = _key(param), _kind(param)
    if kind is int:
        return "1"
    if kind is float:
        return "1"
    if key in TIME_NAMES:
        return "2026-01-01T00:00:00Z"
    if key in OUTPUT_DIRS:
        return str(tmp / "out")
    if key in NEW_DIRS:
        return str(tmp / "new")
    if key in LSN_NAMES:
        return "0/3000060"
    if key == "since":
        return "10m"
    return "fz"


def _bad(param) -> list[str]:
    key, kind = _key(param), _kind(param)
    if kind is bool:
        return []
    if kind is int:
        out = ["abc", "1.5", str(2**70), "postgresql://u:pw@h/db"]
        if key in INT_RANGES:
            lo, hi = INT_RANGES[key]
            out += [str(lo - 1), str(hi + 1)] if hi < 2**63 - 1 else [str(lo - 1)]
        return out
    if kind is float:
        out = ["abc", "nan", "inf", "-inf", "1e400", "host=h password=pw@x"]
        if key in FLOAT_RANGES:
            lo, hi, exclusive = FLOAT_RANGES[key]
            out += [repr(lo if exclusive else lo - 0.001), repr(hi * 2 + 1)]
        return out
    out = ["a\nb", "x\x00y", "\x1b[31m"]
    if key not in EMPTY_OK:
        # typer reads an empty path as "." (the current directory, a valid choice)
        out += ["   "] if kind is Path else ["", "   "]
    if key == "target":
        out += ["no such/target", "postgresql://u:pw@h/db"]
    if key == "since":
        out += ["99999999d", "10 fortnights", "0s"]
    if key in TIME_NAMES:
        out += ["not-a-time", "2026-13-45"]
    if key in OUTPUT_DIRS:
        out += ["/proc/nope", "/dev/null", "/dev/null/sub"]
    if key in NEW_DIRS:
        out += ["/proc/nope/x", "/dev/null"]
    if key in LSN_NAMES:
        out += ["0/0", "zz/1", "1"]
    return out


def _cases(tmp: Path):
    for path, cmd in _commands():
        params = [p for p in cmd.params if p.expose_value]
        for p in params:
            for value in _bad(p):
                argv = list(path)
                for other in params:
                    if other is p or not other.required:
                        continue
                    good = _good(other, tmp)
                    argv += [good] if not other.opts[0].startswith("-") else [other.opts[0], good]
                if p.opts[0].startswith("-"):
                    argv += [p.opts[0], value]
                else:
                    argv += ["--", value] if value.startswith("-") else [value]
                yield argv, p


@pytest.fixture
def offline_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("OPSCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPSCORE_REPOSITORY_DSN", "host=127.0.0.1 port=1 dbname=x user=x")
    monkeypatch.setenv("OPSCORE_CONNECT_TIMEOUT_S", "1")

    def no_exec(*a, **k):
        raise RuntimeError("exec disabled in tests")

    for name in ("execv", "execve", "execvp", "execvpe"):
        monkeypatch.setattr(os, name, no_exec)
    reset_settings_cache()
    yield tmp_path
    reset_settings_cache()


def test_every_command_rejects_bad_values_at_the_boundary(offline_repo, monkeypatch):
    import typer.testing

    built = typer.main.get_command(app)  # build the command tree once, not per invocation
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: built)
    runner = CliRunner()
    cases = list(_cases(offline_repo))
    assert len({tuple(a[:2]) for a, _ in cases}) >= 40  # the fuzz reaches most commands
    failures = []
    for argv, param in cases:
        res = runner.invoke(app, argv)
        text = res.output + (res.stderr if res.stderr_bytes is not None else "")
        flag = [o for o in param.opts if o.startswith("--")] or [param.name.upper()]
        problems = []
        if res.exit_code == 0:
            problems.append("exit 0")
        if "Traceback" in text or (
            res.exception is not None and not isinstance(res.exception, SystemExit)
        ):
            problems.append(f"exception {type(res.exception).__name__}")
        if "unreachable" in text or (flag[0] not in text and "Invalid value" not in text):
            problems.append("not rejected at the boundary: " + " ".join(text.split())[:160])
        if "pw@" in text:
            problems.append("echoed a DSN")
        if problems:
            failures.append(f"{argv!r}: {'; '.join(problems)}")
    assert not failures, f"{len(failures)} of {len(cases)} bad inputs:\n" + "\n".join(failures[:60])


def test_errors_inside_commands_print_message_and_hint_not_traceback(offline_repo):
    res = CliRunner().invoke(app, ["snapshot", "list"])
    text = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert res.exit_code == 1
    assert "Traceback" not in text
    assert "repository database is unreachable" in text and "What to do" in text


def test_database_errors_get_a_hint(capsys):
    import psycopg

    from ops_core.cli.common import report_error

    code = report_error(psycopg.errors.QueryCanceled("canceling statement due to timeout"))
    err = capsys.readouterr().err
    assert code == 1
    assert "Database error" in err and "What to do" in err and "TIMEOUT" in err
    code = report_error(ValueError("postgresql://u:Sekr3t@h/db went wrong"))
    err = capsys.readouterr().err
    assert code == 70 and "Sekr3t" not in err and "Traceback" not in err


#: well-formed values the repository or the target must refuse (unknown names, ids, choices)
SEMANTIC = [
    ["snapshot", "show", "999999"],
    ["snapshot", "take", "--target", "nosuch"],
    ["snapshot", "delete", "--target", "fz", "--begin", "5", "--end", "2"],
    ["snapshot", "compare", "--target", "fz", "--begin1", "1", "--end1", "2"],
    ["baseline", "delete", "nosuch"],
    ["addm", "show", "999999"],
    ["addm", "run", "--target", "fz", "--begin", "999998", "--end", "999999"],
    ["ash", "top", "--target", "fz", "--by", "nosuch"],
    ["ash", "query", "--target", "fz", "--wait-class", "NoSuchClass"],
    ["ash", "query", "--target", "fz", "--since", "10m", "--end", "2026-01-01T00:00:00Z"],
    ["ash", "query", "--target", "fz", "--begin", "2026-01-02", "--end", "2026-01-01"],
    ["report", "awr", "--target", "fz", "--format", "nosuch"],
    ["report", "awr", "--target", "fz", "--begin", "999998", "--end", "999999"],
    ["report", "addm", "--target", "fz", "--analysis", "999999"],
    ["workload", "fault", "nosuch", "--target", "fz"],
    ["workload", "fault", "missing_index", "--target", "fz", "--param", "nosuch=1"],
    ["workload", "fault", "missing_index", "--target", "fz", "--param", "novalue"],
    ["workload", "run", "--target", "fz", "--kind", "nosuch"],
    ["target", "check", "nosuch"],
    ["target", "add", "fz", "host=h"],
    ["target", "add", "new1", "not a dsn at all"],
    ["target", "add", "new2", "host=127.0.0.1 port=1", "--password-env", "1BAD"],
    ["backup", "list", "--target", "nosuch"],
    ["backup", "show", "20260101T000000-F0000"],
    ["workload", "fault", "lock_contention", "--target", "fz", "--param", "sessions=-3"],
    ["backup", "restore", "--target", "fz", "--to", "/tmp/opscore-fuzz-restore", "--lsn", "0/1"],
    ["restore-point", "create", "x" * 80, "--target", "fz"],
]


def test_semantic_errors_against_a_real_repository(repo, target_db, monkeypatch, tmp_path):
    api.add_target("fz", target_db, verify=False)
    monkeypatch.setenv("OPSCORE_CONNECT_TIMEOUT_S", "2")
    reset_settings_cache()
    failures = []
    for argv in SEMANTIC:
        res = CliRunner().invoke(app, argv)
        text = res.output + (res.stderr if res.stderr_bytes is not None else "")
        if res.exit_code == 0 or "Traceback" in text or "Unexpected error" in text:
            failures.append(f"{argv!r}: exit {res.exit_code}: {' '.join(text.split())[:300]}")
        elif not text.strip():
            failures.append(f"{argv!r}: no message")
    reset_settings_cache()
    assert not failures, "\n".join(failures)
