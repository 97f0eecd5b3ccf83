"""One wrapper for every external program opscore runs (pg_ctl, pg_basebackup, pgbench, ...).

Argument lists only (never a shell), output streamed line by line to a logger or a callback,
and a typed failure (:class:`CommandFailed`) carrying the exit code and the tail of stderr.

Children die with their parent: each runs in its own process group with the kernel's
parent-death signal (``PR_SET_PDEATHSIG``) set to SIGKILL, so a ``kill -9`` of opscore does not
leave a ``pg_basebackup`` holding target connections; an interrupted wait (Ctrl-C, an
exception) kills the whole group. ``on_spawn`` receives the child's pid (= its process group),
which a caller can record so a later command can clean up after a killed opscore.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CommandFailed

log = logging.getLogger("opscore.commands")
PR_SET_PDEATHSIG = 1
try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # not Linux
    _libc = None


def _die_with(parent: int) -> Callable[[], None]:
    """``preexec_fn``: SIGKILL this child when ``parent`` dies (runs after the uid switch,
    which would otherwise clear the setting)."""

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a process group started by :func:`run`; False when it is gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


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
    on_spawn: Callable[[int], None] | None = None,
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
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
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
    try:
        if on_spawn:
            on_spawn(proc.pid)
        if input is not None:
            assert proc.stdin is not None
            proc.stdin.write(input)
            proc.stdin.close()
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_group(proc.pid)
        proc.wait()
        raise CommandFailed(
            f"{Path(argv[0]).name} did not finish within {timeout} s and was stopped.",
            returncode=-9,
            stderr="".join(err_tail),
        ) from exc
    except BaseException:
        # Ctrl-C (the child is in its own group and did not get it) or any other exception:
        # the child and whatever it forked go too
        kill_group(proc.pid)
        proc.wait()
        raise
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
