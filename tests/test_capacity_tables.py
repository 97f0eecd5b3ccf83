"""Storage growth per table against the filesystem's free space (issue 15), on a real server:
a table filled between sized snapshots ranks first with the size the server reports, a table
that does not change carries its size forward, and bad input is refused with the way out."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import sql

from ops_core import api
from ops_core.config import reset_settings_cache
from ops_core.errors import InvalidInput

from .helpers import invoke_cli

GROWS = "OrderLines"  # mixed case: quoted everywhere it is read back


@pytest.fixture
def sized_every_snapshot(monkeypatch):
    monkeypatch.setenv("OPSCORE_SNAPSHOT_SIZES_INTERVAL_MINUTES", "0")
    reset_settings_cache()
    yield
    monkeypatch.delenv("OPSCORE_SNAPSHOT_SIZES_INTERVAL_MINUTES")
    reset_settings_cache()


def _paced_snapshot(target: str, at: float) -> None:
    """A snapshot at monotonic time ``at`` (the capture cadence, not a wait for a condition):
    forecasts resample a history onto its median step, at least a second."""
    delay = at - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    api.take_snapshot(target)


def test_fastest_growing_table_against_free_space(repo, target_db, sized_every_snapshot):
    grows = sql.Identifier("public", GROWS)
    with psycopg.connect(target_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint, note text)").format(grows))
        conn.execute("CREATE TABLE public.quiet_ref (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO public.quiet_ref SELECT g, 'x' FROM generate_series(1, 5000) g")
        api.add_target("capt", target_db)
        t0 = time.monotonic()
        api.take_snapshot("capt")
        # the quiet table is read once more after its load, then never written again
        conn.execute("SELECT count(*) FROM public.quiet_ref")
        conn.execute("SELECT pg_stat_force_next_flush()")
        for i in range(4):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, repeat('y', 200) "
                    "FROM generate_series(%s::int, %s::int) g"
                ).format(grows),
                (i * 20_000, (i + 1) * 20_000 - 1),
            )
            # a backend flushes its table counters at most once a second when it goes idle
            # (else 10 s later); the snapshot right after must see this insert
            conn.execute("SELECT pg_stat_force_next_flush()")
            _paced_snapshot("capt", at=t0 + 1.5 * (i + 1))
        live = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass)", (f'public."{GROWS}"',)
        ).fetchone()[0]

    g = api.storage_growth("capt", by="table", limit=5)
    assert list(g.columns[:3]) == ["datname", "schemaname", "relname"]
    first = g.iloc[0]
    assert (first["schemaname"], first["relname"]) == ("public", GROWS), g
    # the last sized snapshot read the table after its last insert: the size the server reports
    assert first["size_bytes"] == live
    assert first["growth_bytes_per_day"] > 0
    assert first["share_of_growth_pct"] >= 90, g[["relname", "share_of_growth_pct"]]
    # points on the forecaster's grid (snapshots that fell into one step are one point)
    assert first["history_points"] >= 2
    quiet = g[g["relname"] == "quiet_ref"]
    assert quiet.empty or quiet.iloc[0]["growth_bytes_per_day"] < first["growth_bytes_per_day"]
    free = g.attrs["free_bytes"]
    if free is None:  # a server not on opscore's host: said so, no days invented
        assert g["days_until_full"].isna().all() and "free space unknown" in g.attrs["note"]
    else:  # its growth alone against the free space: a positive, finite count of days
        assert (g["free_bytes"] == free).all()
        assert 0 < first["days_until_full"] < float("inf")

    db = api.storage_growth("capt")
    assert "relname" not in db.columns and len(db) >= 1
    out = invoke_cli("capacity", "storage", "--target", "capt", "--by", "table")
    assert out.returncode == 0, out.stderr
    assert GROWS in out.stdout and "days until full" in out.stdout


def test_storage_growth_refuses_bad_input(repo, target_db):
    api.add_target("capt2", target_db)
    with pytest.raises(InvalidInput, match="not a storage grouping"):
        api.storage_growth("capt2", by="index")
    with pytest.raises(InvalidInput, match="limit=0"):
        api.storage_growth("capt2", by="table", limit=0)
    empty = api.storage_growth("capt2", by="table")  # no sized snapshot yet: empty, not an error
    assert empty.empty and "relname" in empty.columns
    assert "baseline" in empty.attrs["empty_note"]  # the CLI and the app print it
