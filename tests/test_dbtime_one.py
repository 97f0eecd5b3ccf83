"""One DB time (issue 22, points 4 and 5): for the same range of a real workload on the test
server, the AWR report, ADDM and the Performance Hub's api give the same DB time and the same
share for a statement; background processes working in the range (a checkpoint writing the
buffers a bulk load dirtied) are reported as background activity, never as DB time; no
percentage of DB time exceeds 100 %."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_core import api, repository
from ops_core.config import reset_settings_cache
from ops_core.model.waits import FOREGROUND_BACKEND_TYPES

TARGET = "dbtone"
SLEEPS = 4
SLEEP_S = 0.6


def _sleeper(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, application_name="dbt-sleeper") as c:
        for _ in range(SLEEPS):
            c.execute("SELECT pg_sleep(%s) AS dbt_sleeper", (SLEEP_S,))


def _cpu(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, application_name="dbt-cpu") as c:
        for _ in range(3):
            c.execute("SELECT count(*) AS dbt_cpu FROM generate_series(1, 1500000) g")


@pytest.fixture(scope="module")
def run(opscore_env, pg):
    conn = repository.connect()
    conn.execute("DROP SCHEMA IF EXISTS opscore CASCADE")
    repository.migrate(conn)
    conn.close()
    dsn = pg.create_database("dbtone")
    db = conninfo_to_dict(dsn)["dbname"]
    mp = pytest.MonkeyPatch()
    mp.setenv("OPSCORE_SNAPSHOT_DATABASES", json.dumps([db]))
    reset_settings_cache()
    stop = threading.Event()
    sampler = threading.Thread(
        target=api.run_ash,
        kwargs={"target": TARGET, "interval_s": 0.1, "stop": stop, "flush_interval_s": 0.5},
        daemon=True,
    )
    try:
        api.add_target(TARGET, dsn)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE bulk (id int, pad text)")
        s1 = api.take_snapshot(TARGET)
        sampler.start()
        work = [threading.Thread(target=f, args=(dsn,)) for f in (_sleeper, _cpu)]
        for w in work:
            w.start()
        # background work: checkpoints writing what a bulk load dirtied, until ASH has sampled
        # a background process working (poll, generous deadline)
        deadline = time.monotonic() + 120
        seen = False
        with psycopg.connect(dsn, autocommit=True, application_name="dbt-bulk") as c:
            while not seen and time.monotonic() < deadline:
                c.execute(
                    "INSERT INTO bulk SELECT g, repeat('x', 400) FROM generate_series(1, 60000) g"
                )
                c.execute("CHECKPOINT")
                bg = api.ash_background(TARGET, s1.captured_at, datetime.now(UTC))
                seen = not bg.empty
        for w in work:
            w.join()
        time.sleep(0.3)  # a last sample after the work, then the sampler's final flush
        stop.set()
        sampler.join(timeout=60)
        assert seen, "no background process was sampled working within 120 s"
        s2 = api.take_snapshot(TARGET)
        yield {"begin": s1, "end": s2, "db": db}
    finally:
        stop.set()
        mp.undo()
        reset_settings_cache()
        pg.drop_database(dsn)


def test_one_db_time_across_awr_addm_and_app(run):
    b, e = run["begin"], run["end"]
    r = api.awr_report(TARGET, b.snapshot_id, e.snapshot_id, top=50)
    a = r.addm
    assert a is not None and a.db_time_source == "ash"
    hub = api.top_statements(TARGET, b.snapshot_id, e.snapshot_id, limit=100)
    ash = api.ash_db_time(TARGET, b.captured_at, e.captured_at, by=[])
    dbt = float(ash["db_time_s"].iloc[0])
    # the sleeper alone is SLEEPS * SLEEP_S of DB time: the figure is real, not zero
    assert dbt >= 0.7 * SLEEPS * SLEEP_S
    assert r.header["db_time_s"] == pytest.approx(dbt, abs=0.01)
    assert r.header["db_time_source"] == "ASH"
    assert a.db_time_s == pytest.approx(dbt, abs=0.01)
    assert hub.attrs["db_time_s"] == pytest.approx(dbt, abs=0.01)
    lp = api.load_profile(TARGET, b.snapshot_id, e.snapshot_id).set_index("metric")
    assert lp.loc["DB time (s, ASH)", "total"] == pytest.approx(dbt, abs=0.01)  # hub headline
    # one statement's share is the same figure in the AWR, the app and ADDM
    el = r.top_sql["elapsed"]
    # this run's row: on a shared server the same statement may run in another database at
    # the same time (a row per query id, database and user, each with its own share)
    awr_row = el[el["query"].str.contains("dbt_sleeper") & (el["datname"] == run["db"])].iloc[0]
    qid = int(awr_row["queryid"])
    rows = hub[hub["queryid"] == qid]
    mine = (rows["datname"] == run["db"]) & (rows["username"] == awr_row["username"])
    hub_pct = float(rows.loc[mine, "pct_db_time"].iloc[0])
    addm_pct = next(s["pct"] for s in a.breakdown["sql"] if s["queryid"] == qid)
    assert hub_pct > 0
    assert float(awr_row["pct_db_time"]) == pytest.approx(hub_pct, abs=0.01)
    # ADDM ranks by query id: its share is that of all the query id's rows
    assert addm_pct == pytest.approx(float(rows["pct_db_time"].sum()), abs=0.1)
    # SQL time is kept as a labelled cross-check, not a share of DB time
    assert "pct_sql_time" in hub.columns
    assert any(c.startswith("cross-check: SQL time") for c in r.time_model["component"])


def test_background_work_is_not_db_time(run):
    b, e = run["begin"], run["end"]
    by_type = api.ash_db_time(TARGET, b.captured_at, e.captured_at, by=["backend_type"])
    with_db = by_type[by_type["db_time_s"] > 0]
    assert set(with_db["backend_type"].dropna()) <= set(FOREGROUND_BACKEND_TYPES)
    bg = api.ash_background(TARGET, b.captured_at, e.captured_at)
    assert not bg.empty and bg.attrs["time_s"] > 0
    assert not set(bg["backend_type"]) & set(FOREGROUND_BACKEND_TYPES)
    # the background processes' sampled time is all outside DB time
    bg_types = set(bg["backend_type"])
    in_db = by_type[by_type["backend_type"].isin(bg_types)]["db_time_s"].sum()
    assert in_db == 0
    # and each report has it in its own section
    r = api.awr_report(TARGET, b.snapshot_id, e.snapshot_id)
    assert r.background is not None and set(r.background["backend_type"]) == bg_types
    assert r.header["background_s"] == pytest.approx(bg.attrs["time_s"], abs=0.01)
    assert r.addm.breakdown["background"]
    ar = api.ash_report(TARGET, b.captured_at, e.captured_at)
    assert ar.background is not None and set(ar.background["backend_type"]) == bg_types
    assert ar.header["db_time_s"] == pytest.approx(r.header["db_time_s"], abs=0.01)


def test_no_share_of_db_time_exceeds_100(run):
    b, e = run["begin"], run["end"]
    r = api.awr_report(TARGET, b.snapshot_id, e.snapshot_id, top=50)
    tm = r.time_model["pct_of_db_time"].dropna()
    assert not tm.empty and tm.max() <= 100.0 + 1e-9
    for df in r.top_sql.values():
        shares = df["pct_db_time"].dropna()
        assert shares.max() <= 100.0 + 1e-9 if len(shares) else True
        assert shares.sum() <= 100.0 + 1e-6
    hub = api.top_statements(TARGET, b.snapshot_id, e.snapshot_id, limit=100)
    assert hub["pct_db_time"].dropna().sum() <= 100.0 + 1e-6
    for f in r.addm.findings:
        assert 0 <= f.impact_pct <= 100.0 + 1e-9
    for key in ("wait_class", "event", "sql"):
        assert sum(x["pct"] for x in r.addm.breakdown[key]) <= 100.0 + 0.5  # rounded shares
