"""`opscore replication status|topology|nodes`, `opscore storage`, `opscore events`: a
target's replication and storage now, and the feed of performance events the repository
holds (alerts fired, ADDM analyses, slow SQL executions)."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Replication now: role, standbys, slots, WAL receiver, topology.")
TargetOpt = typer.Option(None, "--target", "-t", help="Target name (default: the only one).")


def _mb(v: int | None) -> str:
    return "not shown" if v is None else f"{v / 1048576:,.1f} MB"


def _v(v: object) -> str:
    return "" if v is None else str(v)


def _notes(notes: list[str]) -> None:
    for n in notes:
        console.print(f"[dim]note: {n}[/dim]")


@app.command(
    "status", epilog=example("opscore replication status", "opscore replication status --json")
)
def status(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Primary or standby, LSNs, the standbys streaming from it with their lag, its slots."""
    st = api.replication_status(target)
    if as_json:
        print_json(st)
        return
    lsn = st.current_lsn if st.role == "primary" else st.replay_lsn
    console.print(
        f"{st.target}: {st.role}, LSN {lsn}, timeline {_v(st.timeline)}, "
        f"wal_level {st.wal_level}, {len(st.standbys)} standby(s)/WAL receiver(s)"
    )
    if st.wal_receiver:
        rx = st.wal_receiver
        console.print(f"WAL receiver: {rx.status} from {rx.sender_host}:{rx.sender_port}, "
                      f"replay delay {_v(st.replay_delay_s)} s")  # fmt: skip
    if st.standbys:
        console.print(table(
            "standbys", ["pid", "application", "client", "state", "sync", "lag bytes", "lag s"],
            [[s.pid, _v(s.application_name), _v(s.client_addr), _v(s.state), _v(s.sync_state),
              _v(s.replay_lag_bytes), _v(s.replay_lag_s)] for s in st.standbys],
        ))  # fmt: skip
    if st.slots:
        console.print(table(
            "slots", ["slot", "type", "active", "wal status", "retained"],
            [[s.slot_name, s.slot_type, "yes" if s.active else "no", _v(s.wal_status),
              _mb(s.retained_bytes)] for s in st.slots],
        ))  # fmt: skip
    _notes(st.notes)


@app.command("topology", epilog=example("opscore replication topology --json"))
def topology(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
    """The nodes this target sees (itself, its upstream, its standbys) and the links."""
    topo = api.cluster_topology(target)
    if as_json:
        print_json(topo)
        return
    for link in topo.links:
        console.print(f"{link.source} -> {link.destination} ({_v(link.sync_state) or 'receiver'})")
    nodes(target, as_json=False, _topo=topo)
    _notes(topo.notes)


@app.command("nodes", epilog=example("opscore replication nodes"))
def nodes(target: str | None = TargetOpt, as_json: bool = JsonOpt, _topo=None) -> None:
    """The nodes of the topology, the target first."""
    found = _topo.nodes if _topo is not None else api.cluster_nodes(target)
    if as_json:
        print_json(found)
        return
    console.print(table(
        "nodes", ["name", "role", "host", "port", "state", "lag bytes", "lag s"],
        [[n.name, n.role, _v(n.host), _v(n.port), _v(n.state), _v(n.lag_bytes), _v(n.lag_s)]
         for n in found],
    ))  # fmt: skip


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="replication")

    @root.command("storage", epilog=example("opscore storage", "opscore storage --json"))
    def storage(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
        """Database and tablespace sizes, the WAL directory, and the data disk (local)."""
        st = api.storage_status(target)
        if as_json:
            print_json(st)
            return
        console.print(table(
            "databases", ["database", "tablespace", "size"],
            [[d.name, d.tablespace, _mb(d.size_bytes)] for d in st.databases],
        ))  # fmt: skip
        console.print(table(
            "tablespaces", ["tablespace", "owner", "location", "size"],
            [[t.name, t.owner, t.location or "(data directory)", _mb(t.size_bytes)]
             for t in st.tablespaces],
        ))  # fmt: skip
        w = st.wal
        console.print(f"WAL: {_v(w.files) or 'not listed'} files, {_mb(w.size_bytes)} "
                      f"(max_wal_size {w.max_wal_size}, segment {w.segment_size})")  # fmt: skip
        if st.data_disk:
            d = st.data_disk
            console.print(f"data disk: {_mb(d['free_bytes'])} free of {_mb(d['total_bytes'])}")
        _notes(st.notes)

    @root.command(
        "events", epilog=example("opscore events", "opscore events --hours 24 --kind addm")
    )
    def events(
        target: str | None = TargetOpt,
        hours: float = typer.Option(1.0, "--hours", help="How far back."),
        min_elapsed_s: float = typer.Option(5.0, "--min-elapsed", help="Slow SQL threshold (s)."),
        kind: list[str] = typer.Option(None, "--kind", help="alert, addm or slow_sql (repeat)."),
        limit: int = typer.Option(100, "--limit"),
        as_json: bool = JsonOpt,
    ) -> None:
        """Performance events, newest first: alerts fired, ADDM analyses, slow SQL executions."""
        evs = api.performance_events(target, hours, min_elapsed_s, kind or None, limit)
        if as_json:
            print_json(evs)
            return
        console.print(table(
            "performance events", ["at", "kind", "target", "severity", "title", "id"],
            [[e.at.isoformat(timespec="seconds"), e.kind, e.target, e.severity, e.title,
              _v(e.ref_id)] for e in evs],
        ))  # fmt: skip
