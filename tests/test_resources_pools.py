"""Connection pools: without a pooler the server's connections are grouped and said to be so;
with a real PgBouncer in front (started here as the postgres OS user) its SHOW POOLS shows the
client this test holds through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_core import api
from ops_core.errors import InvalidInput
from ops_core.targets import pgpass

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bouncer(pg, target_db):
    if not Path(PGBOUNCER).exists():
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    with pg.admin() as c:
        port = c.execute("SHOW port").fetchone()[0]
    db = conninfo_to_dict(target_db)["dbname"]
    server = f"host=127.0.0.1 port={port} user=postgres dbname={db}"
    if pg.embedded is not None:  # the embedded server wants its superuser's password
        password = pgpass.block_password(Path(pg.embedded.passfile), pgpass.EMBEDDED)
        assert password, "the embedded server's passfile lost its block"
        server += f" password={password}"
    home = Path(tempfile.mkdtemp(prefix="ops-pgb-"))
    lport = _free_port()
    ini = home / "pgb.ini"
    ini.write_text(
        f"[databases]\n{db} = {server}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
        f"listen_port = {lport}\nunix_socket_dir =\nauth_type = any\n"
        f"admin_users = opsadmin\npool_mode = transaction\nlogfile = {home}/pgb.log\n"
        f"pidfile = {home}/pgb.pid\n"
    )
    os.chmod(home, 0o777)
    os.chmod(ini, 0o644)
    cmd = [PGBOUNCER, str(ini)]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    admin = f"host=127.0.0.1 port={lport} dbname=pgbouncer user=opsadmin"
    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(admin, autocommit=True).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"pgbouncer did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.2)
    try:
        yield admin, f"host=127.0.0.1 port={lport} dbname={db} user=postgres"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(home, ignore_errors=True)


def test_pools_without_and_with_pgbouncer(repo, target_db, bouncer):
    admin, through = bouncer
    api.add_target("pl", target_db)
    bare = api.connection_pools("pl")
    assert bare.pooler is None and "no connection pooler" in bare.note
    assert bare.client_connections >= 1 and bare.max_connections > 0
    with pytest.raises(InvalidInput, match="password"):
        api.set_target_pooler("pl", admin + " password=x")
    with pytest.raises(InvalidInput, match="pgbouncer"):
        api.set_target_pooler("pl", admin.replace("dbname=pgbouncer", "dbname=postgres"))
    api.set_target_pooler("pl", admin)
    db = conninfo_to_dict(target_db)["dbname"]
    with psycopg.connect(through) as client:  # a transaction held open through the pooler
        client.execute("SELECT 1")
        p = api.connection_pools("pl")
        assert p.pooler == "pgbouncer" and p.pooler_reachable, p.note
        row = p.pools[p.pools["database"] == db].iloc[0]
        assert row["cl_active"] >= 1 and row["sv_active"] >= 1
        assert db in set(p.stats["database"])
    api.set_target_pooler("pl", None)
    assert api.connection_pools("pl").pooler is None
