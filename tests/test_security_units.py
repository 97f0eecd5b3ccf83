"""Secrets scrubbing, the pgpass writer, the scrubbing migration and the ASH sampler lease."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest

from ops_core import api, repository
from ops_core.collectors.scrub import REDACTED, scrub
from ops_core.errors import InvalidInput
from ops_core.repository.ash_lease import SamplerBusy
from ops_core.targets import pgpass

SECRET = "Sw0rdf1sh"

# (statement, must keep) -- every case holds SECRET, which must go
CASES = [
    (f"ALTER ROLE bob WITH ENCRYPTED PASSWORD '{SECRET}' VALID UNTIL 'infinity'", "VALID UNTIL"),
    (f"CREATE ROLE app LOGIN PASSWORD '{SECRET}'", "CREATE ROLE app LOGIN PASSWORD"),
    (f"create user u2 password 'a''{SECRET}'", "create user u2"),
    (f"ALTER USER u3 PASSWORD E'x\\'{SECRET}'", "ALTER USER u3"),
    (f"alter role é password $${SECRET}$$", "alter role é"),
    (f"CREATE ROLE a PASSWORD /* c */ '{SECRET}'", "CREATE ROLE a"),
    (f"CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'u', password '{SECRET}')", "'u'"),
    (f'create user mapping for bob server s options ("password" $q${SECRET}$q$)', "mapping"),
    (f"ALTER USER MAPPING FOR bob SERVER s OPTIONS (SET password 'n€{SECRET}')", "SET password"),
    (f"SELECT dblink_connect('c', 'host=h password={SECRET} dbname=x')", "dbname=x"),
    (f"select dblink_connect('c', E'host=x password=a\\'{SECRET} user=u')", "user=u"),
    (f"SELECT dblink('dbname=x password=''a {SECRET}''', 'select 1')", "'select 1'"),
    (
        f"CREATE SUBSCRIPTION s CONNECTION 'host=h password={SECRET} dbname=d' PUBLICATION p",
        "PUBLICATION p",
    ),
    (f"ALTER SUBSCRIPTION s CONNECTION 'sslpassword={SECRET} host=h'", "host=h"),
    (f"select * from dblink('postgresql://u:{SECRET}@h/db', 'select 1')", "@h/db"),
    (f"alter system set primary_conninfo = 'host=a password={SECRET}'", "primary_conninfo"),
    (f"select f(password => '{SECRET}')", "select f("),
    # truncated texts (ASH keeps the first N characters): the scanner refuses them
    (f"CREATE ROLE x LOGIN PASSWORD '{SECRET}", "CREATE ROLE x"),
    (f"select dblink_connect('host=x password={SECRET} dbname=", "dblink_connect"),
]


@pytest.mark.parametrize(("text", "kept"), CASES)
def test_scrub_removes_secret(text, kept):
    out = scrub(text)
    assert SECRET not in out
    assert REDACTED in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    [
        "select 1",
        "SELECT * FROM users WHERE password_hash = $1",
        "CREATE ROLE a PASSWORD $1",
        "select 'abc",
        None,
        "",
    ],
)
def test_scrub_leaves_harmless_text(text):
    assert scrub(text) == text


def test_pgpass_escapes_replaces_and_removes(tmp_path: Path):
    f = tmp_path / "pgpass"
    params = {"host": "db1", "port": "5433", "dbname": "app", "user": "mon"}
    pgpass.store(f, "prod", params, "old:pw\\x")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    # any database of the server (snapshots read them all), escapes undone by the reader
    assert pgpass.lookup(f, "db1", "5433", "other_db", "mon") == "old:pw\\x"
    pgpass.store(f, "other", {"host": "db2", "user": "x"}, "keep")
    pgpass.store(f, "prod", params, "new:pw")  # a changed password takes effect
    assert pgpass.lookup(f, "db1", "5433", "app", "mon") == "new:pw"
    assert "old" not in f.read_text()
    assert pgpass.remove(f, "prod")
    assert pgpass.lookup(f, "db1", "5433", "app", "mon") is None
    assert pgpass.lookup(f, "db2", "5432", "app", "x") == "keep"
    with pytest.raises(InvalidInput):
        pgpass.store(f, "bad", params, "a\nb")
    assert pgpass.lookup(f, "db2", "5432", "app", "x") == "keep"


def test_pgpass_replaces_older_unmarked_line(tmp_path: Path):
    f = tmp_path / "pgpass"
    params = {"host": "db1", "port": "5432", "dbname": "app", "user": "mon"}
    f.write_text("db1:5432:app:mon:stale\n")
    pgpass.store(f, "prod", params, "n")
    assert "stale" not in f.read_text()
    assert pgpass.lookup(f, "db1", "5432", "app", "mon") == "n"
    # a line an older opscore wrote for a target goes when the target is removed
    f.write_text("db1:5432:app:mon:old\nother:5432:app:mon:keep\n")
    assert pgpass.remove(f, "prod", params)
    assert f.read_text() == "other:5432:app:mon:keep\n"


def test_target_password_reaches_every_database_and_leaves_on_remove(pg, repo, target_db):
    if pg.embedded is None:
        pytest.skip("needs TCP with password authentication (embedded server)")
    password = "pa:ss\\word"
    role = "sec_pw_role"
    with pg.admin() as c:
        c.execute(f"DROP ROLE IF EXISTS {role}")
        c.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password.replace(chr(39), '')}'")
    params = psycopg.conninfo.conninfo_to_dict(pg.admin_dsn)
    port = str(params["port"])
    dsn = psycopg.conninfo.make_conninfo(
        target_db, host="127.0.0.1", port=port, user=role, password=password
    )
    try:
        api.add_target("pwt", dsn, verify=False)
        t = api.get_target("pwt")
        t_db = psycopg.conninfo.conninfo_to_dict(target_db)["dbname"]
        assert password not in t.dsn
        passfile = Path(t.password_source.split(":", 1)[1])
        assert password not in passfile.read_text()  # escaped form only
        other = psycopg.conninfo.make_conninfo(api.target_dsn(t), dbname="postgres")
        with api.target_session(t) as conn:
            assert conn.execute("select 1").fetchone()[0] == 1
        with psycopg.connect(other) as conn:  # another database of the same server
            assert conn.execute("select current_database()").fetchone()[0] == "postgres"
        # a snapshot reads every database of the server: none misses the password
        info = api.take_snapshot("pwt")
        errors = {k: v for k, v in info.sources.items() if v.startswith("error")}
        assert not any("password" in v for v in errors.values()), errors
        assert any(k.startswith("tables@") and k != f"tables@{t_db}" for k in info.sources)
        api.remove_target("pwt")
        assert "pwt" not in passfile.read_text()
        assert pgpass.lookup(passfile, "127.0.0.1", port, "postgres", role) is None
    finally:
        with pg.admin() as c:
            c.execute(f"DROP ROLE IF EXISTS {role}")


def test_pgpass_upgrade_of_older_lines(tmp_path: Path):
    f = tmp_path / "pgpass"
    params = {"host": "db1", "port": "5432", "dbname": "app", "user": "mon"}
    f.write_text("db1:5432:app:mon:p\\:w\nunrelated:1:x:y:z\n")
    assert pgpass.upgrade_legacy(f, [("prod", params), ("other", {"host": "nope"})]) == ["prod"]
    assert pgpass.lookup(f, "db1", "5432", "another_db", "mon") == "p:w"
    assert pgpass.lookup(f, "unrelated", "1", "x", "y") == "z"
    assert pgpass.upgrade_legacy(f, [("prod", params)]) == []  # once


def test_target_add_swapped_arguments_never_echo_dsn(repo):
    dsn = f"postgresql://mon:{SECRET}@db1/app"
    with pytest.raises(InvalidInput) as info:
        api.add_target(dsn, "prod", verify=False)
    assert SECRET not in str(info.value)


def test_migration_scrubs_existing_texts(repo, target_db):
    t = api.add_target("old", target_db, verify=False)
    repo.execute(
        "INSERT INTO opscore.statements (target_id, queryid, dbid, userid, toplevel, query) "
        "VALUES (%s, 1, 1, 1, true, %s), (%s, 2, 1, 1, true, 'select 1')",
        (t.target_id, f"ALTER ROLE x PASSWORD '{SECRET}'", t.target_id),
    )
    repo.execute(
        "INSERT INTO opscore.ash_query_texts (target_id, text_hash, query_text, first_seen, "
        "last_seen) VALUES (%s, 7, %s, now(), now())",
        (t.target_id, f"select dblink_connect('host=h password={SECRET}')"),
    )
    sql = (Path(repository.__file__).parent / "migrations" / "0009_security.sql").read_text()
    body = sql.split("DO $do$", 1)[1].split("$do$;", 1)[0]
    repo.execute("DO $do$" + body + "$do$")  # the data part of the migration, re-run
    dump = repo.execute(
        "SELECT string_agg(query, ' ') FROM opscore.statements WHERE target_id = %s",
        (t.target_id,),
    ).fetchone()[0]
    dump += repo.execute(
        "SELECT string_agg(query_text, ' ') FROM opscore.ash_query_texts"
    ).fetchone()[0]
    assert SECRET not in dump
    assert "<redacted>" in dump and "select 1" in dump
    for text, _ in CASES:
        out = repo.execute("SELECT opscore.scrub_secrets(%s::text)", (text,)).fetchone()[0]
        assert SECRET not in out, text


def test_second_sampler_refuses_to_start(repo, target_db):
    api.add_target("leased", target_db, verify=False)
    first = api.ash_sampler("leased", interval_s=0.5)
    first.start()
    try:
        second = api.ash_sampler("leased", interval_s=0.5)
        with pytest.raises(SamplerBusy) as info:
            second.run(duration_s=1)
        assert "already sampled by" in info.value.message
        assert "pid" in info.value.message
        second.close()
        # the CLI says the same, exit code 1, no traceback
        from typer.testing import CliRunner

        from ops_core.cli import app

        res = CliRunner().invoke(app, ["ash", "run", "--target", "leased", "--duration", "1"])
        assert res.exit_code == 1
        assert "already sampled by" in res.output and "Traceback" not in res.output
    finally:
        first.stop()
    # the lease goes with the first sampler: a new one starts
    third = api.ash_sampler("leased", interval_s=0.5)
    stats = third.run(duration_s=1)
    third.close()
    assert stats.samples >= 1


def test_live_sessions_are_scrubbed(repo, target_db):
    import threading
    import time

    api.add_target("live", target_db, verify=False)

    def run() -> None:
        with psycopg.connect(target_db, autocommit=True, application_name="sec-live") as c:
            c.execute(f"SELECT pg_sleep(3), 'host=h password={SECRET}'")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        texts: list[str] = []
        while time.monotonic() < deadline:
            df = api.live_sessions("live")
            pairs = zip(df["query"], df["application_name"], strict=True)
            texts = [q for q, a in pairs if a == "sec-live"]
            if texts and "pg_sleep" in texts[0]:
                break
            time.sleep(0.1)
        assert texts and "pg_sleep" in texts[0]
        assert SECRET not in texts[0] and REDACTED in texts[0]
    finally:
        t.join(10)


def test_embedded_server_password_survives_targets_on_the_same_host(tmp_path: Path):
    """The embedded server's line was an unmarked ``127.0.0.1:*:*:postgres`` line: a target on
    127.0.0.1 as postgres without a port dropped it as an "older opscore line" (the suite lost
    the embedded password mid-run). Now it is its own block naming its port, kept first."""
    f = tmp_path / "pgpass"
    f.write_text("127.0.0.1:*:*:postgres:legacy\n")  # what an older embedded server wrote
    emb = {"host": "127.0.0.1", "port": "54321", "user": "postgres"}
    pgpass.store(f, pgpass.EMBEDDED, emb, "emb", replaces=("127.0.0.1", "*", "postgres"))
    assert "legacy" not in f.read_text()
    pgpass.store(f, "local", {"host": "127.0.0.1", "user": "postgres"}, "tpw")  # no port
    pgpass.store(f, "other", {"host": "127.0.0.1", "port": "5432", "user": "postgres"}, "o")
    assert pgpass.block_password(f, pgpass.EMBEDDED) == "emb"
    assert pgpass.lookup(f, "127.0.0.1", "54321", "any", "postgres") == "emb"  # not shadowed
    assert pgpass.lookup(f, "127.0.0.1", "5432", "any", "postgres") == "o"  # nor shadowing
    assert pgpass.remove(f, "local") and pgpass.remove(f, "other")
    assert pgpass.block_password(f, pgpass.EMBEDDED) == "emb"
