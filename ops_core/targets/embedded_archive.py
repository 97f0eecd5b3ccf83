"""WAL archiving of the embedded server opscore owns: ``archive_mode`` and an
``archive_command`` that copies each finished WAL file into a backup store with its SHA-256.
A part of :class:`ops_core.targets.embedded.EmbeddedServer` (mixed in), never used on a server
a user registered."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path
from typing import Any

from ..errors import EmbeddedServerError

__all__ = ["ARCHIVE_SCRIPT_TEXT", "WalArchiving"]

# archive_command of the embedded server: run by the server (its OS user) for each finished
# WAL file; arguments are the server's %p and %f and the store's WAL directory
ARCHIVE_SCRIPT_TEXT = """#!/bin/sh
# written by opscore: copy a finished WAL file into the backup store with its SHA-256
set -eu
src="$1"; name="$2"; dir="$3"
if [ -f "$dir/$name" ]; then
    # archived already (a restart re-runs the command): fine if identical, refused otherwise
    cmp -s "$src" "$dir/$name" && exit 0
    echo "opscore archive: $dir/$name exists with different content" >&2
    exit 1
fi
cp "$src" "$dir/$name.tmp"
sum=$(sha256sum "$dir/$name.tmp" | cut -d' ' -f1)
printf '%s  %s\\n' "$sum" "$name" > "$dir/checksums/$name.sha256.tmp"
sync "$dir/$name.tmp" "$dir/checksums/$name.sha256.tmp" 2>/dev/null || true
mv "$dir/$name.tmp" "$dir/$name"
mv "$dir/checksums/$name.sha256.tmp" "$dir/checksums/$name.sha256"
"""


class WalArchiving:
    """The archiving methods of ``EmbeddedServer`` (its data directory, root, OS user,
    status, connection and restart)."""

    pgdata: Path
    root: Path
    os_user: str | None
    chown_for_server: Any
    status: Any
    conninfo: Any
    stop: Any
    start: Any

    ARCHIVE_CONF = "opscore-archive.conf"
    ARCHIVE_SCRIPT = "opscore-archive.sh"

    def archiving(self) -> dict:
        """The archive settings opscore wrote for this server (empty when off)."""
        conf = self.pgdata / self.ARCHIVE_CONF
        if not conf.exists():
            return {}
        m = re.search(r"^# wal_dir = (.+)$", conf.read_text(), re.M)
        return {"wal_dir": m.group(1) if m else None, "conf": str(conf)}

    def enable_archiving(self, wal_dir: Path) -> bool:
        """``archive_mode=on`` with an ``archive_command`` that copies each finished segment
        into ``wal_dir`` with its SHA-256 (``checksums/<segment>.sha256``), refusing to
        overwrite a different file of the same name. Returns whether a restart was needed
        (archive_mode takes effect only at start; the command alone needs a reload)."""
        from ..backup.store import SAFE_PATH_RE

        wal_dir = Path(wal_dir).absolute()
        if not SAFE_PATH_RE.match(str(wal_dir)):
            raise EmbeddedServerError(
                f"The WAL archive path {wal_dir} has characters that are not safe in an "
                "archive_command.",
                "Move the backup store to a plain path (`opscore backup store`).",
            )
        (wal_dir / "checksums").mkdir(parents=True, exist_ok=True)
        self.chown_for_server(wal_dir / "checksums")
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(wal_dir, entry.pw_uid, entry.pw_gid)
        script = self.root / self.ARCHIVE_SCRIPT
        script.write_text(ARCHIVE_SCRIPT_TEXT)
        script.chmod(0o755)
        (self.pgdata / self.ARCHIVE_CONF).write_text(
            "# written by opscore: archive WAL into the backup store\n"
            f"# wal_dir = {wal_dir}\n"
            "archive_mode = on\n"
            f"archive_command = '{script} %p %f {wal_dir}'\n"
        )
        self._include(self.ARCHIVE_CONF)
        return self._apply_archive_mode(want="on")

    def disable_archiving(self) -> bool:
        (self.pgdata / self.ARCHIVE_CONF).unlink(missing_ok=True)
        return self._apply_archive_mode(want="off")

    def _include(self, name: str) -> None:
        conf = self.pgdata / "postgresql.conf"
        line = f"include_if_exists = '{name}'"
        if line not in conf.read_text():
            with open(conf, "a") as fh:
                fh.write(f"\n{line}\n")

    def _apply_archive_mode(self, want: str) -> bool:
        if not self.status().running:
            return False
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('archive_mode')").fetchone()
            current = row[0] if row else "off"
            if current == want:
                conn.execute("SELECT pg_reload_conf()")
                return False
        self.stop()
        self.start()
        return True
