"""A copy of a target's store in an object store (S3, GCS, Azure, a local path) via fsspec.

Layout under the remote URL mirrors the store: ``base/<backup id>/...`` (files under 1 MB
concatenated in ``opscore-bundles/bundle-NNNNN`` objects of up to 64 MB, the rest as their own
objects; ``opscore-upload.json`` holds every file's SHA-256 and size, and its bundle and
offset, and is written last, so its presence means a complete upload), ``wal/<segment>`` and
``wal/checksums/<segment>.sha256``.

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
#: files under BUNDLE_FILE_MAX are uploaded concatenated in bundles of up to BUNDLE_MAX
BUNDLE_FILE_MAX = 1 << 20
BUNDLE_MAX = 64 << 20
BUNDLE_DIR = "opscore-bundles"
WAL_BATCH = 16  # segments uploaded and verified together (16 x 16 MB read back at most)
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

    @property
    def is_local(self) -> bool:
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return bool({"file", "local"} & set(protocols))

    def _make_parents(self, rpaths: list[str]) -> None:
        if self.is_local:  # object stores have no directories; a local path needs them
            for d in sorted({posixpath.dirname(r) for r in rpaths}):
                self.fs.makedirs(d, exist_ok=True)

    def put(self, local: Path, rpath: str) -> None:
        self.put_many([(local, rpath)])

    def put_many(self, pairs: list[tuple[Path, str]]) -> None:
        """Upload files (concurrently where the backend is asynchronous, as S3 is)."""
        if pairs:
            self._make_parents([r for _l, r in pairs])
            self.fs.put([str(local) for local, _r in pairs], [r for _l, r in pairs])

    def put_many_verified(self, items: list[tuple[Path, str, str]]) -> None:
        """Upload, read every file back, compare with its SHA-256: raise when remote bytes
        differ. In batches of at most ``BATCH_BYTES`` (one request per file each way; a file
        bigger than that is read back alone, streamed)."""
        sized = [(local, r, d, local.stat().st_size) for local, r, d in items]
        for batch in _batches(sized):
            self.put_many([(local, r) for local, r, _d, _s in batch])
            if len(batch) == 1 and batch[0][3] > BATCH_BYTES:
                got = {batch[0][1]: self.sha256(batch[0][1])}
            else:
                got = {r: _digest(data) for r, data in self.cat_many([x[1] for x in batch])}
            for local, r, d, _size in batch:
                if got.get(r) != d:
                    have = str(got.get(r))
                    raise OpsCoreError(
                        f"The uploaded copy of {local.name} at {r} does not match its checksum "
                        f"(local {d[:12]}…, remote {have[:12]}…).",
                        "Retry the upload; if it repeats, check the object store.",
                    )

    def cat_many(self, rpaths: list[str]) -> list[tuple[str, bytes | Exception]]:
        """The bytes of each remote file (fetched concurrently), or the error reading it."""
        if not rpaths:
            return []
        got = self.fs.cat(list(rpaths), on_error="return")
        out = []
        for r in rpaths:
            value = got.get(r, got.get(self.fs._strip_protocol(r)))
            out.append((r, value if value is not None else FileNotFoundError(r)))
        return out

    def get_many_verified(self, items: list[tuple[str, Path, str | None]]) -> list[bool]:
        """Download files (concurrently where the backend can); for each, whether it matches
        its digest (or no digest was given)."""
        if not items:
            return []
        for _r, local, _d in items:
            local.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get([r for r, _l, _d in items], [str(local) for _r, local, _d in items])
        return [d is None or _sha256(local) == d for _r, local, d in items]


#: most bytes read back into memory at once when verifying an upload
BATCH_BYTES = 64 << 20


def _batches(
    items: list[tuple[Path, str, str, int]],
) -> list[list[tuple[Path, str, str, int]]]:
    out: list[list[tuple[Path, str, str, int]]] = []
    total = 0
    for it in items:
        if not out or total + it[3] > BATCH_BYTES:
            out.append([])
            total = 0
        out[-1].append(it)
        total += it[3]
    return out


def _digest(data: bytes | Exception) -> str | None:
    return hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else None


_sha256 = wal.sha256_file


# ---------------------------------------------------------------- upload
def upload_backup(remote: Remote, backup_dir: Path, backup_id: str) -> UploadReport:
    """Upload one backup: files under ``BUNDLE_FILE_MAX`` concatenated into bundles of up to
    ``BUNDLE_MAX`` (a cluster has thousands of small relation files; one request each is
    slow and billed on object stores), bigger files as their own objects. Every object is
    read back and checked; the manifest, written last, holds each file's SHA-256 and size
    (and its bundle and offset), so a restore checks every file."""
    rep = UploadReport(remote.url, f"backup {backup_id}")
    files: dict[str, dict[str, Any]] = {}
    dirs: list[str] = []  # object stores have no empty directories; PostgreSQL needs them
    kind_dir = backup_dir.parent.name  # base or logical
    todo: list[tuple[Path, str, str]] = []
    small: list[tuple[Path, str, int]] = []
    for dirpath, _dirs, names in os.walk(backup_dir):
        dirs.append(Path(dirpath).relative_to(backup_dir).as_posix())
        for name in sorted(names):
            local = Path(dirpath) / name
            if local.is_symlink() or not local.is_file():
                continue
            rel = local.relative_to(backup_dir).as_posix()
            digest = _sha256(local)
            size = local.stat().st_size
            files[rel] = {"sha256": digest, "size": size}
            if size < BUNDLE_FILE_MAX:
                small.append((local, rel, size))
            else:
                todo.append((local, remote.path(kind_dir, backup_id, rel), digest))
            rep.files += 1
            rep.verified += 1
            rep.bytes += size
    bundles = _upload_bundles(remote, remote.path(kind_dir, backup_id), small, files)
    remote.put_many_verified(todo)  # raises unless every file reads back with its checksum
    manifest = {"backup_id": backup_id, "uploaded_at": datetime.now(UTC).isoformat(),
                "files": files, "dirs": dirs, "bundles": bundles}  # fmt: skip
    with remote.fs.open(remote.path(kind_dir, backup_id, UPLOAD_MANIFEST), "w") as fh:
        fh.write(json.dumps(manifest, indent=1))
    return rep


def _upload_bundles(
    remote: Remote, root: str, small: list[tuple[Path, str, int]], files: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Concatenate small files into bundles, upload each, read it back, compare."""
    out: dict[str, dict[str, Any]] = {}
    groups: list[list[tuple[Path, str, int]]] = []
    total = 0
    for item in small:
        if not groups or total + item[2] > BUNDLE_MAX:
            groups.append([])
            total = 0
        groups[-1].append(item)
        total += item[2]
    for n, group in enumerate(groups, 1):
        name = f"{BUNDLE_DIR}/bundle-{n:05d}"
        parts = []
        offset = 0
        for local, rel, _size in group:
            data = local.read_bytes()
            if hashlib.sha256(data).hexdigest() != files[rel]["sha256"]:
                raise OpsCoreError(f"{local} changed while it was uploaded.", "Retry the upload.")
            files[rel] |= {"bundle": name, "offset": offset}
            parts.append(data)
            offset += len(data)
        blob = b"".join(parts)
        digest = hashlib.sha256(blob).hexdigest()
        rpath = f"{root}/{name}"
        remote._make_parents([rpath])
        remote.fs.pipe_file(rpath, blob)
        got = _digest(remote.fs.cat_file(rpath))
        if got != digest:
            raise OpsCoreError(
                f"The uploaded bundle {rpath} does not match its checksum (local "
                f"{digest[:12]}…, remote {str(got)[:12]}…).",
                "Retry the upload; if it repeats, check the object store.",
            )
        out[name] = {"sha256": digest, "size": len(blob), "files": len(group)}
    return out


def upload_wal(remote: Remote, wal_dir: Path, seg_size: int) -> UploadReport:
    """Upload complete segments not yet in the remote (each with its checksum, verified)."""
    rep = UploadReport(remote.url, "WAL archive")
    contents = wal.scan(wal_dir, seg_size)
    have = set()
    if remote.fs.exists(remote.path("wal", CHECKSUM_DIR)):
        have = {Path(p).name for p in remote.fs.ls(remote.path("wal", CHECKSUM_DIR), detail=False)}
    todo: list[tuple[Path, str, str]] = []
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
            todo.append((wal_dir / name, remote.path("wal", name), digest))
    for i in range(0, len(todo), WAL_BATCH):
        batch = todo[i : i + WAL_BATCH]
        remote.put_many_verified(batch)
        # the checksums go last: their presence means the segments are there and verified
        remote.put_many(
            [
                (
                    checksum_path(wal_dir, p.name),
                    remote.path("wal", CHECKSUM_DIR, f"{p.name}.sha256"),
                )
                for p, _r, _d in batch
            ]
        )
        for p, _r, _d in batch:
            rep.files += 1
            rep.verified += 1
            rep.bytes += p.stat().st_size
            rep.names.append(p.name)
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
    for rel in manifest.get("dirs", []):
        (dest / rel).mkdir(parents=True, exist_ok=True)
    files = manifest["files"]
    rels = [r for r, meta in files.items() if "bundle" not in meta]
    ok = remote.get_many_verified(
        [(remote.path(kind_dir, backup_id, r), dest / r, files[r]["sha256"]) for r in rels]
    )
    bad = [r for r, good in zip(rels, ok, strict=True) if not good]
    in_bundles: dict[str, list[str]] = {}
    for r, meta in files.items():
        if "bundle" in meta:
            in_bundles.setdefault(meta["bundle"], []).append(r)
    for name, members in sorted(in_bundles.items()):
        blob = remote.fs.cat_file(remote.path(kind_dir, backup_id, name))
        for r in members:
            meta = files[r]
            data = blob[meta["offset"] : meta["offset"] + meta["size"]]
            if len(data) != meta["size"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
                bad.append(r)
                continue
            (dest / r).parent.mkdir(parents=True, exist_ok=True)
            (dest / r).write_bytes(data)
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
        listed = remote.fs.ls(remote.path("wal", CHECKSUM_DIR), detail=False)
        for p, data in remote.cat_many(listed):
            if isinstance(data, bytes) and data.split():
                sums[Path(p).name.removesuffix(".sha256")] = data.split()[0].decode()
    histories, segments = [], []
    for p in remote.fs.ls(remote.path("wal"), detail=False):
        name = Path(p).name
        if wal.HISTORY_RE.match(name):
            histories.append((p, wal_dir / name, None))
        elif wal.SEGMENT_RE.match(name) and name in sums:
            segments.append((p, wal_dir / name, sums[name]))
    remote.get_many_verified(histories)
    for i in range(0, len(segments), WAL_BATCH):
        batch = segments[i : i + WAL_BATCH]
        for (_p, local, digest), good in zip(batch, remote.get_many_verified(batch), strict=True):
            if good:
                target = checksum_path(wal_dir, local.name)
                target.parent.mkdir(exist_ok=True)
                target.write_text(f"{digest}  {local.name}\n")
                out["segments"] += 1
            else:
                local.unlink(missing_ok=True)
                out["rejected"].append(local.name)
    return out
