"""Replication and storage of a target, live: its role and the standbys streaming from it
(replication status), the nodes it can see (itself, its upstream when it is a standby, its
downstream standbys and WAL receivers) as a topology, and the sizes of its databases,
tablespaces and WAL directory (storage status).

A topology is what one server knows: PostgreSQL has no cluster catalog, so the nodes are the
target, the sender its WAL receiver connects to, and the walsenders' clients. Registered
opscore targets are not cross-matched (that would connect to every target)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..alerts.metrics import is_local_target
from ..collectors import health_reads
from ..collectors import replication as reads
from ..model.target import Target
from .targets import resolve_target, target_session

__all__ = [
    "Standby",
    "ReplicationSlot",
    "WalReceiver",
    "ReplicationStatus",
    "ClusterNode",
    "ClusterLink",
    "ClusterTopology",
    "DatabaseSize",
    "TablespaceSize",
    "WalDirectory",
    "StorageStatus",
    "replication_status",
    "cluster_topology",
    "cluster_nodes",
    "storage_status",
]


@dataclass
class Standby:
    """One walsender (pg_stat_replication): a standby or a WAL receiver such as pg_receivewal."""

    pid: int
    application_name: str | None
    usename: str | None
    client_addr: str | None
    state: str | None
    sync_state: str | None
    sent_lsn: str | None
    replay_lsn: str | None
    replay_lag_bytes: int | None
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None
    backend_start: datetime | None
    reply_time: datetime | None


@dataclass
class ReplicationSlot:
    slot_name: str
    slot_type: str
    database: str | None
    active: bool
    wal_status: str | None
    retained_bytes: int | None  # WAL the slot holds back (primary only)
    safe_wal_size: int | None


@dataclass
class WalReceiver:
    """This server's own WAL receiver (a standby's pg_stat_wal_receiver)."""

    status: str
    sender_host: str | None
    sender_port: int | None
    slot_name: str | None
    received_tli: int | None
    receive_start_lsn: str | None
    written_lsn: str | None
    flushed_lsn: str | None
    latest_end_lsn: str | None
    latest_end_time: datetime | None
    last_msg_receipt_time: datetime | None


@dataclass
class ReplicationStatus:
    target: str
    role: str  # primary / standby
    system_identifier: str | None  # None: this role may not call pg_control_system()
    timeline: int | None
    current_lsn: str | None  # primary only
    receive_lsn: str | None  # standby only
    replay_lsn: str | None
    last_replay_at: datetime | None
    replay_delay_s: float | None  # standby: now - last replayed commit
    wal_level: str
    max_wal_senders: int
    max_replication_slots: int
    synchronous_standby_names: str
    standbys: list[Standby]
    slots: list[ReplicationSlot]
    wal_receiver: WalReceiver | None
    notes: list[str] = field(default_factory=list)


@dataclass
class ClusterNode:
    name: str  # the target name, the sender host:port, or the standby's application_name
    role: str  # primary / standby / upstream / downstream
    host: str | None
    port: int | None
    is_target: bool  # the node opscore connected to
    state: str | None  # streaming, catchup, ... (links seen from this node)
    lag_bytes: int | None
    lag_s: float | None


@dataclass
class ClusterLink:
    source: str  # the node that sends WAL
    destination: str  # the node that receives it
    sync_state: str | None  # async / sync / quorum / potential (seen from the sender)
    slot_name: str | None


@dataclass
class ClusterTopology:
    target: str
    system_identifier: str | None
    cluster_name: str | None
    nodes: list[ClusterNode]
    links: list[ClusterLink]
    notes: list[str] = field(default_factory=list)


@dataclass
class DatabaseSize:
    name: str
    tablespace: str
    size_bytes: int | None  # None: this role may not connect to it


@dataclass
class TablespaceSize:
    name: str
    owner: str
    location: str | None  # None: inside the data directory (pg_default, pg_global)
    size_bytes: int | None  # None: needs CREATE on it or pg_read_all_stats


@dataclass
class WalDirectory:
    listed: bool  # pg_ls_waldir() allowed for this role (superuser or pg_monitor)
    files: int | None
    size_bytes: int | None
    newest: datetime | None
    segment_size: str
    min_wal_size: str
    max_wal_size: str
    wal_keep_size: str


@dataclass
class StorageStatus:
    target: str
    databases: list[DatabaseSize]
    tablespaces: list[TablespaceSize]
    wal: WalDirectory
    total_database_bytes: int  # of the databases whose size could be read
    data_disk: dict[str, int] | None  # total/used/free bytes: only for a server on this host
    notes: list[str] = field(default_factory=list)


def _pick(cls: type, row: dict) -> object:
    return cls(**{k: row.get(k) for k in cls.__dataclass_fields__ if k != "notes"})


def replication_status(target: str | None = None) -> ReplicationStatus:
    """A target's replication now: primary or standby, its LSNs and replay delay, the
    standbys and WAL receivers streaming from it with their lag, its replication slots with
    the WAL each retains, and its own WAL receiver when it is a standby."""
    return _replication(resolve_target(target))[0]


def _replication(t: Target) -> tuple[ReplicationStatus, dict]:
    with target_session(t) as conn:
        n = reads.node(conn)
        standbys = [_pick(Standby, r) for r in reads.standbys(conn)]
        slots = [_pick(ReplicationSlot, r) for r in reads.slots(conn)]
        rx = reads.wal_receiver(conn)
    notes = []
    if n["system_identifier"] is None:
        notes.append(
            "system identifier and timeline not shown: this role may not execute "
            "pg_control_system()/pg_control_checkpoint() (grant EXECUTE or use pg_monitor)"
        )
    if n["wal_level"] == "minimal":
        notes.append("wal_level is minimal: this server cannot feed standbys or WAL receivers")
    st = ReplicationStatus(
        target=t.name,
        role="standby" if n["in_recovery"] else "primary",
        **{k: n[k] for k in ReplicationStatus.__dataclass_fields__ if k in n},
        standbys=standbys,  # type: ignore[arg-type]
        slots=slots,  # type: ignore[arg-type]
        wal_receiver=_pick(WalReceiver, rx) if rx else None,  # type: ignore[arg-type]
        notes=notes,
    )
    return st, n


def cluster_topology(target: str | None = None) -> ClusterTopology:
    """The replication topology seen from a target: the target itself (primary or standby),
    its upstream (the sender of its WAL receiver) and its downstream standbys and WAL
    receivers (pg_stat_replication), with the links between them."""
    t = resolve_target(target)
    st, n = _replication(t)
    me = ClusterNode(
        name=t.name,
        role=st.role,
        host=n["host"],
        port=n["port"],
        is_target=True,
        state=st.wal_receiver.status if st.wal_receiver else None,
        lag_bytes=None,
        lag_s=st.replay_delay_s,
    )
    nodes, links = [me], []
    rx = st.wal_receiver
    if rx is not None:
        up = f"{rx.sender_host or '?'}:{rx.sender_port or '?'}"
        nodes.append(
            ClusterNode(
                name=up,
                role="upstream",
                host=rx.sender_host,
                port=rx.sender_port,
                is_target=False,
                state=rx.status,
                lag_bytes=None,
                lag_s=None,
            )  # fmt: skip
        )
        links.append(ClusterLink(source=up, destination=t.name, sync_state=None,
                                 slot_name=rx.slot_name))  # fmt: skip
    slot_of = {s.slot_name: s for s in st.slots if s.active}
    for s in st.standbys:
        name = s.application_name or f"pid {s.pid}"
        nodes.append(
            ClusterNode(
                name=name,
                role="downstream",
                host=s.client_addr,
                port=None,
                is_target=False,
                state=s.state,
                lag_bytes=s.replay_lag_bytes,
                lag_s=s.replay_lag_s,
            )  # fmt: skip
        )
        slot = next((k for k in slot_of if k == s.application_name), None)
        links.append(ClusterLink(source=t.name, destination=name, sync_state=s.sync_state,
                                 slot_name=slot))  # fmt: skip
    notes = list(st.notes)
    if len(nodes) == 1:
        notes.append("no upstream and no standby or WAL receiver connected: a single server")
    return ClusterTopology(
        target=t.name,
        system_identifier=st.system_identifier,
        cluster_name=n["cluster_name"] or None,
        nodes=nodes,
        links=links,
        notes=notes,
    )


def cluster_nodes(target: str | None = None) -> list[ClusterNode]:
    """The nodes of :func:`cluster_topology`, the target first."""
    return cluster_topology(target).nodes


def storage_status(target: str | None = None) -> StorageStatus:
    """Where a target's bytes are: each database's size, each tablespace's location and size,
    the WAL directory (files and size when this role may list it) and, for a server on this
    host, the free space of the disk holding its data directory."""
    t = resolve_target(target)
    with target_session(t) as conn:
        dbs = [_pick(DatabaseSize, r) for r in reads.databases(conn)]
        tss = [_pick(TablespaceSize, r) for r in reads.tablespaces(conn)]
        w = reads.wal_dir(conn)
    notes = []
    wal = WalDirectory(
        listed=bool(w["allowed"]),
        files=w["files"],
        size_bytes=w["size_bytes"],
        newest=w["newest"],
        segment_size=w["segment_size"],
        min_wal_size=w["min_wal_size"],
        max_wal_size=w["max_wal_size"],
        wal_keep_size=w["wal_keep_size"],
    )
    if not wal.listed:
        notes.append(
            "WAL directory size not shown: pg_ls_waldir() is not permitted for this role "
            "(superuser or a member of pg_monitor)"
        )
    if any(d.size_bytes is None for d in dbs):  # type: ignore[attr-defined]
        notes.append("some database sizes not shown: no CONNECT privilege on them")
    if any(s.size_bytes is None for s in tss):  # type: ignore[attr-defined]
        notes.append("some tablespace sizes not shown: needs CREATE on it or pg_read_all_stats")
    disk = health_reads.data_disk(w["data_directory"]) if is_local_target(t) else None
    if disk is None:
        notes.append("data disk space not shown: the server's data directory is not on this host")
    return StorageStatus(
        target=t.name,
        databases=dbs,  # type: ignore[arg-type]
        tablespaces=tss,  # type: ignore[arg-type]
        wal=wal,
        total_database_bytes=sum(d.size_bytes or 0 for d in dbs),  # type: ignore[attr-defined]
        data_disk=disk,
        notes=notes,
    )
