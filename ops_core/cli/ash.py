"""`opscore ash ...`: active session history (sample, query, top, blockers, purge)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import typer

from .. import api
from ..errors import OpsCoreError
from ..model.serialize import to_jsonable
from ..signals import stop_on_signals
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(
    help="Active session history: sample pg_stat_activity at 1 Hz, query it, rank DB time.",
    no_args_is_help=True,
)

TargetOpt = typer.Option(
    None, "--target", "-t", help="Target name (default: the only target, or 'demo')."
)
SinceOpt = typer.Option(None, "--since", help="Range up to now: 30s, 10m, 2h, 1d (default 10m).")
BeginOpt = typer.Option(None, "--begin", help="Range start, ISO 8601 (UTC unless zoned).")
EndOpt = typer.Option(None, "--end", help="Range end, ISO 8601 (default: now).")


def _range(since: str | None, begin: str | None, end: str | None):
    if since is None and begin is None:
        since = "10m"
    return api.ash_time_range(since=since, begin=begin, end=end)


def _fmt(v) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    if v is None or pd.isna(v):
        return ""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%H:%M:%S")
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


@app.command(
    epilog=example(
        "opscore ash run",
        "opscore ash run --target prod --duration 600",
        "opscore ash run --interval 0.5 --duration 60",
        "opscore ash run --all --duration 10",
    )
)
def run(
    target: str = TargetOpt,
    every_target: bool = typer.Option(
        False,
        "--all",
        help="Sample every registered target from this one process (one connection each).",
    ),
    mode: str = typer.Option(
        "burst",
        "--mode",
        help="With --all: burst (default: all queries sent, then answers read), async or threads.",
    ),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds."),
    interval: float = typer.Option(None, "--interval", help="Seconds between samples (def. 1)."),
    include_opscore: bool = typer.Option(
        False, "--include-opscore", help="Also sample opscore's own sessions."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Sample a target (or --all) in the foreground; Ctrl-C flushes the buffered samples."""
    if every_target:
        if target:
            raise OpsCoreError("Give either --target or --all, not both.")
        _run_fleet(duration, interval, mode, include_opscore, as_json)
        return
    status = console.status("Starting the ASH sampler ...")

    def on_sample(st: api.AshRunStats) -> None:
        status.update(
            f"ASH {st.target}: {st.samples} samples, {st.last_sessions} active sessions now, "
            f"{st.rows_written} rows written, {st.rows_buffered} buffered, {st.errors} errors "
            "(Ctrl-C to stop)"
        )

    with stop_on_signals() as stop, status:
        st = api.run_ash(
            target,
            duration_s=duration,
            interval_s=interval,
            stop=stop,
            on_sample=on_sample,
            include_opscore=include_opscore or None,
        )
        st.interrupted = st.interrupted or stop.is_set()
    if as_json:
        print_json(st.as_dict())
    else:
        how = "interrupted" if st.interrupted else "done"
        last = st.last_sample_time.isoformat() if st.last_sample_time else "none"
        console.print(
            f"ASH {st.target} {how}: {st.samples} samples in {st.elapsed_s:.1f} s, "
            f"{st.rows_written} rows written, last sample {last}, {st.errors} errors"
        )
        if st.last_error:
            console.print(f"[yellow]last error:[/] {st.last_error}", highlight=False)
    if st.samples == 0 and st.errors:
        raise OpsCoreError(
            f"No sample could be taken from {st.target}: {st.last_error}",
            f"Check the target with `opscore target check {st.target}`.",
        )
    if st.rows_buffered:
        raise OpsCoreError(
            f"{st.rows_buffered} samples could not be written to the repository: {st.last_error}",
            "Check the repository (`opscore db status`, OPSCORE_REPOSITORY_DSN).",
        )


def _run_fleet(
    duration: float | None, interval: float | None, mode: str, include_opscore: bool, as_json: bool
) -> None:
    status = console.status("ASH: sampling every target from this process (Ctrl-C to stop) ...")
    with stop_on_signals() as stop, status:
        st = api.run_ash_fleet(
            duration_s=duration,
            interval_s=interval,
            mode=mode,
            stop=stop,
            include_opscore=include_opscore or None,
        )
        st.interrupted = st.interrupted or stop.is_set()
    if as_json:
        print_json(st.as_dict())
        return
    rows = [
        [n, t.state, t.samples, t.rows_written, t.missed, t.errors, t.last_error or ""]
        for n, t in st.targets.items()
    ]
    cols = ["target", "state", "samples", "rows written", "missed", "errors", "last error"]
    console.print(table(f"ASH of {len(rows)} targets ({st.mode})", cols, rows))
    p50, p99 = st.skew(0.5), st.skew(0.99)
    skew = f"skew p50 {p50:.0f} ms, p99 {p99:.0f} ms" if p50 is not None else "no samples"
    console.print(
        f"{st.samples} samples in {st.elapsed_s:.1f} s, {st.rows_written} rows written in "
        f"{st.copies} COPY, {skew}, CPU {st.cpu_s:.2f} s"
        + (" (interrupted)" if st.interrupted else "")
    )
    if st.samples == 0:
        raise OpsCoreError(
            "No target could be sampled.", "Check them with `opscore target check NAME`."
        )
    if st.rows_unwritten:
        raise OpsCoreError(
            f"{st.rows_unwritten} samples could not be written to the repository: "
            f"{st.last_flush_error}",
            "Check the repository (`opscore db status`, OPSCORE_REPOSITORY_DSN).",
        )


@app.command(
    epilog=example(
        "opscore ash query --since 10m",
        "opscore ash query --wait-class Lock --json",
        "opscore ash query --begin 2026-11-25T14:00Z --end 2026-11-25T14:05Z --queryid 42",
    )
)
def query(
    target: str = TargetOpt,
    since: str = SinceOpt,
    begin: str = BeginOpt,
    end: str = EndOpt,
    wait_class: str = typer.Option(None, "--wait-class", help="CPU, Lock, LWLock, IO, IPC, ..."),
    queryid: int = typer.Option(None, "--queryid", help="Only this query_id."),
    user: str = typer.Option(None, "--user", help="Only this role."),
    database: str = typer.Option(None, "--database", help="Only this database."),
    application: str = typer.Option(None, "--application", help="Only this application_name."),
    limit: int = typer.Option(200, "--limit", help="At most this many samples."),
    as_json: bool = JsonOpt,
) -> None:
    """List samples (both retention tiers) with filters."""
    b, e = _range(since, begin, end)
    df = api.query_ash(
        target,
        b,
        e,
        wait_class=wait_class,
        queryid=queryid,
        user=user,
        database=database,
        application=application,
        limit=limit,
    )
    if as_json:
        print_json(to_jsonable(df))
        return
    if df.empty:
        console.print(f"No ASH samples between {b:%Y-%m-%d %H:%M:%S} and {e:%H:%M:%S} UTC.")
        return
    cols = ["sample_time", "pid", "application_name", "state", "wait_class", "event"]
    cols += ["query_id", "blocking_pids", "query"]
    rows = [[_fmt(v) for v in r] for r in df[cols].itertuples(index=False)]
    for r in rows:
        r[-1] = r[-1][:60]
    console.print(table(f"ASH samples ({len(df)}, UTC times)", cols, rows))


@app.command(
    epilog=example(
        "opscore ash top",
        "opscore ash top --by sql --since 1h",
        "opscore ash top --by session --json",
    )
)
def top(
    target: str = TargetOpt,
    by: str = typer.Option("event", "--by", help="event|class|sql|session|user|app|database"),
    since: str = SinceOpt,
    begin: str = BeginOpt,
    end: str = EndOpt,
    limit: int = typer.Option(10, "--limit", help="Rows to show."),
    as_json: bool = JsonOpt,
) -> None:
    """Top contributors to DB time (seconds, weighted over raw and history samples)."""
    b, e = _range(since, begin, end)
    df = api.ash_top(target, b, e, by=by, limit=limit)
    if as_json:
        print_json(
            {
                "begin": b,
                "end": e,
                "by": by,
                "source": df.attrs.get("source"),
                "db_time_s": df.attrs.get("db_time_s"),
                "rows": to_jsonable(df),
            }
        )
        return
    if df.empty:
        console.print(f"No ASH samples between {b:%Y-%m-%d %H:%M:%S} and {e:%H:%M:%S} UTC.")
        return
    cols = [c for c in df.columns if c not in ("samples",)]
    rows = [[_fmt(v) for v in r] for r in df[cols].itertuples(index=False)]
    if "query" in cols:
        qi = cols.index("query")
        for r in rows:
            r[qi] = r[qi][:60]
    console.print(
        table(
            f"Top {by} by DB time ({df.attrs.get('db_time_s', 0):,.0f} s in range, "
            f"from {df.attrs.get('source')})",
            [TOP_HEADERS.get(c, c.replace("_", " ")) for c in cols],
            rows,
            drop=("samples", "time s"),
        )
    )


#: ash top's columns as headers (the JSON keeps the names)
TOP_HEADERS = {"query_id": "queryid", "db_time_s": "DB time s", "time_s": "time s", "pct": "%"}


@app.command(epilog=example("opscore ash blockers --since 1h", "opscore ash blockers --json"))
def blockers(
    target: str = TargetOpt,
    since: str = SinceOpt,
    begin: str = BeginOpt,
    end: str = EndOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Blocking chains: root blockers, their state and query, whom they blocked and how long."""
    b, e = _range(since, begin, end)
    df = api.blocking_chains(target, b, e)
    if as_json:
        print_json(to_jsonable(df))
        return
    if df.empty:
        console.print("No blocked session was sampled in that range.")
        return
    cols = ["root_pid", "root_state", "root_application", "first_seen", "duration_s"]
    cols += ["waiters", "blocked_time_s", "waiter_events", "root_query"]
    rows = [[_fmt(v) for v in r] for r in df[cols].itertuples(index=False)]
    console.print(table("Blocking chains (UTC)", cols, rows))


@app.command(epilog=example("opscore ash purge", "opscore ash purge --json"))
def purge(as_json: bool = JsonOpt) -> None:
    """Retention: downsample raw days past OPSCORE_ASH_RAW_RETENTION_DAYS into history (1 in
    10, weighted) and drop them; drop history past OPSCORE_ASH_HISTORY_RETENTION_DAYS."""
    res = api.purge_ash()
    if as_json:
        print_json(res)
        return
    console.print(
        f"Raw partitions dropped: {', '.join(res['raw_dropped']) or 'none'} "
        f"({res['history_added']} rows kept in history); history partitions dropped: "
        f"{', '.join(res['history_dropped']) or 'none'}; summary rows deleted: "
        f"{res['summary_deleted']}; query texts deleted: {res['texts_deleted']}"
    )


@app.command(epilog=example("opscore ash status", "opscore ash status --target prod --json"))
def status(target: str = TargetOpt, as_json: bool = JsonOpt) -> None:
    """Sampler health (newest sample of the target) and the day partitions that exist."""
    name = target or None
    last = api.last_ash_sample(name)
    parts = api.ash_partitions()
    if as_json:
        print_json({"target": name, "last_sample_time": last, "partitions": parts})
        return
    if last is None:
        console.print("No ASH sample yet: run `opscore ash run`.")
    else:
        age = (datetime.now(UTC) - last).total_seconds()
        console.print(f"Last sample {last.isoformat()} ({age:,.0f} s ago).")
    console.print(f"Raw day partitions: {', '.join(parts['raw']) or 'none'}")
    console.print(f"History day partitions: {', '.join(parts['history']) or 'none'}")
