"""Continuous WAL archiving on its own embedded server (so it can be restarted): the stream
survives a target restart, a killed pg_receivewal and a killed opscore stream without a gap,
and a restore to the end of the archive has every row. Restore-point warning when WAL is not
being archived."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from ops_core import api
from ops_core.backup import wal
from ops_core.errors import InvalidInput
from ops_core.targets.embedded import EmbeddedServer

from .backup_helpers import fast_backups, new_dir, restored_ids  # noqa: F401
from .helpers import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_backups")]


def _wait(cond, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def own(repo):
    home = Path(tempfile.mkdtemp(prefix="ops-wal-", dir="/tmp"))
    srv = EmbeddedServer(home)
    srv.start()
    store = Path(tempfile.mkdtemp(prefix="ops-store-", dir="/tmp"))
    with psycopg.connect(srv.conninfo(), autocommit=True) as c:
        c.execute("CREATE TABLE items (id int PRIMARY KEY, tag text)")
    api.add_target("live", srv.conninfo())
    api.set_backup_store("live", store)
    try:
        yield srv, store
    finally:
        srv.destroy()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)


def _write(srv, first: int, last: int) -> str:
    with psycopg.connect(srv.conninfo(), autocommit=True) as c:
        c.execute(
            "INSERT INTO items SELECT g, 'x' FROM generate_series(%s::int, %s::int) g",
            (first, last),
        )
        return c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def _start_stream() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ops_core", "backup", "wal", "stream", "--target", "live",
         "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def test_stream_survives_target_restart_and_killed_archivers_without_a_gap(own):
    srv, store = own
    wal_dir = store / "wal"
    proc = _start_stream()
    try:
        state = lambda: wal.read_stream_state(wal_dir)  # noqa: E731
        _wait(lambda: state().get("receiver_pid") and state().get("heartbeat"), "the stream")
        assert state()["slot"] == "opscore_live"
        full = api.take_full_backup("live")
        _write(srv, 1, 100)

        # 1. the target restarts: pg_receivewal exits, the stream starts it again
        srv.stop()
        srv.start()
        _wait(lambda: state().get("restarts", 0) >= 1 and state().get("receiver_running"),
              "the receiver to be restarted after the target restart")  # fmt: skip
        assert any(e["kind"] == "receiver_exit" for e in state()["events"])
        _write(srv, 101, 200)

        # 2. pg_receivewal is killed: started again
        pgid = _wait(lambda: state().get("receiver_pid"), "the receiver's pid")
        os.killpg(pgid, signal.SIGKILL)
        _wait(lambda: state().get("restarts", 0) >= 2 and state().get("receiver_pid") != pgid,
              "the receiver to be restarted after kill -9")  # fmt: skip
        _write(srv, 201, 300)

        # 3. the stream itself (opscore) is killed: its pg_receivewal dies with it, the slot
        # keeps the WAL written meanwhile
        pgid = _wait(lambda: state().get("receiver_pid"), "the receiver's pid")
        proc.kill()
        proc.wait(timeout=60)
        _wait(lambda: not _alive(pgid), "pg_receivewal to die with the stream")
        _write(srv, 301, 400)
        (slot,) = [s for s in api.wal_status("live").slots if s["slot"] == "opscore_live"]
        assert not slot["active"] and slot["retained_bytes"] > 0
        assert api.wal_status("live").stream["alive"] is False
        proc = _start_stream()
        last_lsn = _write(srv, 401, 500)

        def slot_caught_up():
            with psycopg.connect(srv.conninfo(), autocommit=True) as c:
                return c.execute(
                    "SELECT restart_lsn >= %s::pg_lsn FROM pg_replication_slots "
                    "WHERE slot_name = 'opscore_live'",
                    (last_lsn,),
                ).fetchone()[0]

        _wait(slot_caught_up, "the archive to hold the last write")
        streamed = run_cli("restore-point", "create", "--target", "live", "p_streamed")
        assert streamed.returncode == 0 and "not being archived" not in streamed.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "stream stopped" in out

    # with no stream running, a new restore point is beyond the archive: a warning
    unarchived = run_cli("restore-point", "create", "--target", "live", "p_unarchived", "--json")
    assert unarchived.returncode == 0, unarchived.stderr
    assert "not being archived" in unarchived.stderr and "wal stream" in unarchived.stderr
    assert "cannot be reached" in json.loads(unarchived.stdout)["warning"]

    st = api.wal_status("live")
    assert st.gaps == [] and st.stream["alive"] is False and st.stream["stopped_at"]
    check = api.verify_wal_archive("live")
    assert check.ok and check.unchecksummed == [], check.as_dict()
    dest = new_dir()
    res = api.restore_backup("live", dest, backup_id=full.backup_id, latest=True)
    assert res.proof["reached_target"]
    assert restored_ids(dest, 18, "postgres", res.os_user) == list(range(1, 501))
    shutil.rmtree(dest.parent, ignore_errors=True)
    api.drop_wal_slot("live", "opscore_live")


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_archive_command_on_a_server_opscore_owns_checksums_each_segment(own):
    srv, store = own
    with pytest.raises(InvalidInput) as err:  # "live" is not the default embedded server
        api.archive_with_command("live")
    assert "not the embedded server opscore owns" in err.value.message
    out = api.archive_with_command("live", server=srv)
    assert out["enabled"] and out["restarted"]
    with psycopg.connect(srv.conninfo(), autocommit=True) as c:
        assert c.execute("SHOW archive_mode").fetchone()[0] == "on"
    full = api.take_full_backup("live")
    _write(srv, 1, 300)
    with psycopg.connect(srv.conninfo(), autocommit=True) as c:
        seg = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        c.execute("SELECT pg_switch_wal()")
    wal_dir = store / "wal"
    _wait(lambda: (wal_dir / "checksums" / f"{seg}.sha256").is_file(), "the archiver")
    check = api.verify_wal_archive("live")
    assert check.ok and check.unchecksummed == [], check.as_dict()
    # restore to the end of what the server archived, proven by starting it
    dest = new_dir()
    res = api.restore_backup("live", dest, backup_id=full.backup_id, latest=True)
    assert restored_ids(dest, 18, "postgres", res.os_user) == list(range(1, 301))
    shutil.rmtree(dest.parent, ignore_errors=True)
    assert api.archive_with_command("live", enable=False, server=srv)["restarted"]


def test_stream_flow_then_guard_drops_the_slot_of_a_stopped_stream(own):
    srv, store = own
    from flows.backup import wal_stream_flow

    _write(srv, 1, 10)
    out = wal_stream_flow.fn("live", duration_s=4, max_retained_mb=1024)
    assert out["guard"]["dropped"] is False
    assert [e["kind"] for e in out["events"]][-1] == "info"
    st = api.wal_status("live")
    assert st.complete_segments + st.partial_segments >= 1 and st.stream["alive"] is False
    (slot,) = [s for s in st.slots if s["slot"] == "opscore_live"]
    assert not slot["active"]

    # the stream is gone and the slot holds WAL: over the limit, the guard drops it
    _write(srv, 11, 5000)
    kept = api.guard_wal_slot("live", max_retained_bytes=1024**3)
    assert kept["dropped"] is False and kept["retained_bytes"] > 0
    gone = api.guard_wal_slot("live", max_retained_bytes=1)
    assert gone["dropped"] is True
    assert "opscore_live" not in [s["slot"] for s in api.wal_status("live").slots]
    assert wal.read_stream_state(store / "wal")["events"][-1]["kind"] == "slot_dropped"

    from .test_app import _run, _text

    at = _run("backup.py", {"target": "live"})
    assert "WAL stream not running" in _text(at)
