"""opscore's pgpass file (``$OPSCORE_HOME/pgpass``, mode 0600): the one writer of it.

Each target whose DSN carried a password owns one block, a marker comment followed by one line
per host of the DSN::

    # opscore target: prod
    db1.example.com:5432:*:monitor:s3cr\\:et

The database field is ``*``: snapshots read every database of the target's server, each over
its own connection, and all need the password (not only the DSN's own database). ``:`` and
``\\`` are escaped as libpq reads them; a password with a newline is refused (it would end the
line). Writing a target's block replaces its previous one and puts the new block first (libpq
takes the first matching line); older unmarked opscore lines for the same host, port and user
are dropped. :func:`remove` deletes the target's block. The file is rewritten atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InvalidInput

MARKER = "# opscore target: "
# The block of the embedded PostgreSQL's own superuser password (not a target: no target name can
# hold parentheses or spaces). It names the server's current port, so it never answers for
# another server on 127.0.0.1, and the targets' blocks written before it never hide it.
EMBEDDED = "(embedded server)"


def escape(value: str) -> str:
    """A pgpass field: ``\\`` and ``:`` escaped; newlines refused."""
    if "\n" in value or "\r" in value:
        raise InvalidInput(
            "The password contains a line break, which a pgpass file cannot hold.",
            "Use a password without line breaks, or give it with --password-env.",
        )
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _split(line: str) -> list[str]:
    """The fields of a pgpass line (escapes undone)."""
    fields, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
            continue
        if ch == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    fields.append("".join(cur))
    return fields


def entries_for(params: dict[str, str], password: str) -> list[str]:
    """The pgpass lines for a DSN's parameters: one per host, any database."""
    hosts = (params.get("host") or params.get("hostaddr") or "localhost").split(",")
    ports = (params.get("port") or "*").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    user = params.get("user") or "*"
    pw = escape(password)
    lines = []
    for host, port in zip(hosts, ports, strict=False):
        lines.append(":".join([escape(host), escape(port or "*"), "*", escape(user), pw]))
    return lines


def _read(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _blocks(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """(owner, lines) groups: a marker and the lines up to the next marker or blank line."""
    out: list[tuple[str | None, list[str]]] = []
    owner: str | None = None
    for ln in lines:
        if ln.startswith(MARKER):
            owner = ln[len(MARKER) :].strip()
            out.append((owner, [ln]))
        elif owner is not None and ln.strip() and not ln.startswith("#"):
            out[-1][1].append(ln)
        else:
            owner = None
            out.append((None, [ln]))
    return out


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pgpass-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(ln + "\n" for ln in lines))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store(
    path: Path,
    target: str,
    params: dict[str, str],
    password: str,
    *,
    replaces: tuple[str, str, str] | None = None,
) -> Path:
    """Write (or replace) the block of ``target`` first in the file; return the path.
    ``replaces``: (host, port, user) of an unmarked line an older opscore wrote for this owner,
    dropped too."""
    new = entries_for(params, password)  # refuses a bad password before touching the file
    keys = {tuple(_split(e)[:2]) + (_split(e)[3],) for e in new}
    kept: list[str] = []
    for owner, lines in _blocks(_read(path)):
        if owner == target:
            continue
        if owner is None and len(lines) == 1 and not lines[0].startswith("#"):
            f = _split(lines[0])
            if len(f) == 5 and (f[0], f[1], f[3]) in keys:
                continue  # an older opscore line for the same server and user
            if len(f) == 5 and (f[0], "*", f[3]) in keys:
                continue
            if len(f) == 5 and replaces and (f[0], f[1], f[3]) == replaces:
                continue
        kept.extend(lines)
    first: list[str] = []
    if target != EMBEDDED:  # port-specific, so it shadows no other server: it stays first
        for owner, lines in _blocks(kept):
            if owner == EMBEDDED:
                first = lines
        kept = [ln for ln in kept if ln not in first]
    _write(path, [*first, MARKER + target, *new, *kept])
    return path


def remove(path: Path, target: str, params: dict[str, str] | None = None) -> bool:
    """Delete the block of ``target`` (and, given its DSN ``params``, the unmarked line an older
    opscore wrote for exactly that host, port, database and user); True when one was removed."""
    if not path.exists():
        return False
    legacy = None
    if params:
        legacy = (
            params.get("host", "localhost"),
            params.get("port", "5432"),
            params.get("dbname", "*"),
            params.get("user", os.environ.get("USER", "*")),
        )
    blocks = _blocks(_read(path))
    kept: list[str] = []
    for owner, lines in blocks:
        if owner == target:
            continue
        if owner is None and legacy and len(lines) == 1 and not lines[0].startswith("#"):
            f = _split(lines[0])
            if len(f) == 5 and tuple(f[:4]) == legacy:
                continue
        kept.extend(lines)
    if len(kept) == sum(len(lines) for _, lines in blocks):
        return False
    _write(path, kept)
    return True


def upgrade_legacy(path: Path, targets: list[tuple[str, dict[str, str]]]) -> list[str]:
    """Turn the lines an older opscore wrote (one database, no owner) into target blocks for
    any database; ``targets``: (name, DSN parameters) of the targets using this file.
    Returns the names upgraded."""
    done = []
    for name, params in targets:
        if any(owner == name for owner, _ in _blocks(_read(path))):
            continue
        legacy = (
            params.get("host", "localhost"),
            params.get("port", "5432"),
            params.get("dbname", "*"),
            params.get("user", os.environ.get("USER", "*")),
        )
        for owner, lines in _blocks(_read(path)):
            if owner is None and len(lines) == 1 and not lines[0].startswith("#"):
                f = _split(lines[0])
                if len(f) == 5 and tuple(f[:4]) == legacy:
                    store(path, name, params, f[4])
                    done.append(name)
                    break
    return done


def block_password(path: Path, owner: str) -> str | None:
    """The password of ``owner``'s block (its first line), or None."""
    for o, lines in _blocks(_read(path)):
        if o == owner and len(lines) > 1:
            f = _split(lines[1])
            if len(f) == 5:
                return f[4]
    return None


def lookup(path: Path, host: str, port: str, dbname: str, user: str) -> str | None:
    """The password libpq would take from ``path`` (first matching line), for tests and checks."""
    for ln in _read(path):
        if not ln.strip() or ln.startswith("#"):
            continue
        f = _split(ln)
        if len(f) != 5:
            continue
        if all(a == "*" or a == b for a, b in zip(f[:4], (host, port, dbname, user), strict=True)):
            return f[4]
    return None
