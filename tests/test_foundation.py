"""Repository migrations, target registry, password hygiene, monitoring sessions, bad input."""

from __future__ import annotations

import json
import os
import stat

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ops_core import api, repository
from ops_core.errors import (
    InvalidDSN,
    InvalidInput,
    SchemaTooNew,
    UnknownTarget,
)
from ops_core.targets import connection

from .helpers import invoke_cli, run_cli


def test_migrations_idempotent_and_versioned(repo):
    known = max(m.version for m in repository.migrations())
    assert repository.schema_version(repo) == known
    assert repository.migrate(repo) == []  # second run applies nothing
    rows = repo.execute("SELECT version FROM opscore.schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == [m.version for m in repository.migrations()]
    info = api.init_repository()
    assert info.applied_now == [] and info.schema_version == known


def test_newer_schema_is_refused_and_untouched(repo):
    repo.execute("INSERT INTO opscore.schema_migrations (version, name) VALUES (9999, 'future')")
    before = repo.execute("SELECT count(*) FROM opscore.schema_migrations").fetchone()[0]
    with pytest.raises(SchemaTooNew) as err:
        repository.migrate(repo)
    assert "9999" in err.value.message and "Upgrade opscore" in err.value.hint
    assert repo.execute("SELECT count(*) FROM opscore.schema_migrations").fetchone()[0] == before
    res = run_cli("init")
    assert res.returncode != 0
    assert "newer" in res.stderr and "Traceback" not in res.stderr


def test_target_add_check_list_remove(repo, target_db, pg):
    t = api.add_target("db1", target_db)
    assert t.name == "db1" and t.password_source == "none"
    assert [x.name for x in api.list_targets()] == ["db1"]
    res = api.check_target("db1")
    caps = res.capabilities
    assert caps.version_num == pg.version_num
    assert caps.pgss_created and caps.pgss_loaded
    assert caps.has_view("pg_stat_io") == (pg.major >= 16)
    assert caps.has_view("pg_stat_checkpointer") == (pg.major >= 17)
    names = {c.name: c for c in caps.checks}
    assert names["pg_stat_statements extension"].status == "ok"
    if pg.major < 17:
        assert names["view pg_stat_checkpointer"].status == "info"

    # in this process: real `opscore target` processes are in the password test below
    out = invoke_cli("target", "check", "db1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["capabilities"]["version_num"] == pg.version_num

    with pytest.raises(InvalidInput):
        api.add_target("db1", target_db)
    api.remove_target("db1")
    assert api.list_targets() == []
    with pytest.raises(UnknownTarget):
        api.remove_target("db1")


def test_monitoring_session_is_named_readonly_and_bounded(target_db):
    with connection.monitoring_session(target_db) as conn:
        row = conn.execute(
            "SELECT current_setting('application_name'), current_setting('statement_timeout'), "
            "current_setting('lock_timeout'), current_setting('default_transaction_read_only')"
        ).fetchone()
        assert row[0] == "opscore"
        assert row[1] != "0" and row[2] != "0" and row[3] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE should_not_exist (id int)")


@pytest.mark.slow
def test_password_never_stored_or_printed(repo, target_db, pg, opscore_env):
    secret = "S3cr3t-pw-XYZZY"
    with pg.admin() as conn:
        conn.execute("DROP ROLE IF EXISTS opscore_pwuser")
        conn.execute(f"CREATE ROLE opscore_pwuser LOGIN PASSWORD '{secret}' IN ROLE pg_monitor")
        port = conn.execute("SHOW port").fetchone()[0]
    dbname = conninfo_to_dict(target_db)["dbname"]
    dsn = f"postgresql://opscore_pwuser:{secret}@127.0.0.1:{port}/{dbname}"
    try:
        res = run_cli("target", "add", "pw", dsn)
        assert res.returncode == 0, res.stderr
        assert secret not in res.stdout + res.stderr
        stored = repo.execute("SELECT t::text FROM opscore.targets t").fetchall()
        assert stored and all(secret not in r[0] for r in stored)
        passfile = os.path.join(opscore_env["OPSCORE_HOME"], "pgpass")
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        for args, run in (  # the checks connect: real `opscore` processes
            (["target", "list"], invoke_cli),
            (["target", "list", "--json"], invoke_cli),
            (["target", "check", "pw"], run_cli),
            (["target", "check", "pw", "--json"], run_cli),
        ):
            out = run(*args)
            assert out.returncode == 0, out.stderr
            assert secret not in out.stdout + out.stderr
        # the check really connected as the password user, through the passfile
        assert json.loads(out.stdout)["capabilities"]["user"] == "opscore_pwuser"

        # password from an environment variable
        nopw = make_conninfo(dsn, password=None)
        env_var = "OPSCORE_TEST_TARGET_PW"
        res = run_cli(
            "target", "add", "pwenv", nopw, "--password-env", env_var, env={env_var: secret}
        )
        assert res.returncode == 0, res.stderr
        t = api.get_target("pwenv")
        assert t.password_source == f"env:{env_var}" and secret not in t.dsn
        os.environ.pop(env_var, None)
        assert run_cli("target", "check", "pwenv").returncode != 0

        # a wrong password: clear message, nothing stored, password not echoed
        bad = f"postgresql://opscore_pwuser:wrong-{secret}@127.0.0.1:{port}/{dbname}"
        res = run_cli("target", "add", "pwbad", bad)
        assert res.returncode != 0
        assert "Authentication failed" in res.stderr and secret not in res.stderr
        assert "pwbad" not in [x.name for x in api.list_targets()]
    finally:
        for name in ("pw", "pwenv"):
            try:
                api.remove_target(name)
            except UnknownTarget:
                pass
        with pg.admin() as conn:
            conn.execute("DROP ROLE IF EXISTS opscore_pwuser")


@pytest.mark.slow
def test_bad_input_messages(repo):
    with pytest.raises(InvalidDSN):
        connection.parse_dsn("host=== =")
    cases = [
        (["target", "add", "x", "host=== ="], "cannot be parsed"),
        (["target", "add", "x", "postgresql://u@127.0.0.1:1/db"], "Cannot connect"),
        (["target", "add", "bad name!", "dbname=x"], "not a valid target name"),
        (["target", "check", "nope"], "no target named 'nope'"),
        (["target", "remove", "nope"], "no target named 'nope'"),
    ]
    for args, expected in cases:
        res = run_cli(*args)
        assert res.returncode != 0, args
        assert expected in " ".join(res.stderr.split()), (args, res.stderr)
        assert "Traceback" not in res.stderr
        assert "What to do" in res.stderr
    assert api.list_targets() == []  # nothing half-written


def test_help_has_examples():
    for i, args in enumerate(
        (["target", "add", "--help"], ["db", "start", "--help"], ["init", "--help"])
    ):
        res = run_cli(*args) if i == 0 else invoke_cli(*args)  # one real `opscore` process
        assert res.returncode == 0 and "Examples" in res.stdout
