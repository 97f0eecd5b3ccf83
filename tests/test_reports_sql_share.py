"""A statement's share of DB time when one query id has several rows (two users run the same
statement): each row gets its own user's ASH DB time, the rows add up to at most 100 %, and
the Performance Hub and the AWR report give the same figure per row."""

from __future__ import annotations

import threading
import uuid

import pandas as pd
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ops_core import api
from ops_core.analysis.sql_share import db_time_shares

from .app_workload import fresh_repository

RUN = uuid.uuid4().hex[:8]
PASSWORD = f"share-{RUN}-pw"
SQL = "SELECT pg_sleep(%s) AS share_two_users"


def _stmts(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["queryid", "datname", "username", "total_exec_time"])


def test_shares_follow_the_user_and_never_count_a_second_twice():
    st = _stmts(
        [(7, "d", "a", 300.0), (7, "d", "b", 100.0), (8, "d", "a", 50.0), (None, "d", "a", 1)]
    )
    ash = pd.DataFrame(
        {"query_id": [7, 7, 8, 7], "datname": ["d"] * 4, "usename": ["a", "b", "a", "c"],
         "db_time_s": [3.0, 1.0, 2.0, 4.0]}
    )  # fmt: skip
    shares = db_time_shares(st, ash, 10.0)
    # own user's time, plus user c's (no row of its own: SET ROLE) split by execution time
    assert shares[:3] == pytest.approx([30.0 + 30.0, 10.0 + 10.0, 20.0])
    assert shares[3] is None
    assert sum(s for s in shares if s is not None) == pytest.approx(100.0)
    # by query id alone (no user in the ASH frame): split over the rows by execution time
    by_q = db_time_shares(st, ash.groupby("query_id", as_index=False)["db_time_s"].sum(), 10.0)
    assert by_q[:2] == pytest.approx([60.0, 20.0])
    assert db_time_shares(st, ash, 0.0) == [None] * 4


@pytest.fixture(scope="module")
def two_users(pg, opscore_env):
    fresh_repository()
    dsn = pg.create_database("share")
    roles = [f"share_a_{RUN}", f"share_b_{RUN}"]
    with pg.admin() as c:
        port = c.execute("SHOW port").fetchone()[0]
        for r in roles:
            c.execute(f"CREATE ROLE {r} LOGIN PASSWORD '{PASSWORD}'")
    target = f"share_{RUN}"
    try:
        api.add_target(target, dsn)
        s1 = api.take_snapshot(target)
        sampler = api.ash_sampler(target, interval_s=0.1, flush_interval_s=0.5)
        sampler.start()

        def work(role: str, n: int) -> None:
            login = make_conninfo(dsn, host="127.0.0.1", port=port, user=role, password=PASSWORD)
            with psycopg.connect(login, autocommit=True) as c:
                for _ in range(n):
                    c.execute(SQL, (0.4,))

        threads = [threading.Thread(target=work, args=a) for a in ((roles[0], 4), (roles[1], 2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sampler.stop()
        sampler.close()
        s2 = api.take_snapshot(target)
        yield target, roles, s1, s2
    finally:
        pg.drop_database(dsn)
        with pg.admin() as c:
            for r in roles:
                c.execute(f"DROP ROLE IF EXISTS {r}")


@pytest.mark.slow
def test_two_users_of_one_statement_share_its_db_time(two_users):
    target, roles, s1, s2 = two_users
    hub = api.top_statements(target, s1.snapshot_id, s2.snapshot_id, limit=500)
    mine = hub[hub["query"].str.contains("share_two_users") & hub["username"].isin(roles)]
    assert sorted(mine["username"]) == sorted(roles)
    assert mine["queryid"].nunique() == 1  # one query id, one row per user
    assert hub["pct_db_time"].dropna().sum() <= 100.0 + 1e-6
    qid = int(mine["queryid"].iloc[0])
    ash = api.ash_db_time(target, s1.captured_at, s2.captured_at, by=["query_id", "usename"])
    total = hub.attrs["db_time_s"]
    per_user = {
        u: float(v) / total * 100
        for q, u, v in zip(ash["query_id"], ash["usename"], ash["db_time_s"], strict=True)
        if pd.notna(q) and int(q) == qid
    }
    assert all(per_user.get(r, 0) > 0 for r in roles), per_user
    whole = sum(per_user.values())
    for row in mine.itertuples():
        # the row's own user's share, not the whole query id's (given to each row before)
        assert row.pct_db_time == pytest.approx(per_user[row.username], abs=0.01)
        assert row.pct_db_time < whole
    # the AWR report gives each row the same share as the Performance Hub
    r = api.awr_report(target, s1.snapshot_id, s2.snapshot_id, top=500)
    awr = r.top_sql["elapsed"]
    awr = awr[awr["queryid"] == qid].set_index("username")["pct_db_time"]
    for row in mine.itertuples():
        assert float(awr[row.username]) == pytest.approx(row.pct_db_time, abs=0.01)
