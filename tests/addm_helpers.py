"""Scenario runner for the ADDM tests: a real run (snapshot, ASH sampler, shop load + one
fault, snapshot, ADDM) and the confusion-table rows it produces."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ops_core import api
from ops_core.collectors import live
from ops_core.workload.driver import BackgroundShop
from ops_core.workload.schema import setup_shop_schema

HOLD_S = float(os.environ.get("OPSCORE_ADDM_HOLD_S", "6"))
TABLE_FILE = Path(os.environ.get("OPSCORE_ADDM_TABLE", "/tmp/opscore-addm-confusion.jsonl"))


@contextlib.contextmanager
def addm_shop(pg, target: str, prefix: str, *, history_s: float = HOLD_S):
    """A fresh repository, the shop schema in a new database registered as ``target``, and
    one healthy range of shop load before any scenario (``history_s`` seconds between two
    snapshots): the history a monitored server has, against which ADDM judges each statement.
    Yields ``(dsn, database)``; drops the database at the end."""
    from ops_core import repository

    with repository.session() as repo:
        repo.execute("DROP SCHEMA IF EXISTS opscore CASCADE")
        repository.migrate(repo)
    ensure_plan_role(pg)
    dsn = pg.create_database(prefix)
    setup_shop_schema(dsn, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    api.add_target(target, dsn)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    try:
        if history_s > 0:
            with BackgroundShop(dsn, clients=1):
                api.take_snapshot(target)
                time.sleep(history_s)
                api.take_snapshot(target)
        yield dsn, db
    finally:
        pg.drop_database(dsn)


@dataclass
class Scenario:
    name: str
    expected: str
    analysis: api.AddmAnalysis
    fault_info: Any
    expected_set: set[str] = field(default_factory=set)
    neighbour: bool = False

    @property
    def found_set(self) -> set[str]:
        """The problem finding types ADDM reported (above its threshold)."""
        return {f.type for f in self.analysis.findings if f.is_problem}

    @property
    def top(self):
        return self.analysis.findings[0]


def run_scenario(
    name: str,
    expected: str,
    target: str,
    dsn: str,
    fault: Any | None,
    *,
    database: str | None,
    hold_s: float = HOLD_S,
    clients: int = 1,
    fault_first: bool = False,
    undo_before_end: bool = False,
    after_begin: Any | None = None,
    neighbour: bool = False,
    expected_set: set[str] | None = None,
) -> Scenario:
    """Shop load (``clients`` sessions) and the fault held for ``hold_s`` seconds between two
    snapshots with the ASH sampler running (0.25 s); ADDM runs before the fault is undone, so
    live catalog reads see the period's state. With ``undo_before_end`` the fault (and the
    load) is undone before the end snapshot, as the demo and a real fix do: the live catalog
    then shows the repaired state and ADDM must still diagnose what the range recorded.
    ``fault`` may be a list (compound faults); ``after_begin`` faults start after the begin
    snapshot (e.g. a table created inside the range); ``neighbour`` runs two CPU-burning
    processes beside it all (a busy server)."""
    faults = fault if isinstance(fault, list) else [fault] if fault is not None else []
    with contextlib.ExitStack() as outer:
        if neighbour:
            outer.enter_context(cpu_neighbour())
        stack = outer.enter_context(contextlib.ExitStack())
        if faults and fault_first:  # e.g. a fault that restarts the server
            for f in faults:
                stack.enter_context(f)
        if clients:
            stack.enter_context(BackgroundShop(dsn, clients=clients))
        if faults and not fault_first:
            for f in faults:
                stack.enter_context(f)
        begin = api.take_snapshot(target)
        late = (
            after_begin if isinstance(after_begin, list) else [after_begin] if after_begin else []
        )
        for f in late:
            stack.enter_context(f)
        sampler = api.ash_sampler(target, interval_s=0.25)
        sampler.start()
        try:
            time.sleep(hold_s)
        finally:
            sampler.stop()
        if undo_before_end:
            stack.close()
        end = api.take_snapshot(target)
        a = api.run_addm(target, begin.snapshot_id, end.snapshot_id, database=database)
    infos = [f.info for f in faults + late]
    sc = Scenario(name, expected, a, infos[0] if len(infos) == 1 else infos or None)
    sc.expected_set = (
        expected_set
        if expected_set is not None
        else (set() if expected == "nothing_significant" else {expected})
    )
    sc.neighbour = neighbour
    record(sc)
    return sc


def record(sc: Scenario) -> None:
    """Append the scenario's confusion-table row (expected vs top finding) to a JSONL file."""
    top = sc.top
    row = {
        "server": os.environ.get("OPSCORE_TEST_DSN") and "external" or "embedded",
        "scenario": sc.name,
        "expected": sc.expected,
        "top": top.type,
        "top_pct": top.score,
        "objects": top.objects[:3],
        "sessions": top.sessions[:3],
        "db_time_s": sc.analysis.db_time_s,
        "others": [f"{f.type} {f.score:.0f}%" for f in sc.analysis.findings[1:4]],
        "expected_set": sorted(sc.expected_set),
        "found_set": sorted(sc.found_set),
        "neighbour": sc.neighbour,
    }
    with TABLE_FILE.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def ash_event_pct(sc: Scenario, event: str) -> float:
    """Share (%) of the range's ASH DB time spent in wait ``event``, read from the stored
    samples (the ground truth a scenario judges ADDM's claim against)."""
    a = sc.analysis
    df = api.ash_db_time(a.target, a.begin_at, a.end_at, ("event",), source="samples")
    total = float(df["db_time_s"].sum()) if len(df) else 0.0
    hit = float(df.loc[df["event"] == event, "db_time_s"].sum()) if len(df) else 0.0
    return 100.0 * hit / total if total > 0 else 0.0


def describe(sc: Scenario) -> str:
    return (
        "\n".join(
            f"#{f.rank} {f.type} {f.score:.1f}% {f.title} objects={f.objects} sessions={f.sessions}"
            for f in sc.analysis.findings
        )
        + "\nnotes: "
        + " | ".join(sc.analysis.notes)
    )


@contextlib.contextmanager
def cpu_neighbour(n: int = 2):
    """``n`` CPU-burning processes (``yes > /dev/null``) for the duration: a busy server."""
    procs = [
        subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def ensure_plan_role(pg) -> None:
    """The README's set-up SQL for the least-privilege planning role (cluster-wide): without it
    nothing is planned automatically on the tests' superuser connections."""
    with pg.admin() as a:
        live.create_plan_role(a)
