"""The layout of the AWR, ASH, ADDM and compare reports, defined once.

Each report is a list of :class:`Section` (anchor, heading, the view call that renders it) and
each table a list of :class:`Column` (model field, heading, display format, terminal heading).
The notebook builder (``notebooks/build_notebooks.py``), the notebook views
(``reports/*_view.py``: HTML), the terminal reports (``reports/text.py``: ``--format text``)
and the app read these, so a label or unit is changed in one place.

Display formats are those of :func:`ops_core.model.formats.fmt`: ``int``, ``num``, ``ms``,
``s``, ``pct``, ``mb`` (bytes shown in MB), ``blocks_mb`` (8 kB blocks shown in MB),
``bytes``, ``time``, ``clock``, ``text``, ``query`` (SQL text, folded in HTML: its heading says
how to unfold it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .display import Col

#: the unit a display format shows, for headings and API docs
UNITS = {
    "int": "count",
    "num": "",
    "ms": "ms",
    "s": "s",
    "pct": "%",
    "mb": "MB",
    "blocks_mb": "MB",
    "bytes": "bytes",
    "time": "UTC",
    "clock": "UTC",
}


@dataclass(frozen=True)
class Column:
    field: str  # the model's column
    label: str  # heading in the HTML report and the app
    kind: str  # display format (display.fmt)
    short: str | None = None  # heading in the terminal, when narrower than ``label``

    @property
    def unit(self) -> str:
        return UNITS.get(self.kind, "")

    @property
    def html(self) -> Col:
        return (self.field, self.label, self.kind)

    @property
    def text(self) -> Col:
        return (self.field, self.short or self.label, self.kind)


def C(field: str, label: str, kind: str = "text", short: str | None = None) -> Column:  # noqa: N802
    return Column(field, label, kind, short)


def html(cols: Iterable[Column]) -> list[Col]:
    """Column specs for ``display.show_table`` / ``table_html``."""
    return [c.html for c in cols]


def text(cols: Iterable[Column]) -> list[Col]:
    """Column specs for the terminal tables of ``reports.text``."""
    return [c.text for c in cols]


def pick(cols: Sequence[Column], *fields: str) -> list[Column]:
    """The columns named ``fields``, in that order."""
    by = {c.field: c for c in cols}
    return [by[f] for f in fields]


def renamed(col: Column, field: str) -> Column:
    """The same column (heading, format) over another model's field name."""
    return replace(col, field=field)


def labels(cols: Iterable[Column]) -> dict[str, str]:
    """field -> heading (the app's column headers)."""
    return {c.field: c.label for c in cols}


@dataclass(frozen=True)
class Section:
    anchor: str  # HTML id of the heading (table of contents links)
    title: str
    call: str  # the notebook code that renders it (a view function of the report's view)


# ============================================================================== AWR
AWR_SECTIONS: list[Section] = [
    Section("addm", "ADDM findings", "view.addm(r)"),
    Section("load-profile", "Load profile", "view.load_profile(r)"),
    Section("host", "Host / OS", "view.host(r)"),
    Section("efficiency", "Instance efficiency", "view.efficiency(r)"),
    Section("time-model", "Time model", "view.time_model(r)"),
    Section("top-waits", "Top wait events", "view.top_waits(r)"),
    Section("background", "Background activity (not DB time)", "view.background(r)"),
    Section("top-sql", "Top SQL", "view.top_sql_all(r)"),
    Section("io", "I/O by backend type (pg_stat_io)", "view.io(r)"),
    Section("objects-io", "I/O by table and index", "view.objects_io(r)"),
    Section("indexes", "Index usage and size", "view.index_usage(r)"),
    Section("tables", "Table activity", "view.table_activity(r)"),
    Section(
        "checkpoints-wal", "Checkpoints, background writer and WAL", "view.checkpoints_wal(r)"
    ),  # fmt: skip
    Section("settings", "Settings and resets", "view.settings_resets(r)"),
]

LOAD_PROFILE = [
    C("metric", "metric"),
    C("total", "total", "num"),
    C("per_second", "per second", "num", "per s"),
    C("per_transaction", "per transaction", "num", "per tx"),
]
EFFICIENCY = [C("metric", "metric"), C("value_pct", "%", "pct"), C("detail", "detail")]
TIME_MODEL = [
    C("component", "component"),
    C("time_s", "time (s)", "s"),
    C("pct_of_db_time", "% of DB time", "pct"),
    C("source", "source"),
]
DB_TIME_CHECK = [
    C("component", "component"),
    C("time_s", "time (s)", "s"),
    C("effect", "where it counts"),
    C("detail", "from the data"),
]
#: DB time, share and average active sessions of one ASH dimension (AWR time model and waits)
AWR_SHARE = [
    C("db_time_s", "DB time (s)", "s", "DB time s"),
    C("pct", "% of sampled DB time", "pct", "%"),
    C("avg_active_sessions", "avg active sessions", "num", "AAS"),
]
AWR_CLASSES = [C("wait_class", "wait class", short="class"), *AWR_SHARE]
AWR_WAITS = [C("wait_class", "wait class", short="class"), C("event", "event"), *AWR_SHARE]
BACKGROUND = [
    C("backend_type", "process"),
    C("wait_class", "wait class", short="class"),
    C("event", "event"),
    C("time_s", "time (s)", "s", "time s"),
    C("samples", "samples", "int"),
]
TOP_SQL = [
    C("rank", "#", "int"),
    C("share_pct", "share of the ranked metric %", "pct", "share %"),
    C("pct_db_time", "% of DB time (ASH)", "pct", "% DB time"),
    C("total_exec_time", "elapsed (ms)", "ms", "elapsed ms"),
    C("calls", "calls", "int"),
    C("mean_exec_time", "per call (ms)", "ms", "ms/call"),
    C("cpu_time", "exec less I/O (ms)", "ms", "CPU-ish ms"),
    C("io_time", "I/O time (ms)", "ms", "I/O ms"),
    C("total_plan_time", "planning (ms)", "ms", "plan ms"),
    C("rows", "rows", "int"),
    C("shared_blks_fetched", "shared fetched (blocks)", "int", "blks fetched"),
    C("shared_blks_read", "shared read (blocks)", "int", "blks read"),
    C("shared_blks_dirtied", "shared dirtied (blocks)", "int", "blks dirtied"),
    C("temp_blks_written", "temp written (MB)", "blocks_mb", "temp MB"),
    C("wal_bytes", "WAL (MB)", "mb", "WAL MB"),
    C("query", "SQL text", "query", "SQL"),
    C("datname", "database"),
    C("username", "user"),
    C("queryid", "query id"),
]
#: the measures a top-SQL table always shows besides its own ranked column
TOP_SQL_ALWAYS = ("total_exec_time", "calls", "mean_exec_time", "rows", "shared_blks_read")
#: top-SQL rankings in the terminal report
TOP_SQL_TEXT = {"elapsed": "by elapsed", "reads": "by blocks read", "temp": "by temp"}


def top_sql_columns(ranked: str) -> list[Column]:
    """The HTML columns of one top-SQL table: rank, shares, the always-shown measures and the
    ranked one (in their place), SQL text and who ran it."""
    keep = {"rank", "share_pct", "pct_db_time", ranked, *TOP_SQL_ALWAYS}
    keep |= {"temp_blks_written", "wal_bytes", "query", "datname", "username", "queryid"}
    return [c for c in TOP_SQL if c.field in keep]


def top_sql_text_columns(ranked: str) -> list[Column]:
    """The terminal columns of one top-SQL table."""
    return pick(TOP_SQL, "rank", "share_pct", "pct_db_time", ranked, "calls", "mean_exec_time",
                "query")  # fmt: skip


IO = [
    C("backend_type", "backend type"),
    C("object", "object"),
    C("context", "context"),
    C("reads", "reads", "int"),
    C("read_bytes", "read (MB)", "mb"),
    C("read_time", "read time (ms)", "ms"),
    C("writes", "writes", "int"),
    C("write_bytes", "written (MB)", "mb"),
    C("write_time", "write time (ms)", "ms"),
    C("extends", "extends", "int"),
    C("hits", "hits", "int"),
    C("evictions", "evictions", "int"),
    C("fsyncs", "fsyncs", "int"),
]
TABLE_IO = [
    C("datname", "database"),
    C("schemaname", "schema"),
    C("relname", "table"),
    C("heap_blks_read", "heap read (blocks)", "int"),
    C("heap_blks_hit", "heap hit (blocks)", "int"),
    C("idx_blks_read", "index read (blocks)", "int"),
    C("idx_blks_hit", "index hit (blocks)", "int"),
]
INDEX_IO = [
    C("datname", "database"),
    C("relname", "table"),
    C("indexrelname", "index"),
    C("idx_scan", "scans", "int"),
    C("idx_tup_read", "tuples read", "int"),
    C("idx_blks_read", "read (blocks)", "int"),
    C("idx_blks_hit", "hit (blocks)", "int"),
    C("index_bytes", "size (MB)", "mb"),
]
UNUSED_INDEXES = [
    C("datname", "database"),
    C("schemaname", "schema"),
    C("relname", "table"),
    C("indexrelname", "index"),
    C("index_bytes", "size (MB)", "mb"),
    C("idx_blks_hit", "hit (blocks, maintenance)", "int"),
]
TABLE_ACTIVITY = [
    C("datname", "database"),
    C("schemaname", "schema"),
    C("relname", "table"),
    C("seq_scan", "seq scans", "int"),
    C("seq_tup_read", "rows seq read", "int"),
    C("idx_scan", "index scans", "int"),
    C("idx_tup_fetch", "rows index fetched", "int"),
    C("n_tup_ins", "inserted", "int"),
    C("n_tup_upd", "updated", "int"),
    C("n_tup_hot_upd", "HOT updated", "int"),
    C("n_tup_del", "deleted", "int"),
    C("n_live_tup", "live rows (end)", "int"),
    C("n_dead_tup", "dead rows (end)", "int"),
    C("vacuum_count", "vacuums", "int"),
    C("autovacuum_count", "autovacuums", "int"),
    C("analyze_count", "analyzes", "int"),
    C("autoanalyze_count", "autoanalyzes", "int"),
]
METRIC_VALUE = [C("metric", "metric"), C("value", "value", "num"), C("unit", "unit")]
SETTINGS_CHANGED = [
    C("name", "setting", short="name"),
    C("before", "before"),
    C("after", "after"),
    C("unit", "unit"),
]
SETTINGS = [
    C("name", "setting"),
    C("setting", "value"),
    C("unit", "unit"),
    C("source", "source"),
    C("changed", "changed"),
]
RESETS = [C("snapshot_id", "snapshot", "int"), C("source", "source"), C("reason", "reason")]

# ============================================================================== ASH
ASH_SECTIONS: list[Section] = [
    Section(
        "activity", "Activity over time", "view.ash_activity(r, api.host_cpu_count(target, r.end))"
    ),  # fmt: skip
    Section("events", "Top wait events", "view.ash_events(r)"),
    Section("background", "Background activity (not DB time)", "view.ash_background(r)"),
    Section("sql", "Top SQL", "view.ash_sql(r)"),
    Section("sql-profiles", "Wait profile per SQL", "view.ash_sql_profiles(r)"),
    Section("sessions", "Top sessions", "view.ash_sessions(r)"),
    Section("dimensions", "Top users, applications and databases", "view.ash_dimensions(r)"),
    Section("blocking", "Blocking chains", "view.ash_blocking(r)"),
]
SHARE = [
    C("db_time_s", "DB time (s)", "s", "DB time s"),
    C("pct", "% of DB time", "pct", "%"),
    C("avg_active_sessions", "avg active sessions", "num", "AAS"),
]
ASH_CLASSES = [C("wait_class", "wait class", short="class"), *SHARE]
ASH_EVENTS = [C("wait_class", "wait class", short="class"), C("event", "event"), *SHARE]
ASH_SQL = [
    C("query_id", "query id"),
    *SHARE,
    C("samples", "samples", "int"),
    C("query", "SQL text", "query", "SQL"),
]
ASH_SQL_PROFILE_HEAD = [
    C("query_id", "query id"),
    C("db_time_s", "DB time (s)", "s"),
    C("top_event", "top event"),
]
ASH_SQL_PROFILE_TAIL = [C("query", "SQL text", "query")]
ASH_SESSIONS = [
    C("pid", "pid"),
    C("usename", "user"),
    C("application_name", "application", short="app"),
    C("backend_start", "backend start (UTC)", "time"),
    *SHARE,
]
ASH_USERS = [C("usename", "user"), *SHARE]
ASH_APPS = [C("application_name", "application"), *SHARE]
ASH_DATABASES = [C("datname", "database"), *SHARE]
#: the ASH report's table for each way DB time is ranked (api.ASH_TOP_DIMENSIONS; the app)
ASH_TOP = {
    "event": ASH_EVENTS,
    "class": ASH_CLASSES,
    "sql": ASH_SQL,
    "session": ASH_SESSIONS,
    "user": ASH_USERS,
    "app": ASH_APPS,
    "database": ASH_DATABASES,
}
ASH_BLOCKING = [
    C("root_pid", "blocker pid", short="blocker"),
    C("root_state", "blocker state", short="state"),
    C("root_user", "user"),
    C("root_application", "application"),
    C("first_seen", "from (UTC)", "clock"),
    C("last_seen", "to (UTC)", "clock"),
    C("duration_s", "blocking for (s)", "s", "for s"),
    C("max_waiters", "max waiters", "int"),
    C("waiters", "waiter pids", short="waiters"),
    C("blocked_time_s", "time lost by waiters (s)", "s", "lost s"),
    C("waiter_events", "waiter events"),
    C("root_query", "blocker's last SQL", "query", "blocker SQL"),
]

# ============================================================================== ADDM
ADDM_SECTIONS: list[Section] = [
    Section("findings", "Findings ranked by share of DB time", "view.findings(a)"),
    Section("breakdown", "DB time breakdown", "view.breakdown(a)"),
    Section("details", "Findings in detail: evidence and recommendations", "view.details(a)"),
    Section("notes", "Notes", "view.notes(a)"),
]

ADDM_SHARE = [C("db_time_s", "DB time (s)", "s"), C("pct", "% of DB time", "pct")]
#: DB time breakdown of an analysis: (heading, breakdown key, columns)
ADDM_BREAKDOWN: list[tuple[str, str, list[Column]]] = [
    ("Wait classes", "wait_class",
     [C("wait_class", "wait class"), *ADDM_SHARE, C("samples", "samples", "int")]),
    ("Wait events", "event", [C("wait_class", "wait class"), C("event", "event"), *ADDM_SHARE]),
    ("SQL", "sql",
     [C("queryid", "query id"), C("calls", "calls", "int"), *ADDM_SHARE,
      C("query", "SQL text", "query")]),
    ("Objects (a statement's time counts for each table it reads)", "object",
     [C("object", "object"), *ADDM_SHARE]),
    ("Sessions", "session",
     [C("pid", "pid"), C("usename", "user"), C("application_name", "application"),
      *ADDM_SHARE]),
]  # fmt: skip
#: the stored analyses of a target (api.list_addm; the app's list)
ADDM_RUNS = [
    C("analysis_id", "analysis"),
    C("snapshots", "snapshots"),
    C("begin_at", "from (UTC)", "time"),
    C("end_at", "to (UTC)", "time"),
    C("db_time_s", "DB time (s)", "s"),
    C("ash_samples", "ASH samples", "int"),
    C("top_finding", "top finding"),
]

# ============================================================================== Performance Hub
_SQL = {c.field: c for c in TOP_SQL}
#: api.top_statements (the hub's top SQL): the AWR report's columns under the api's names
HUB_TOP_SQL = [
    _SQL["queryid"],
    renamed(_SQL["query"], "query"),
    _SQL["calls"],
    renamed(_SQL["total_exec_time"], "total_ms"),
    _SQL["pct_db_time"],
    C("pct_sql_time", "% of SQL time (cross-check)", "pct"),
    renamed(_SQL["mean_exec_time"], "mean_ms"),
    C("rows_per_call", "rows per call", "num1"),
    C("blks_per_call", "blocks per call", "num1"),
    C("hit_pct", "cache hit %", "pct"),
    renamed(_SQL["io_time"], "read_ms"),
    _SQL["temp_blks_written"],
    _SQL["wal_bytes"],
    _SQL["datname"],
    _SQL["username"],
]
#: api.statement_history: one statement per snapshot interval
HUB_HISTORY = [
    C("snapshot_id", "snapshot"),
    C("captured_at", "end of interval (UTC)", "time"),
    _SQL["calls"],
    C("calls_per_s", "calls per second", "num"),
    _SQL["total_exec_time"],
    C("mean_ms", "per call (ms)", "ms"),
    _SQL["rows"],
    _SQL["shared_blks_read"],
    C("shared_blks_hit", "shared hit (blocks)", "int"),
]
#: api.object_io's tables
HUB_TABLES = [
    *pick(TABLE_ACTIVITY, "datname", "schemaname", "relname", "seq_scan", "idx_scan",
          "n_tup_ins", "n_tup_upd", "n_tup_del"),
    C("blks_read", "read (blocks)", "int"),
    C("blks_hit", "hit (blocks)", "int"),
    C("hit_pct", "cache hit %", "pct"),
    C("total_bytes", "size (MB)", "mb"),
]  # fmt: skip
#: api.object_io's indexes
HUB_INDEXES = [*INDEX_IO[:1], C("schemaname", "schema"), *INDEX_IO[1:]]

# ============================================================================== compare
COMPARE_SECTIONS: list[Section] = [
    Section("differences", "Differences that matter, ranked", "view.compare_differences(r)"),
    Section("load", "Load profile", "view.compare_load(r)"),
    Section("sql", "SQL", "view.compare_sql(r)"),
    Section("waits", "Wait classes (ASH)", "view.compare_waits(r)"),
    Section("io", "I/O (pg_stat_io)", "view.compare_io(r)"),
]
COMPARE_DIFFERENCES = [
    C("kind", "kind"),
    C("subject", "what"),
    C("period1", "period 1"),
    C("period2", "period 2"),
    C("change", "change"),
    C("score", "DB time at stake (s)", "num"),
]
COMPARE_LOAD = [
    C("metric", "metric"),
    C("per_second_1", "period 1 per second", "num", "period 1"),
    C("per_second_2", "period 2 per second", "num", "period 2"),
    C("change_pct", "change %", "pct"),
    C("per_transaction_1", "period 1 per transaction", "num"),
    C("per_transaction_2", "period 2 per transaction", "num"),
]
#: the terminal shows per-second load only
COMPARE_LOAD_TEXT = ("metric", "per_second_1", "per_second_2", "change_pct")
COMPARE_SLOWER = [
    C("queryid", "query id"),
    C("mean_ms_1", "period 1 (ms/call)", "ms"),
    C("mean_ms_2", "period 2 (ms/call)", "ms"),
    C("ratio", "ratio", "num"),
    C("extra_ms", "extra time in period 1 (ms)", "ms"),
    C("calls_1", "calls 1", "int"),
    C("calls_2", "calls 2", "int"),
    C("query", "SQL text", "query"),
]
COMPARE_ONE_SIDE = [
    C("queryid", "query id"),
    C("total_exec_time", "elapsed (ms)", "ms"),
    C("calls", "calls", "int"),
    C("mean_exec_time", "per call (ms)", "ms"),
    C("query", "SQL text", "query"),
]
COMPARE_TOP_SQL = [
    C("queryid", "query id"),
    C("total_exec_time_1", "elapsed 1 (ms)", "ms"),
    C("total_exec_time_2", "elapsed 2 (ms)", "ms"),
    C("total_exec_time_pct_1", "% of SQL time 1", "pct"),
    C("total_exec_time_pct_2", "% of SQL time 2", "pct"),
    C("calls_1", "calls 1", "int"),
    C("calls_2", "calls 2", "int"),
    C("mean_exec_time_1", "ms/call 1", "ms"),
    C("mean_exec_time_2", "ms/call 2", "ms"),
    C("query", "SQL text", "query"),
]
#: the compare model's (api.compare_periods) change of the ranked SQL measure, for the app
COMPARE_DELTA = C("delta", "change (ms)", "ms")
COMPARE_WAITS = [
    C("wait_class", "wait class"),
    C("db_time_s_1", "DB time 1 (s)", "s"),
    C("db_time_s_2", "DB time 2 (s)", "s"),
    C("change_s", "change (s, at period 1's length)", "s"),
    C("pct_1", "share 1 %", "pct"),
    C("pct_2", "share 2 %", "pct"),
    C("shift_points", "shift (points)", "num1"),
]
COMPARE_IO = [
    C("backend_type", "backend type"),
    C("object", "object"),
    C("context", "context"),
    C("reads_1", "reads 1", "int"),
    C("reads_2", "reads 2", "int"),
    C("writes_1", "writes 1", "int"),
    C("writes_2", "writes 2", "int"),
    C("hits_1", "hits 1", "int"),
    C("hits_2", "hits 2", "int"),
]
COMPARE_RESETS = [C("period", "period", "int"), *RESETS]

#: display format -> Streamlit NumberColumn format (the app's tables)
APP_FORMATS = {
    "int": "localized",
    "num": "%,.2f",
    "num1": "%,.1f",
    "ms": "%,.1f",
    "s": "%,.2f",
    "pct": "%.1f %%",
    "mb": "%,.2f",
    "blocks_mb": "%,.2f",
}

SECTIONS: dict[str, list[Section]] = {
    "awr": AWR_SECTIONS,
    "ash": ASH_SECTIONS,
    "addm": ADDM_SECTIONS,
    "compare": COMPARE_SECTIONS,
}
