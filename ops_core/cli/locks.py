"""`opscore locks`, `opscore deadlocks`, `opscore logs`: live locks with the blocking tree,
deadlocks (counters and the log's detail) and the server log, filtered and paged."""

from __future__ import annotations

import typer

from .. import api
from .common import JsonOpt, console, example, print_json, table

TargetOpt = typer.Option(None, "--target", "-t", help="Target name (default: the only one).")


def _cell(v):
    return "" if v is None or v != v else v  # None and NaN shown empty


def register(root: typer.Typer) -> None:
    @root.command("locks", epilog=example("opscore locks", "opscore locks --all --json"))
    def locks(
        target: str | None = TargetOpt,
        all_locks: bool = typer.Option(False, "--all", help="Every lock, not only conflicts."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Locks now: who blocks whom (tree from each root blocker) and the locks in conflict."""
        live = api.live_locks(target, all_locks=all_locks)
        if as_json:
            print_json(live)
            return
        console.print(
            f"{live.blocked_sessions} blocked sessions, {live.waiting} lock requests waiting"
            + (
                f"; root blockers: {', '.join(map(str, live.root_blockers))}"
                if live.root_blockers
                else ""
            )
        )
        if len(live.tree):
            console.print(
                table(
                    "blocking tree",
                    ["pid", "blocked by", "waiters", "user", "state", "waiting s", "query"],
                    [
                        [
                            "  " * int(r["depth"]) + str(r["pid"]),
                            ",".join(map(str, r["blocked_by"] or [])),
                            r["total_waiters"],
                            _cell(r["usename"]),
                            _cell(r["state"]),
                            round(r["waiting_s"] or 0, 1),
                            _cell(r["query"]),
                        ]
                        for _, r in live.tree.iterrows()
                    ],
                )
            )
        if len(live.locks):
            console.print(
                table(
                    "locks",
                    ["pid", "type", "mode", "granted", "relation", "user", "query"],
                    [
                        [
                            r["pid"],
                            r["locktype"],
                            r["mode"],
                            "yes" if r["granted"] else "WAIT",
                            _cell(r["relation"]),
                            _cell(r["usename"]),
                            _cell(r["query"]),
                        ]
                        for _, r in live.locks.iterrows()
                    ],  # fmt: skip
                )
            )

    @root.command("deadlocks", epilog=example("opscore deadlocks --since 2026-12-05T00:00Z"))
    def deadlocks(
        target: str | None = TargetOpt,
        since: str | None = typer.Option(None, "--since", help="Log entries from (ISO time)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Deadlocks: pg_stat_database counters and the log's "deadlock detected" entries."""
        d = api.deadlocks(target, since=since)
        if as_json:
            print_json(d)
            return
        console.print(f"{d.total} deadlocks counted (pg_stat_database, since each reset)")
        rows = [
            [r["database"], r["deadlocks"], _cell(r["stats_reset"])]
            for _, r in d.by_database.iterrows()
            if r["deadlocks"]
        ]
        if rows:
            console.print(table(None, ["database", "deadlocks", "since reset"], rows))
        if not d.log_readable:
            console.print(f"[dim]log: {d.log_reason}[/]")
        for _, e in d.events.iterrows():
            console.print(
                f"[bold]{e['time']}[/] pid {e['pid']} {e['database'] or ''}: {e['message']}"
            )
            if e["detail"]:
                console.print(f"  {e['detail']}")

    @root.command(
        "logs",
        epilog=example(
            "opscore logs --severity WARNING+ --limit 50",
            "opscore logs --since 2026-12-05T10:00Z --text 'deadlock' --json",
        ),
    )
    def logs(
        target: str | None = TargetOpt,
        since: str | None = typer.Option(None, "--since", help="From (ISO time)."),
        until: str | None = typer.Option(None, "--until", help="Until (ISO time)."),
        severity: list[str] = typer.Option(None, "--severity", help="ERROR, or WARNING+ ..."),
        database: str | None = typer.Option(None, "--database"),
        user: str | None = typer.Option(None, "--user"),
        text: str | None = typer.Option(None, "--text", help="Text in message/detail/statement."),
        limit: int = typer.Option(100, "--limit"),
        offset: int = typer.Option(0, "--offset"),
        as_json: bool = JsonOpt,
    ) -> None:
        """Server log entries, newest first (when the log is readable; else why not)."""
        page = api.server_log(
            target, since=since, until=until, severity=severity or None, database=database,
            user=user, text=text, limit=limit, offset=offset,
        )  # fmt: skip
        if as_json:
            print_json(page)
            return
        if not page.readable:
            console.print(f"[yellow]The server log cannot be read:[/] {page.reason}")
            raise typer.Exit(2)
        console.print(
            f"{page.source} ({page.format}, {page.how}): {page.matched} matching entries; "
            f"showing {page.offset + 1}-{page.offset + len(page.entries)}"
        )
        console.print(
            table(
                None,
                ["time", "severity", "pid", "user", "database", "message"],
                [
                    [
                        _cell(r["time"]),
                        r["severity"],
                        _cell(r["pid"]),
                        _cell(r["user"]),
                        _cell(r["database"]),
                        r["message"],
                    ]
                    for _, r in page.entries.iterrows()
                ],  # fmt: skip
            )
        )
