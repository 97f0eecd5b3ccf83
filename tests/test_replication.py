"""Replication, topology, storage and performance events against a real server: a real WAL
receiver (pg_receivewal on a physical slot) streams from the target while the reads run, so
pg_stat_replication, the slot and the topology have something true to show."""

from __future__ import annotations

import json
import subprocess
import uuid

import psycopg
import pytest
from psycopg import sql

from ops_core import api
from ops_core.collectors import replication as reads
from ops_core.errors import InvalidInput
from ops_core.targets.embedded import bin_dir
from tests.helpers import wait_until


def _cli(*args: str):
    """The real CLI in-process (typer's runner): the command's parsing, call and output."""
    from typer.testing import CliRunner

    from ops_core.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def streaming(opscore_env, pg, tmp_path_factory):
    """A registered target with a pg_receivewal streaming from it on its own slot."""
    from tests.helpers import reset_repository

    reset_repository()
    dsn = pg.create_database("repl")
    name = f"repl{uuid.uuid4().hex[:6]}"
    slot = f"opscore_test_{uuid.uuid4().hex[:8]}"
    api.add_target(name, dsn)
    with pg.admin() as c:
        c.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
    wal = tmp_path_factory.mktemp("wal")
    rx = subprocess.Popen(
        [str(bin_dir() / "pg_receivewal"), "-d", pg.admin_dsn, "-D", str(wal), "-S", slot,
         "--no-loop", "-n"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield name, slot, dsn
    finally:
        rx.terminate()
        rx.wait(timeout=60)
        with pg.admin() as c:
            wait_until(
                lambda: (
                    not c.execute(
                        "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                    ).fetchone()[0]
                ),
                what="the slot to be released",
            )
            c.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        pg.drop_database(dsn)


def test_replication_status_and_topology_show_a_real_wal_receiver(streaming):
    name, slot, _ = streaming

    def receiver():
        st = api.replication_status(name)
        mine = [s for s in st.standbys if s.application_name == "pg_receivewal"]
        return (st, mine) if mine and mine[0].state == "streaming" else None

    st, mine = wait_until(receiver, what="pg_receivewal streaming in pg_stat_replication")
    assert st.role == "primary" and st.current_lsn and st.wal_receiver is None
    assert st.system_identifier and st.system_identifier.isdigit()
    [s] = [s for s in st.slots if s.slot_name == slot]
    assert s.active and s.slot_type == "physical" and s.retained_bytes is not None

    topo = api.cluster_topology(name)
    me = topo.nodes[0]
    assert me.is_target and me.role == "primary" and me.name == name
    downstream = [n for n in topo.nodes if n.role == "downstream" and n.name == "pg_receivewal"]
    assert downstream and downstream[0].state == "streaming"
    assert any(
        lk.source == name and lk.destination == "pg_receivewal" and lk.sync_state
        for lk in topo.links
    )
    assert [n.name for n in api.cluster_nodes(name)][0] == name

    r = _cli("replication", "status", "--target", name, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["role"] == "primary" and any(x["slot_name"] == slot for x in out["slots"])


def test_storage_status_sizes_databases_tablespaces_and_wal(streaming, pg):
    name, _, dsn = streaming
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    st = api.storage_status(name)
    sizes = {d.name: d.size_bytes for d in st.databases}
    assert sizes.get(db, 0) > 0
    with pg.admin() as c:  # the same figure the server gives now (a fresh database: stable)
        assert sizes[db] == c.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0]
    default = next(t for t in st.tablespaces if t.name == "pg_default")
    assert default.location is None and default.size_bytes > 0
    assert st.total_database_bytes >= sizes[db]
    # the test role is a superuser: the WAL directory is listed, with real segment files
    assert st.wal.listed and st.wal.files >= 1 and st.wal.size_bytes > 0
    r = _cli("storage", "--target", name)
    assert r.exit_code == 0 and "pg_default" in r.stdout, r.output


def test_storage_says_when_the_wal_directory_may_not_be_listed(streaming, pg):
    """A role without pg_monitor may not list the WAL directory: no figure (nothing
    invented), and the flag the service layer turns into its note."""
    role = f"opscore_nomon_{uuid.uuid4().hex[:6]}"
    with pg.admin() as c:
        c.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        try:
            c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            w = reads.wal_dir(c)
            assert w["allowed"] is False and w["size_bytes"] is None and w["files"] is None
            assert w["max_wal_size"]  # the settings are still there
            c.execute("RESET ROLE")
        finally:
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_performance_events_feed_alerts_from_the_repository(streaming):
    name, _, _ = streaming
    rule = f"ev{uuid.uuid4().hex[:6]}"
    api.create_alert_rule(name=rule, metric="connections", value=0, op=">=", target=name)
    try:
        assert api.evaluate_alerts(name).fired >= 1
        events = api.performance_events(name, hours=1, kinds=["alert"])
        fired = [a for a in api.list_alerts("all", name) if a.rule == rule]
        assert fired and any(
            e.kind == "alert" and e.ref_id == fired[0].alert_id and e.target == name for e in events
        )
        assert events == sorted(events, key=lambda e: e.at, reverse=True)
        with pytest.raises(InvalidInput):
            api.performance_events(name, kinds=["nope"])
    finally:
        api.delete_alert_rule(rule)
