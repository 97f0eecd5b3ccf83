"""Diagnostics on a real server: a critical alert opens an incident (once), resolved by hand;
a dump bundle of the interval holds the sections a DBA needs, says why one is missing, and
holds no password even though a session's text and the server log carry one."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import psycopg
import pytest

from ops_core import api
from ops_core.errors import InvalidInput, NotFound

SECRET = f"Zx{uuid.uuid4().hex[:12]}Qp"


@pytest.fixture
def diag(repo, target_db):
    api.add_target("dg", target_db)
    return target_db


def test_alert_opens_one_incident_and_it_resolves(diag):
    api.create_alert_rule(
        name="dg_crit", metric="connections", value=0, op=">=", target="dg", severity="critical"
    )
    assert api.evaluate_alerts("dg").fired == 1
    first = api.list_incidents("dg")
    assert [i.source for i in first] == ["alert"] and first[0].severity == "critical"
    assert len(api.list_incidents("dg")) == 1  # synced again: not duplicated
    done = api.resolve_incident(first[0].incident_id, "capacity raised")
    assert done.status == "resolved" and done.resolution == "capacity raised"
    assert api.list_incidents("dg") == [] and len(api.list_incidents("dg", status="all")) == 1
    manual = api.open_incident("disk replaced", target="dg", severity="info")
    assert manual.source == "manual" and manual.status == "open"
    with pytest.raises(InvalidInput):
        api.list_incidents("dg", status="closed")
    with pytest.raises(NotFound):
        api.get_incident(10**9)


def test_dump_has_the_evidence_and_no_password(pg, diag):
    url = f"postgresql://app:{SECRET}@db.example.com/shop"
    with psycopg.connect(diag, application_name="dg-secret") as c:
        c.execute(f"SELECT '{url}' AS conn")  # an idle-in-transaction session showing it
        with psycopg.connect(diag, autocommit=True) as bad:  # an error logged with the text
            with pytest.raises(psycopg.Error):
                bad.execute(f"ALTER ROLE dg_nobody_x PASSWORD '{SECRET}'")
        inc = api.open_incident("slow checkout", target="dg", severity="critical")
        d = api.create_dump("dg", minutes=10, incident_id=inc.incident_id)
    assert d.status == "done" and d.size_bytes and d.size_bytes > 0
    raw = api.dump_download(d.dump_id)
    assert SECRET.encode() not in raw  # compressed bytes: also check every file
    z = zipfile.ZipFile(io.BytesIO(raw))
    for name in z.namelist():
        assert SECRET not in z.read(name).decode(), name
    manifest = json.loads(z.read("manifest.json"))
    assert manifest["incident_id"] == inc.incident_id
    assert {
        "settings",
        "sessions",
        "transactions",
        "locks",
        "ash",
        "snapshots",
        "addm",
        "log",
        "pg_controldata",
    } == set(manifest["sections"])
    if manifest["sections"]["pg_controldata"].startswith("ok"):
        assert "Database cluster state" in json.loads(z.read("pg_controldata.json"))["output"]
    elif pg.embedded is not None:  # opscore's own server is local: it must have run
        raise AssertionError(manifest["sections"]["pg_controldata"])
    sessions = json.loads(z.read("sessions.json"))
    mine = [s for s in sessions if s["PROGRAM"] == "dg-secret"]
    assert mine and "<redacted>" in mine[0]["SQL_TEXT"]
    if pg.embedded is not None:
        assert manifest["sections"]["log"].startswith("ok")
        log = z.read("log.json").decode()
        assert "ALTER ROLE" in log and "<redacted>" in log
    elif not manifest["sections"]["log"].startswith("ok"):
        assert "log" not in {n.removesuffix(".json") for n in z.namelist()}
    assert api.get_incident(inc.incident_id).dumps == [d.dump_id]
    assert [x.dump_id for x in api.list_dumps("dg")] == [d.dump_id]
    api.delete_dump(d.dump_id)
    with pytest.raises(NotFound):
        api.get_dump(d.dump_id)
