"""Upload of backups and WAL to an S3-compatible object store running on this machine (moto's
server mode), every file checked by checksum after upload, and a restore that reads from there
(proven by starting the restored server and counting rows) — with the local store gone."""

from __future__ import annotations

import json
import shutil
import socket

import pytest

from ops_core import api
from ops_core.errors import InvalidInput, OpsCoreError

from .backup_helpers import (
    drop_slot,
    drop_target,
    fast_backups,  # noqa: F401
    make_target,
    new_dir,
    restored_ids,
)
from .helpers import invoke_cli, run_cli

moto_server = pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fast_backups")]


@pytest.fixture
def s3(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # credentials from the environment, as in production (moto accepts any)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "opscore-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "opscore-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = f"http://127.0.0.1:{port}"
    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    fs.mkdir("opscore-backups")
    try:
        yield endpoint, fs
    finally:
        server.stop()


@pytest.fixture
def bk(repo, pg):
    t = make_target(pg)
    slot = f"opscore_test_{t.dbname[-10:]}"
    api.create_wal_slot(t.name, slot)
    t.slot = slot  # type: ignore[attr-defined]
    try:
        yield t
    finally:
        drop_slot(pg, slot)
        drop_target(pg, t)


def test_upload_to_s3_and_restore_from_there_with_checksums(bk, pg, s3):
    endpoint, fs = s3
    with pytest.raises(InvalidInput):  # secrets never go into the repository
        api.set_backup_remote(bk.name, "s3://opscore-backups/bk", {"secret": "x"})
    with pytest.raises(InvalidInput) as err:
        api.upload_wal(bk.name)
    assert "no object store" in err.value.message
    res = invoke_cli("backup", "remote", "--target", bk.name, "s3://opscore-backups/bk",
                     "--option", f"endpoint_url={endpoint}")  # fmt: skip
    assert res.returncode == 0, res.stderr

    bk.write(1, 100, "a")
    full = api.take_full_backup(bk.name)
    bk.write(101, 200, "b")
    with pg.admin() as c:
        c.execute("SELECT pg_switch_wal()")
    api.receive_wal(bk.name, slot=bk.slot)

    up = api.upload_backup(full.backup_id)
    assert up.files > 100 and up.verified == up.files and up.bytes > 1_000_000
    assert fs.exists(f"opscore-backups/bk/base/{full.backup_id}/opscore-upload.json")
    assert "upload" in [c.kind for c in api.get_backup(full.backup_id).checks]
    w = run_cli("backup", "wal", "upload", "--target", bk.name, "--json")  # a real process
    assert w.returncode == 0, w.stderr
    assert '"verified"' in w.stdout
    again = api.upload_wal(bk.name)
    assert again.files == 0 and again.skipped >= 1  # only what is new goes up

    # a stream uploads what it archives too (slot opscore_<target>, dropped at the end)
    try:
        bk.write(201, 300, "c")
        with pg.admin() as c:
            c.execute("SELECT pg_switch_wal()")
        state = api.stream_wal(bk.name, duration=6, interval=1)
        assert state["uploaded"] and state["uploaded"] >= 1, state["events"]
        assert not [e for e in state["events"] if e["kind"] == "upload_failed"]
    finally:
        drop_slot(pg, f"opscore_{bk.name}")

    # the local store is lost: restore reads the backup and WAL from the object store
    local = api.backup_store(bk.name)
    shutil.rmtree(local.base_dir)
    shutil.rmtree(local.wal_dir)
    dest = new_dir()
    res = api.restore_backup(bk.name, dest, backup_id=full.backup_id, latest=True,
                             from_remote=True)  # fmt: skip
    assert res.proof["reached_target"]
    assert restored_ids(dest, pg.major, bk.dbname, res.os_user) == list(range(1, 301))
    shutil.rmtree(dest.parent, ignore_errors=True)

    # a damaged object in the store: the download check refuses it, nothing written (small
    # files travel in bundles: PG_VERSION's bytes are overwritten inside its bundle)
    root = f"opscore-backups/bk/base/{full.backup_id}"
    manifest = json.loads(fs.cat(f"{root}/opscore-upload.json"))
    meta = next(m for r, m in manifest["files"].items() if r.endswith("PG_VERSION"))
    blob = bytearray(fs.cat(f"{root}/{meta['bundle']}"))
    start = meta["offset"]
    assert blob[start : start + meta["size"]].strip().isdigit()
    blob[start : start + meta["size"]] = b"99\n"[: meta["size"]].ljust(meta["size"], b"\n")
    fs.pipe(f"{root}/{meta['bundle']}", bytes(blob))
    dest = new_dir()
    with pytest.raises(OpsCoreError) as err:
        api.restore_backup(bk.name, dest, backup_id=full.backup_id, from_remote=True)
    assert "do not match" in err.value.message and "PG_VERSION" in err.value.message
    assert not dest.exists()
