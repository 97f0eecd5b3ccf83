"""Secrets never leave the target: passwords set on a target while opscore watches it reach no
CLI output, no file under OPSCORE_HOME or reports/, no Prefect state and no row of the
repository (a pg_dump of it is searched).

On the target: roles created and altered with passwords (also one ALTER ROLE held on a lock,
so ASH sees it running), a postgres_fdw user mapping created and altered with a password, a
subscription created and altered with a password in its conninfo (connect = false), dblink
conninfo strings with a password. Meanwhile snapshots, an ASH sampler, ADDM and the AWR, ASH
and ADDM reports (HTML notebooks and text) run through the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ops_core.targets.embedded import bin_dir

pytestmark = pytest.mark.slow

RUN = uuid.uuid4().hex[:8]
SECRETS = {name: f"Sekr{name}{RUN}x" for name in ("R1", "R2", "U3", "U4", "LK", "M5", "M6", "S7")}
SECRETS |= {"S8": f"Sekr8{RUN}x", "D9": f"Sekr9{RUN}x", "DA": f"SekrA{RUN}x"}


def _cli(env: dict[str, str], outputs: list[str], *args: str, timeout: int = 600) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "ops_core", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    outputs.append(f"$ opscore {' '.join(args)}\n{r.stdout}\n{r.stderr}")
    assert r.returncode == 0, f"opscore {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _wait_for(dsn: str, query: str, params: tuple, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as c:
        while time.monotonic() < deadline:
            if c.execute(query, params).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {query}")


def _secret_workload(dsn: str) -> None:
    """Everything a DBA does on the target that carries a password."""
    s = SECRETS
    with psycopg.connect(dsn, autocommit=True, application_name="dba-console") as c:
        c.execute(f"CREATE ROLE sec_r_{RUN} LOGIN PASSWORD '{s['R1']}'")
        c.execute(f"ALTER ROLE sec_r_{RUN} WITH ENCRYPTED PASSWORD '{s['R2']}'")
        c.execute(f"CREATE USER sec_u_{RUN} PASSWORD '{s['U3']}' VALID UNTIL 'infinity'")
        c.execute(f"ALTER USER sec_u_{RUN} PASSWORD '{s['U4']}'")
        c.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
        c.execute(
            f"CREATE SERVER sec_srv_{RUN} FOREIGN DATA WRAPPER postgres_fdw "
            "OPTIONS (host '127.0.0.1', port '1', dbname 'nowhere')"
        )
        c.execute(
            f"CREATE USER MAPPING FOR sec_r_{RUN} SERVER sec_srv_{RUN} "
            f"OPTIONS (user 'remote', password '{s['M5']}')"
        )
        c.execute(
            f"ALTER USER MAPPING FOR sec_r_{RUN} SERVER sec_srv_{RUN} "
            f"OPTIONS (SET password '{s['M6']}')"
        )
        c.execute(
            f"CREATE SUBSCRIPTION sec_sub_{RUN} CONNECTION "
            f"'host=127.0.0.1 port=1 dbname=x user=rep password={s['S7']}' "
            "PUBLICATION nopub WITH (connect = false)"
        )
        c.execute(
            f"ALTER SUBSCRIPTION sec_sub_{RUN} CONNECTION "
            f"'host=127.0.0.1 port=1 dbname=x user=rep password={s['S8']}'"
        )
        c.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        try:  # fails (nothing listens on port 1); the text is what matters
            c.execute(
                f"SELECT dblink_connect('c_{RUN}', 'host=127.0.0.1 port=1 password={s['D9']}')"
            )
        except psycopg.Error:
            pass
        # a running statement with a conninfo literal, for ASH to see
        url = f"postgresql://rep:{s['DA']}@127.0.0.1:1/x"
        c.execute(sql.SQL("SELECT pg_sleep(2), length({})").format(sql.Literal(url)))


def _blocked_alter_role(dsn: str) -> None:
    """An ALTER ROLE ... PASSWORD that waits on a lock for a while: ASH samples its text."""
    role = f"sec_r_{RUN}"
    holder = psycopg.connect(dsn, application_name="dba-holder")
    holder.execute(f"ALTER ROLE {role} CONNECTION LIMIT 5")  # holds the row lock
    waiter = psycopg.connect(dsn, autocommit=True, application_name="dba-waiter")

    def run() -> None:
        waiter.execute(f"ALTER ROLE {role} PASSWORD '{SECRETS['LK']}'")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    _wait_for(
        dsn,
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'dba-waiter' "
        "AND wait_event_type = 'Lock'",
        (),
    )
    time.sleep(2.5)  # the sampler (interval 0.2 s) sees it waiting for several samples
    holder.rollback()
    t.join(30)
    holder.close()
    waiter.close()


def _cleanup(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"ALTER SUBSCRIPTION sec_sub_{RUN} DISABLE")
        c.execute(f"ALTER SUBSCRIPTION sec_sub_{RUN} SET (slot_name = NONE)")
        c.execute(f"DROP SUBSCRIPTION sec_sub_{RUN}")
        c.execute(f"DROP SERVER sec_srv_{RUN} CASCADE")
        c.execute(f"DROP ROLE sec_r_{RUN}")
        c.execute(f"DROP ROLE sec_u_{RUN}")


def test_no_secret_reaches_opscore(pg, opscore_env, repo, target_db, tmp_path):
    # the repository of the test session (emptied by the repo fixture), reached by its DSN so
    # that OPSCORE_HOME can be a directory of this test alone
    repo_dsn = opscore_env["OPSCORE_REPOSITORY_DSN"] or pg.dsn(repo.info.dbname)
    home = tmp_path / "home"
    reports = tmp_path / "reports"
    env = {
        **os.environ,
        "OPSCORE_HOME": str(home),
        "OPSCORE_REPOSITORY_DSN": repo_dsn,
        "OPSCORE_REPORTS_DIR": str(reports),
        "COLUMNS": "200",
    }
    outputs: list[str] = []
    name = f"sec{RUN}"
    _cli(env, outputs, "init")
    _cli(env, outputs, "target", "add", name, target_db)
    _cli(env, outputs, "snapshot", "take", "--target", name)

    sampler = subprocess.Popen(
        [sys.executable, "-m", "ops_core", "ash", "run", "--target", name, "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(
            target_db,
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'opscore%%'",
            (),
            timeout=120,
        )
        _secret_workload(target_db)
        _blocked_alter_role(target_db)
        time.sleep(1)  # one more sample after the lock is gone
    finally:
        sampler.send_signal(2)  # Ctrl-C: the sampler flushes and exits
        out, err = sampler.communicate(timeout=120)
        outputs.append(f"$ opscore ash run\n{out}\n{err}")
    try:
        _cli(env, outputs, "snapshot", "take", "--target", name)
        listing = _cli(env, outputs, "snapshot", "list", "--target", name, "--json")
        assert listing.count('"snapshot_id"') >= 2
        _cli(env, outputs, "snapshot", "show", _last_snapshot(listing), "--top", "100")
        _cli(env, outputs, "ash", "top", "--target", name, "--by", "sql", "--since", "1h")
        _cli(env, outputs, "ash", "query", "--target", name, "--since", "1h", "--limit", "5000")
        _cli(env, outputs, "addm", "run", "--target", name)
        _cli(env, outputs, "addm", "list", "--target", name)
        for kind in ("awr", "ash", "addm"):
            _cli(env, outputs, "report", kind, "--target", name, "--format", "text")
            _cli(env, outputs, "report", kind, "--target", name, "--output-dir", str(reports))
        # the ASH sampler saw the ALTER ROLE waiting: its scrubbed text is in the repository
        with psycopg.connect(repo_dsn) as c:
            texts = [r[0] for r in c.execute("SELECT query_text FROM opscore.ash_query_texts")]
            stmts = [r[0] for r in c.execute("SELECT query FROM opscore.statements")]
        assert any("ALTER ROLE" in t and "<redacted>" in t for t in texts), texts
        assert any("<redacted>" in t for t in stmts if t)

        dump = subprocess.run(
            [str(bin_dir() / "pg_dump"), "--data-only", "--schema=opscore", "-d", repo_dsn],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout
        assert "statements" in dump

        haystacks = {"cli output": "\n".join(outputs), "repository dump": dump}
        prefect_home = os.environ.get("PREFECT_HOME")
        for root in [home, reports, *([Path(prefect_home)] if prefect_home else [])]:
            for f in root.rglob("*"):
                if f.is_file():
                    haystacks[str(f)] = f.read_bytes().decode("utf-8", errors="replace")
        assert any(str(reports) in k and k.endswith(".html") for k in haystacks)
        hits = [
            f"{label} in {where}"
            for where, text in haystacks.items()
            for label, secret in SECRETS.items()
            if secret in text
        ]
        assert not hits, hits
    finally:
        _cleanup(target_db)
        subprocess.run(
            [sys.executable, "-m", "ops_core", "target", "remove", name],
            env=env,
            capture_output=True,
            timeout=120,
        )


def _last_snapshot(listing: str) -> str:
    import json

    return str(max(s["snapshot_id"] for s in json.loads(listing)))
