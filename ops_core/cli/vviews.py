"""`opscore v NAME`: Oracle V$ views over PostgreSQL (session, sql, sysstat, system-event,
sesstat, lock, parameter, transaction), live."""

from __future__ import annotations

from datetime import datetime

import typer

from .. import api
from ..model.formats import isnull
from .common import JsonOpt, console, example, print_json, table

app = typer.Typer(help="Oracle V$ views over PostgreSQL: V$SESSION, V$SQL, V$SYSSTAT, ...")
TargetOpt = typer.Option(None, "--target", "-t", help="Target name (default: the only one).")


#: what a narrow terminal leaves out first (lowest priority first); every column stays in --json
DROP_FIRST = {
    "V$SESSION": [
        "XACT_START", "BACKEND_TYPE", "STATE", "LOGON_TIME", "SQL_EXEC_START", "PORT",
        "MACHINE", "SERIAL#", "TYPE", "SCHEMANAME", "PROGRAM", "SECONDS_IN_STATE",
    ],
    "V$SQL": [
        "REDO_SIZE", "DIRECT_WRITES", "PARSE_CALLS", "TEMP_BLKS_WRITTEN", "PARSING_SCHEMA_NAME",
        "DISK_READS", "PARSING_USER_NAME", "ROWS_PROCESSED", "BUFFER_GETS",
    ],
}  # fmt: skip


def _cell(x: object) -> str:
    """Ids and counts as plain integers (a pid is never '11,349' nor '11349.0'), other figures
    with two decimals, times to the second; the exact values are in --json."""
    if isnull(x):
        return ""
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() else f"{x:.2f}"
    if isinstance(x, datetime):
        return x.strftime("%Y-%m-%d %H:%M:%S")
    return str(x)


def _show(v, as_json: bool, limit: int = 200) -> None:
    if as_json:
        print_json(v)
        return
    console.print(f"[bold]{v.view}[/] on {v.target} from {v.sources}")
    console.print(f"[dim]{v.mapping}[/]")
    rows = v.rows.head(limit)
    cells = [[_cell(x) for x in r] for r in rows.itertuples(index=False)]
    cols = [str(c) for c in rows.columns]
    console.print(table(None, cols, cells, drop=DROP_FIRST.get(v.view, ())))
    if len(v.rows) > limit:
        console.print(f"[dim]{len(v.rows) - limit} more rows (--json for all)[/]")
    for n in v.notes:
        console.print(f"[dim]{n}[/]")


def _command(key: str, fn) -> None:
    name = key.replace("_", "-")

    @app.command(name, epilog=example(f"opscore v {name}", f"opscore v {name} -t prod --json"))
    def cmd(target: str | None = TargetOpt, as_json: bool = JsonOpt) -> None:
        _show(fn(target), as_json)

    cmd.__doc__ = f"{api.V_VIEWS[key][0]}: {api.V_VIEWS[key][1]}."


for _key, _fn in (
    ("session", api.v_session),
    ("sql", api.v_sql),
    ("sysstat", api.v_sysstat),
    ("system_event", api.v_system_event),
    ("sesstat", api.v_sesstat),
    ("lock", api.v_lock),
    ("transaction", api.v_transaction),
):
    _command(_key, _fn)


@app.command("parameter", epilog=example("opscore v parameter --name '%mem%'"))
def parameter(
    target: str | None = TargetOpt,
    name: str | None = typer.Option(None, "--name", help="A LIKE pattern (case-insensitive)."),
    as_json: bool = JsonOpt,
) -> None:
    """V$PARAMETER: pg_settings."""
    _show(api.v_parameter(target, name), as_json)
