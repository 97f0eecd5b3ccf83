"""A copy of a target's store in an object store (S3, GCS, Azure, a local path) via fsspec.

Layout under the remote URL mirrors the store: ``base/<backup id>/...`` (with
``opscore-upload.json``: every file's SHA-256 and size, written last, so its presence means a
complete upload), ``wal/<segment>`` and ``wal/checksums/<segment>.sha256``.

Every uploaded file is read back from the object store and hashed: an upload counts only when
the remote bytes have the local checksum (an ETag is not a checksum for multipart uploads). A
restore from the remote downloads into a private staging store and checks every file against
those checksums on the way; a mismatch refuses the restore, a WAL segment that does not match
is left out (so the archive check sees a gap there, and names it).

Credentials never go into the repository: options hold only non-secret settings such as
``endpoint_url``; keys come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``) as each fsspec backend reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, NotFound, NotSupported, OpsCoreError
from . import wal
from .wal import CHECKSUM_DIR, checksum_path, record_checksum

UPLOAD_MANIFEST = "opscore-upload.json"
SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sas")


@dataclass
class UploadReport:
    url: str
    what: str
    files: int = 0
    bytes: int = 0
    verified: int = 0
    skipped: int = 0
    names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    bad = [k for k in options if any(w in k.lower() for w in SECRET_WORDS)]
    if bad:
        raise InvalidInput(
            f"Remote option(s) {', '.join(bad)} look like credentials; opscore does not store "
            "secrets.",
            "Give credentials through the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_CONNECTION_STRING ...).",
        )
    return options


#: object stores opscore copies backups to: fsspec protocol, package that implements it, example
PROVIDERS: tuple[tuple[str, str, str, str], ...] = (
    ("local", "file", "fsspec", "/mnt/backups/opscore"),
    ("Amazon S3 and S3-compatible (MinIO, Ceph ...)", "s3", "s3fs", "s3://bucket/prefix"),
    ("Google Cloud Storage", "gcs", "gcsfs", "gs://bucket/prefix"),
    ("Azure Blob Storage", "abfs", "adlfs", "az://container/prefix"),
)


def providers() -> list[dict[str, Any]]:
    """Each supported object store and whether its fsspec backend is installed here."""
    import importlib.util

    return [
        {
            "provider": name,
            "protocol": proto,
            "package": pkg,
            "installed": importlib.util.find_spec(pkg) is not None,
            "example_url": example,
        }
        for name, proto, pkg, example in PROVIDERS
    ]


class Remote:
    def __init__(self, url: str, options: dict[str, Any] | None = None):
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - fsspec is a dependency
            raise NotSupported("fsspec is not installed.", "pip install fsspec") from exc
        self.url = url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **check_options(options or {}))
        except ImportError as exc:
            raise NotSupported(
                f"The object store of {url!r} needs a package that is not installed: {exc}.",
                "Install it (S3: pip install s3fs; GCS: gcsfs; Azure: adlfs).",
            ) from exc
        except ValueError as exc:
            raise InvalidInput(f"{url!r} is not a usable object store URL: {exc}") from exc

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def sha256(self, rpath: str) -> str:
        h = hashlib.sha256()
        with self.fs.open(rpath, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def put(self, local: Path, rpath: str) -> None:
        self.fs.makedirs(posixpath.dirname(rpath), exist_ok=True)  # needed on local paths
        self.fs.put_file(str(local), rpath)

    def put_verified(self, local: Path, rpath: str, digest: str) -> None:
        """Upload, read back, compare: raise when the remote bytes differ."""
        self.put(local, rpath)
        got = self.sha256(rpath)
        if got != digest:
            raise OpsCoreError(
                f"The uploaded copy of {local.name} at {rpath} does not match its checksum "
                f"(local {digest[:12]}…, remote {got[:12]}…).",
                "Retry the upload; if it repeats, check the object store.",
            )

    def get_verified(self, rpath: str, local: Path, digest: str | None) -> bool:
        """Download; True when it matches ``digest`` (or no digest was given)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(rpath, str(local))
        if digest is None:
            return True
        return _sha256(local) == digest


_sha256 = wal.sha256_file


# ---------------------------------------------------------------- upload
def upload_backup(remote: Remote, backup_dir: Path, backup_id: str) -> UploadReport:
    rep = UploadReport(remote.url, f"backup {backup_id}")
    files: dict[str, dict[str, Any]] = {}
    dirs: list[str] = []  # object stores have no empty directories; PostgreSQL needs them
    kind_dir = backup_dir.parent.name  # base or logical
    for dirpath, _dirs, names in os.walk(backup_dir):
        dirs.append(Path(dirpath).relative_to(backup_dir).as_posix())
        for name in sorted(names):
            local = Path(dirpath) / name
            if local.is_symlink() or not local.is_file():
                continue
            rel = local.relative_to(backup_dir).as_posix()
            digest = _sha256(local)
            remote.put_verified(local, remote.path(kind_dir, backup_id, rel), digest)
            size = local.stat().st_size
            files[rel] = {"sha256": digest, "size": size}
            rep.files += 1
            rep.verified += 1
            rep.bytes += size
    manifest = {"backup_id": backup_id, "uploaded_at": datetime.now(UTC).isoformat(),
                "files": files, "dirs": dirs}  # fmt: skip
    with remote.fs.open(remote.path(kind_dir, backup_id, UPLOAD_MANIFEST), "w") as fh:
        fh.write(json.dumps(manifest, indent=1))
    return rep


def upload_wal(remote: Remote, wal_dir: Path, seg_size: int) -> UploadReport:
    """Upload complete segments not yet in the remote (each with its checksum, verified)."""
    rep = UploadReport(remote.url, "WAL archive")
    contents = wal.scan(wal_dir, seg_size)
    have = set()
    if remote.fs.exists(remote.path("wal", CHECKSUM_DIR)):
        have = {Path(p).name for p in remote.fs.ls(remote.path("wal", CHECKSUM_DIR), detail=False)}
    for tli in contents.timelines():
        for segno in sorted(contents.complete.get(tli, set())):
            name = wal.segment_name(tli, segno, seg_size)
            if f"{name}.sha256" in have:
                rep.skipped += 1
                continue
            digest = record_checksum(wal_dir, name)
            if _sha256(wal_dir / name) != digest:
                raise OpsCoreError(
                    f"WAL segment {name} no longer matches the checksum taken when it was "
                    "archived; it is not uploaded.",
                    "Run `opscore backup wal verify --target T`; take a new full backup.",
                )
            remote.put_verified(wal_dir / name, remote.path("wal", name), digest)
            # the checksum goes last: its presence means the segment is there and verified
            sums = remote.path("wal", CHECKSUM_DIR, f"{name}.sha256")
            remote.put(checksum_path(wal_dir, name), sums)
            rep.files += 1
            rep.verified += 1
            rep.bytes += (wal_dir / name).stat().st_size
            rep.names.append(name)
    for h in sorted(contents.histories):
        hist = f"{h:08X}.history"
        remote.put(wal_dir / hist, remote.path("wal", hist))
    return rep


# ---------------------------------------------------------------- download
def download_backup(remote: Remote, kind_dir: str, backup_id: str, dest: Path) -> int:
    """Download one backup into ``dest`` (its directory in a staging store), every file
    checked against the upload manifest. Returns the number of files."""
    mpath = remote.path(kind_dir, backup_id, UPLOAD_MANIFEST)
    if not remote.fs.exists(mpath):
        raise NotFound(
            f"Backup {backup_id} is not (completely) uploaded to {remote.url}.",
            f"Upload it: `opscore backup upload {backup_id}`.",
        )
    with remote.fs.open(mpath, "r") as fh:
        manifest = json.loads(fh.read())
    bad = []
    for rel in manifest.get("dirs", []):
        (dest / rel).mkdir(parents=True, exist_ok=True)
    for rel, meta in manifest["files"].items():
        rpath = remote.path(kind_dir, backup_id, rel)
        if not remote.get_verified(rpath, dest / rel, meta["sha256"]):
            bad.append(rel)
    if bad:
        raise OpsCoreError(
            f"Backup {backup_id} in {remote.url} is damaged: {len(bad)} file(s) do not match "
            f"their upload checksums ({', '.join(bad[:5])}).",
            "Restore another backup, or re-upload this one from the local store.",
        )
    return len(manifest["files"])


def download_wal(remote: Remote, wal_dir: Path) -> dict[str, Any]:
    """Download the remote WAL archive into ``wal_dir``; a segment that does not match its
    checksum is left out (the archive check then shows the gap)."""
    wal_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"segments": 0, "rejected": []}
    if not remote.fs.exists(remote.path("wal")):
        return out
    sums = {}
    if remote.fs.exists(remote.path("wal", CHECKSUM_DIR)):
        for p in remote.fs.ls(remote.path("wal", CHECKSUM_DIR), detail=False):
            with remote.fs.open(p, "r") as fh:
                sums[Path(p).name.removesuffix(".sha256")] = fh.read().split()[0]
    for p in remote.fs.ls(remote.path("wal"), detail=False):
        name = Path(p).name
        if wal.HISTORY_RE.match(name):
            remote.fs.get_file(p, str(wal_dir / name))
        elif wal.SEGMENT_RE.match(name) and name in sums:
            if remote.get_verified(p, wal_dir / name, sums[name]):
                target = checksum_path(wal_dir, name)
                target.parent.mkdir(exist_ok=True)
                target.write_text(f"{sums[name]}  {name}\n")
                out["segments"] += 1
            else:
                (wal_dir / name).unlink(missing_ok=True)
                out["rejected"].append(name)
    return out
