"""One wrapper for every external program opscore runs (pg_ctl, pg_basebackup, pgbench, ...).

Argument lists only (never a shell), output streamed line by line to a logger or a callback,
and a typed failure (:class:`CommandFailed`) carrying the exit code and the tail of stderr.
"""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CommandFailed

log = logging.getLogger("opscore.commands")


@dataclass
class CommandResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(
    args: Sequence[str | Path],
    *,
    user: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    check: bool = True,
    on_line: Callable[[str], None] | None = None,
    input: str | None = None,
) -> CommandResult:
    """Run a program and wait for it.

    ``on_line`` receives each stderr line as it arrives (progress of pg_basebackup, pgbench...).
    ``user`` runs the program as another system user (root only: the embedded server's user).
    """
    argv = [str(a) for a in args]
    full_env = {**os.environ, **(env or {})}
    ids: dict = {}
    if user is not None:
        # switch group and supplementary groups too: a process keeping gid 0 would be denied by
        # the group bits of root-owned directories it should reach through their "other" bits
        entry = pwd.getpwnam(user)
        ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        full_env.update(HOME=entry.pw_dir or "/", USER=user, LOGNAME=user)
    log.debug("running %s", argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=cwd if cwd is not None else ("/" if user else None),
            **ids,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(f"Program not found: {argv[0]}", "Check the installation.") from exc

    out_chunks: list[str] = []
    err_tail: deque[str] = deque(maxlen=200)

    def pump_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_tail.append(line)
            line = line.rstrip("\n")
            if on_line:
                on_line(line)
            else:
                log.debug("%s: %s", Path(argv[0]).name, line)

    def pump_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out_chunks.append(line)

    threads = [
        threading.Thread(target=pump_err, daemon=True),
        threading.Thread(target=pump_out, daemon=True),
    ]
    for t in threads:
        t.start()
    if input is not None:
        assert proc.stdin is not None
        proc.stdin.write(input)
        proc.stdin.close()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        raise CommandFailed(
            f"{Path(argv[0]).name} did not finish within {timeout} s and was stopped.",
            returncode=-9,
            stderr="".join(err_tail),
        ) from exc
    for t in threads:
        t.join(timeout=5)
    result = CommandResult(argv, rc, "".join(out_chunks), "".join(err_tail))
    if check and rc != 0:
        last = "".join(err_tail).strip().splitlines()[-5:]
        raise CommandFailed(
            f"{Path(argv[0]).name} failed with exit code {rc}: "
            + (" | ".join(last) or "no output"),
            returncode=rc,
            stderr=result.stderr,
        )
    return result
