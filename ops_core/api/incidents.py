"""Diagnostics: incidents and diagnostic dumps.

An incident is opened from what opscore already recorded (critical alerts, ADDM findings at or
above ``INCIDENT_ADDM_IMPACT_PCT`` of DB time, healing actions) or by hand, and is open until
resolved. A diagnostic dump is a zip of the evidence for an interval: settings that differ from
the defaults, sessions, open transactions, locks and the blocking tree, the ASH samples, the
snapshots and ADDM findings of the interval, and the server log entries when the log is
readable, with a manifest saying what each section holds or why it is missing. Every text is
scrubbed of passwords (statement texts, log lines, settings such as primary_conninfo).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__, commands, repository
from ..alerts.metrics import is_local_target
from ..backup.binaries import pg_bin
from ..collectors.scrub import scrub, scrub_message
from ..config import get_settings
from ..errors import InvalidInput, NotFound, OpsCoreError
from ..model.serialize import to_jsonable
from ..repository import diagnostics as store
from ..repository import targets as repo_targets
from .addm import addm_findings, list_addm
from .ash import query_ash
from .common import utc_time
from .locks import live_locks
from .logs import server_log
from .snapshots import list_snapshots
from .targets import resolve_target
from .vviews import v_parameter, v_session, v_transaction

__all__ = [
    "INCIDENT_ADDM_IMPACT_PCT",
    "Incident",
    "DiagDump",
    "list_incidents",
    "get_incident",
    "open_incident",
    "resolve_incident",
    "create_dump",
    "get_dump",
    "list_dumps",
    "dump_download",
    "delete_dump",
]

INCIDENT_ADDM_IMPACT_PCT = 25.0
_STATUSES = ("open", "resolved", "all")
_SEVERITIES = ("info", "warning", "critical")


@dataclass
class Incident:
    incident_id: int
    target: str | None
    source: str  # alert, addm, healing, manual
    source_ref: str | None
    severity: str
    title: str
    detail: dict[str, Any]
    status: str  # open, resolved
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    dumps: list[int] = field(default_factory=list)


@dataclass
class DiagDump:
    dump_id: int
    target: str | None
    incident_id: int | None
    created_at: datetime
    status: str  # creating, done, failed
    path: str | None
    size_bytes: int | None
    begin_at: datetime
    end_at: datetime
    sections: dict[str, str]  # section -> "ok: ..." or why it is missing
    error: str | None


def _incident(row: dict[str, Any], dumps: list[int] | None = None) -> Incident:
    return Incident(**row, dumps=dumps or [])


def list_incidents(
    target: str | None = None,
    status: str = "open",
    severity: str | None = None,
    since: datetime | str | None = None,
    limit: int = 100,
) -> list[Incident]:
    """Incidents, newest first, after opening those their sources call for (critical alerts,
    ADDM findings, healing actions). ``status``: open, resolved or all."""
    if status not in _STATUSES:
        raise InvalidInput(f"Unknown incident status {status!r}.", "Use open, resolved or all.")
    if severity is not None and severity not in _SEVERITIES:
        raise InvalidInput(f"Unknown severity {severity!r}.", "Use info, warning or critical.")
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit {limit} is out of range.", "Give 1 to 10000.")
    b = utc_time(since, "since") if since is not None else None
    with repository.session() as repo:
        tid = repo_targets.get(repo, target).target_id if target else None
        store.sync_incidents(repo, tid, INCIDENT_ADDM_IMPACT_PCT)
        rows = store.list_incidents(
            repo, tid, None if status == "all" else status, severity, b, limit
        )
    return [_incident(r) for r in rows]


def get_incident(incident_id: int) -> Incident:
    """One incident with the dumps taken for it."""
    with repository.session() as repo:
        row = store.get_incident(repo, incident_id)
        dumps = [d["dump_id"] for d in store.list_dumps(repo, None, 10_000)
                 if d["incident_id"] == incident_id]  # fmt: skip
    return _incident(row, dumps)


def open_incident(
    title: str, target: str | None = None, severity: str = "warning", detail: str = ""
) -> Incident:
    """Open an incident by hand."""
    if not title or not title.strip():
        raise InvalidInput("An incident needs a title.")
    if severity not in _SEVERITIES:
        raise InvalidInput(f"Unknown severity {severity!r}.", "Use info, warning or critical.")
    t = resolve_target(target)
    with repository.session() as repo:
        iid = store.insert_incident(
            repo, t.target_id, "manual", severity, title.strip(), {"note": detail}
        )
    return get_incident(iid)


def resolve_incident(incident_id: int, resolution: str = "resolved") -> Incident:
    """Resolve an incident (idempotent: the first resolution time is kept)."""
    with repository.session() as repo:
        store.resolve_incident(repo, incident_id, resolution)
    return get_incident(incident_id)


# ------------------------------------------------------------------------------ dumps


def _clean(value: Any) -> Any:
    """Every string scrubbed of passwords (as SQL, then as free text)."""
    if isinstance(value, str):
        return scrub_message(scrub(value))
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return _clean(to_jsonable(df))


def _dump_dir() -> Path:
    return get_settings().home_dir / "dumps"


def _sections(t_name: str, b: datetime, e: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    out: dict[str, Any] = {}
    status: dict[str, str] = {}

    def take(name: str, fn) -> None:
        try:
            data = fn()
        except (OpsCoreError, Exception) as exc:  # noqa: BLE001 - a missing section is recorded
            status[name] = "missing: " + (getattr(exc, "message", None) or str(exc).strip())
            return
        out[name] = data
        n = len(data) if isinstance(data, list) else 1
        status[name] = f"ok: {n} rows" if isinstance(data, list) else "ok"

    take(
        "settings",
        lambda: _records(v_parameter(t_name).rows.query("not ISDEFAULT")),
    )
    take("sessions", lambda: _records(v_session(t_name, include_opscore=True).rows))
    take("transactions", lambda: _records(v_transaction(t_name).rows))

    def locks() -> dict[str, Any]:
        live = live_locks(t_name, all_locks=True)
        return {"tree": _records(live.tree), "locks": _records(live.locks)}

    take("locks", locks)
    take("ash", lambda: _records(query_ash(t_name, b, e)))
    take(
        "snapshots",
        lambda: _clean(
            to_jsonable([s for s in list_snapshots(t_name, 1000) if b <= s.captured_at <= e])
        ),
    )

    def addm() -> list[dict[str, Any]]:
        found = []
        for a in list_addm(t_name):
            if a.end_at >= b and a.begin_at <= e:
                found.append(
                    {
                        "analysis": to_jsonable(a),
                        "findings": to_jsonable(addm_findings(a.analysis_id)),
                    }
                )
        return _clean(found)

    take("addm", addm)

    def log() -> list[dict[str, Any]]:
        page = server_log(t_name, since=b, until=e, limit=10_000)
        if not page.readable:
            raise OpsCoreError(page.reason or "the server log is not readable")
        return _records(page.entries)

    take("log", log)

    def controldata() -> dict[str, Any]:
        t = resolve_target(t_name)
        if not is_local_target(t):
            raise OpsCoreError("the server does not run on this host: pg_controldata not run")
        p = v_parameter(t_name, "data_directory").rows
        v = v_parameter(t_name, "server_version_num").rows
        if p.empty or v.empty:
            raise OpsCoreError("the data directory is not readable by opscore's role")
        major = int(str(v.iloc[0]["DISPLAY_VALUE"])) // 10000
        res = commands.run([pg_bin(major, "pg_controldata"), "-D", p.iloc[0]["DISPLAY_VALUE"]],
                           timeout=30)  # fmt: skip
        return {"output": res.stdout}

    take("pg_controldata", controldata)
    return out, status


def _dump(row: dict[str, Any]) -> DiagDump:
    return DiagDump(**row)


def create_dump(
    target: str | None = None, minutes: int = 60, incident_id: int | None = None
) -> DiagDump:
    """Write a diagnostic dump of the last ``minutes`` (or of an incident's hour) as a zip under
    OPSCORE_HOME/dumps/<target>/; passwords scrubbed; each missing section says why."""
    if not 1 <= minutes <= 7 * 24 * 60:
        raise InvalidInput(f"minutes {minutes} is out of range.", "Give 1 to 10080 (a week).")
    t = resolve_target(target)
    e = datetime.now(UTC)
    b = e - timedelta(minutes=minutes)
    with repository.session() as repo:
        if incident_id is not None:
            inc = store.get_incident(repo, incident_id)
            e = max(
                inc["opened_at"] + timedelta(minutes=5),
                e if inc["status"] == "open" else inc["opened_at"],
            )
            b = inc["opened_at"] - timedelta(minutes=minutes)
        dump_id = store.insert_dump(repo, t.target_id, incident_id, b, e)
    folder = _dump_dir() / t.name
    path = folder / f"dump-{dump_id}.zip"
    try:
        data, sections = _sections(t.name, b, e)
        manifest = {
            "dump_id": dump_id,
            "target": t.name,
            "incident_id": incident_id,
            "begin_at": b.isoformat(),
            "end_at": e.isoformat(),
            "created_at": datetime.now(UTC).isoformat(),
            "opscore_version": __version__,
            "sections": sections,
            "note": "passwords in statement texts, log lines and settings are <redacted>",
        }
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
            for name, value in data.items():
                z.writestr(f"{name}.json", json.dumps(value, indent=1, default=str))
        tmp = path.with_suffix(".part")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
    except Exception as exc:
        with repository.session() as repo:
            store.finish_dump(repo, dump_id, "failed", None, None, {}, str(exc)[:2000])
        raise
    with repository.session() as repo:
        store.finish_dump(repo, dump_id, "done", str(path), path.stat().st_size, sections)
    return get_dump(dump_id)


def get_dump(dump_id: int) -> DiagDump:
    """A dump's record: status, file, size, the sections it holds or why one is missing."""
    with repository.session() as repo:
        return _dump(store.get_dump(repo, dump_id))


def list_dumps(target: str | None = None, limit: int = 100) -> list[DiagDump]:
    with repository.session() as repo:
        tid = repo_targets.get(repo, target).target_id if target else None
        return [_dump(r) for r in store.list_dumps(repo, tid, limit)]


def _file(d: DiagDump) -> Path:
    if d.status != "done" or not d.path:
        raise NotFound(f"Dump {d.dump_id} has no file ({d.status}).", d.error or "Create another.")
    path = Path(d.path).resolve()
    root = _dump_dir().resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(
            f"The file of dump {d.dump_id} is missing or outside {root}.",
            "Create another dump (`opscore dump create`).",
        )
    return path


def dump_download(dump_id: int) -> bytes:
    """The dump's zip file, as bytes."""
    return _file(get_dump(dump_id)).read_bytes()


def delete_dump(dump_id: int) -> DiagDump:
    """Delete a dump's file and record."""
    d = get_dump(dump_id)
    if d.status == "done" and d.path:
        try:
            _file(d).unlink()
        except NotFound:
            pass
    with repository.session() as repo:
        store.delete_dump(repo, dump_id)
    return d
