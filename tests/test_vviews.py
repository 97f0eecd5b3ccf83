"""V$ views on a real server: each answers with Oracle's column names from live catalog
views, shows a session and a transaction the test opened, and says where PostgreSQL has no
equivalent instead of inventing figures."""

from __future__ import annotations

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput
from tests.helpers import run_cli


@pytest.fixture
def vt(repo, target_db):
    api.add_target("vt", target_db)
    return target_db


def test_v_views_show_live_sessions_and_transactions(pg, vt):
    with psycopg.connect(vt, application_name="v-probe") as c:
        c.execute("CREATE TEMP TABLE v_x (a int)")
        c.execute("INSERT INTO v_x VALUES (1)")  # an open write transaction
        pid = c.info.backend_pid
        s = api.v_session("vt")
        assert s.view == "V$SESSION" and {"SID", "SERIAL#", "STATUS", "EVENT"} <= set(s.rows)
        me = s.rows[s.rows["SID"] == pid].iloc[0]
        assert me["PROGRAM"] == "v-probe" and me["STATUS"] == "INACTIVE" and me["TYPE"] == "USER"
        tx = api.v_transaction("vt").rows
        mine = tx[tx["SID"] == pid].iloc[0]
        assert mine["KIND"] == "WRITE" and mine["XID"] and mine["SECONDS"] >= 0
        stat = api.v_sesstat("vt", pid=pid)
        names = set(stat.rows[stat.rows["SID"] == pid]["NAME"])
        assert "session connect time s" in names
        if pg.major >= 18:
            assert {"physical reads", "redo size"} <= names and not stat.notes
        else:  # said so, not invented
            assert "physical reads" not in names and "PostgreSQL 18" in stat.notes[0]
        c.rollback()
    sys = api.v_sysstat("vt").rows
    commits = sys[sys["NAME"] == "user commits"]["VALUE"].iloc[0]
    assert commits > 0 and {"Redo", "Checkpoint", "Cache"} <= set(sys["CLASS"])
    sql = api.v_sql("vt", limit=5)
    assert len(sql.rows) >= 1 and {"SQL_ID", "EXECUTIONS", "BUFFER_GETS"} <= set(sql.rows)
    p = api.v_parameter("vt", "work_mem").rows
    assert list(p["NAME"]) == ["work_mem"] and p["ISSES_MODIFIABLE"].iloc[0]
    ev = api.v_system_event("vt", since="5m")
    assert "no cumulative wait counters" in ev.notes[0]
    assert api.v_view("V$LOCK", "vt").view == "V$LOCK"
    with pytest.raises(InvalidInput, match="V\\$ view"):
        api.v_view("v$bogus", "vt")


def test_v_cli_json(vt):
    import json

    r = run_cli("v", "parameter", "--target", "vt", "--name", "max_connections", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["view"] == "V$PARAMETER" and out["rows"][0]["NAME"] == "max_connections"
