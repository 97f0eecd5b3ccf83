"""Resource groups on a real server: created as a group role with limits, given to members,
really enforced at the member's login (a statement over statement_timeout is cancelled),
journaled with the way back, and changed/removed cleanly."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ops_core import api
from ops_core.errors import InvalidInput

RUN = uuid.uuid4().hex[:8]
PASSWORD = f"rg-{RUN}-pw"


def _login_dsn(pg, target_dsn: str, role: str) -> str:
    with pg.admin() as c:
        port = c.execute("SHOW port").fetchone()[0]
    return make_conninfo(target_dsn, host="127.0.0.1", port=port, user=role, password=PASSWORD)


@pytest.fixture
def members(pg, repo, target_db):
    names = [f"rg_m1_{RUN}", f"rg_m2_{RUN}"]
    with pg.admin() as c:
        for n in names:
            c.execute(f"CREATE ROLE {n} LOGIN PASSWORD '{PASSWORD}'")
    api.add_target("rg", target_db)
    try:
        yield names
    finally:
        with pg.admin() as c:
            for g in c.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"rg_g%_{RUN}",)
            ).fetchall():
                c.execute(f"DROP ROLE IF EXISTS {g[0]}")
            for n in names:
                c.execute(f"DROP ROLE IF EXISTS {n}")


def _settings(pg, role: str) -> dict[str, str]:
    with pg.admin() as c:
        row = c.execute(
            "SELECT s.setconfig, r.rolconnlimit FROM pg_roles r LEFT JOIN pg_db_role_setting s "
            "ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname = %s",
            (role,),
        ).fetchone()
    out = dict(x.split("=", 1) for x in (row[0] or []))
    out["connlimit"] = str(row[1])
    return out


def test_group_limits_are_enforced_and_reversible(pg, target_db, members):
    m1, m2 = members
    group = f"rg_g1_{RUN}"
    g = api.create_resource_group(
        group,
        target="rg",
        description="reporting users",
        connection_limit=3,
        statement_timeout="300ms",
        work_mem="8MB",
        members=[m1],
    )
    assert g.outcome == "done" and g.members == [m1]
    assert g.limits == {"statement_timeout": "300ms", "work_mem": "8MB"}
    assert g.connection_limit == 3 and g.description == "reporting users" and not g.drift
    assert _settings(pg, m1) == {"statement_timeout": "300ms", "work_mem": "8MB", "connlimit": "3"}
    # enforced by PostgreSQL at the member's login: a statement over the timeout is cancelled
    with psycopg.connect(_login_dsn(pg, target_db, m1), autocommit=True) as c:
        assert c.execute("SHOW work_mem").fetchone()[0] == "8MB"
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(2)")
    # a non-member is not limited
    with psycopg.connect(_login_dsn(pg, target_db, m2), autocommit=True) as c:
        assert c.execute("SHOW statement_timeout").fetchone()[0] != "300ms"
    # journaled, with the way back
    entry = api.get_action(g.action_id)
    assert entry.feature == "resource_group" and entry.outcome == "done"
    assert "DROP ROLE" in (entry.undo_sql or "") and m1 in (entry.undo_sql or "")

    # update: a new timeout, m2 joins, work_mem cleared
    g = api.update_resource_group(
        group,
        target="rg",
        statement_timeout="5s",
        clear=["work_mem"],
        add_members=[m2],
    )
    assert sorted(g.members) == [m1, m2] and g.limits == {"statement_timeout": "5s"}
    for m in (m1, m2):
        assert _settings(pg, m) == {"statement_timeout": "5s", "connlimit": "3"}
    assert not g.drift
    # a hand change shows as drift
    with pg.admin() as c:
        c.execute(f"ALTER ROLE {m2} SET statement_timeout = '1min'")
    assert api.get_resource_group(group, target="rg").drift == {m2: ["statement_timeout"]}

    stats = api.resource_group_stats(group, target="rg", since="10m")
    with psycopg.connect(_login_dsn(pg, target_db, m1), autocommit=True):
        live = api.resource_group_stats(group, target="rg", since="10m")
    assert {u.role for u in live.members} == {m1, m2}
    assert live.sessions == stats.sessions + 1
    assert any("each member role" in n for n in live.notes)

    # remove m1: its limits are reset
    api.update_resource_group(group, target="rg", remove_members=[m1])
    assert _settings(pg, m1) == {"connlimit": "-1"}
    # delete: m2's limits go, the role goes, the journal keeps the way back
    gone = api.delete_resource_group(group, target="rg")
    assert gone.outcome == "done" and gone.members == [m2]
    assert _settings(pg, m2) == {"connlimit": "-1"}
    assert not [x for x in api.list_resource_groups("rg") if x.name == group]
    assert "CREATE ROLE" in (api.get_action(gone.action_id).undo_sql or "")


def test_group_bad_input_changes_nothing(pg, members):
    m1, _ = members
    group = f"rg_g2_{RUN}"
    with pytest.raises(InvalidInput, match="statement_timeout"):
        api.create_resource_group(group, target="rg", statement_timeout="soon")
    with pytest.raises(InvalidInput, match="No role"):
        api.create_resource_group(group, target="rg", members=[f"nobody_{RUN}"])
    with pytest.raises(InvalidInput, match="not a role name"):
        api.create_resource_group("Bad-Name", target="rg")
    with pg.admin() as c:
        assert not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone()
    assert _settings(pg, m1) == {"connlimit": "-1"}
    with pytest.raises(InvalidInput, match="no resource group"):
        api.get_resource_group(group, target="rg")
    # under report_only nothing runs, the journal says what would have
    api.set_action_policy("rg", "resource_group", "report_only")
    g = api.create_resource_group(group, target="rg", statement_timeout="1s", members=[m1])
    assert g.outcome == "reported"
    with pg.admin() as c:
        assert not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone()
    assert "CREATE ROLE" in api.get_action(g.action_id).sql
