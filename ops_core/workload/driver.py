"""Workload driver: pgbench and a generated OLTP mix on the ``demo`` shop schema.

Both run real load for a duration against a DSN that may write (an admin or workload role on a
database you own, never a monitoring session), name their sessions like an application
(``demo-app`` by default) and return what really ran: pgbench's own report, or per-kind counts
of the statements the shop threads executed.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from .. import commands
from ..errors import InvalidInput
from ..targets.connection import parse_dsn
from ..targets.embedded import bin_dir
from .schema import CUSTOMERS_PER_SCALE, SHOP_STATEMENTS, setup_shop_schema
from .sessions import DEFAULT_APPLICATION_NAME, check_application_name, workload_connect

# ---------------------------------------------------------------------------- pgbench


@dataclass
class PgbenchProgress:
    """One ``-P`` line: figures over the last interval."""

    elapsed_s: float
    tps: float
    latency_ms: float
    stddev_ms: float | None
    failed: int | None
    lag_ms: float | None = None


@dataclass
class PgbenchResult:
    """pgbench's final report (``failed`` is None when the pgbench version does not report it)."""

    clients: int
    threads: int
    duration_s: float
    transactions: int
    failed: int | None
    tps: float
    latency_avg_ms: float | None
    latency_stddev_ms: float | None
    scripts: list[str]
    pgbench: str
    progress: list[PgbenchProgress] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


_PROGRESS = re.compile(
    r"progress: (?P<t>[\d.]+) s, (?P<tps>[\d.]+) tps, lat (?P<lat>[\d.]+|NaN) ms "
    r"stddev (?P<sd>[\d.]+|NaN)(?:, (?P<failed>\d+) failed)?(?:, lag (?P<lag>[\d.]+) ms)?"
)


def parse_progress(line: str) -> PgbenchProgress | None:
    m = _PROGRESS.search(line)
    if not m:
        return None

    def num(v: str | None) -> float | None:
        return None if v is None or v == "NaN" else float(v)

    return PgbenchProgress(
        elapsed_s=float(m["t"]),
        tps=float(m["tps"]),
        latency_ms=num(m["lat"]) or 0.0,
        stddev_ms=num(m["sd"]),
        failed=int(m["failed"]) if m["failed"] is not None else None,
        lag_ms=num(m["lag"]),
    )


def _report_value(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1) if m else None


def pgbench_path(server_version_num: int | None = None) -> Path:
    """pgbench of the server's own major when installed (Debian layout), else the wheel's."""
    if server_version_num:
        own = Path(f"/usr/lib/postgresql/{server_version_num // 10000}/bin/pgbench")
        if own.exists():
            return own
    return bin_dir() / "pgbench"


def _server_version(dsn: str, application_name: str) -> int:
    with workload_connect(dsn, application_name=application_name) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return int(row[0])


def _pgbench_conn(dsn: str, application_name: str) -> tuple[str, dict[str, str]]:
    """Conninfo for pgbench's dbname argument without the password (it goes in PGPASSWORD)."""
    params = parse_dsn(dsn)
    env: dict[str, str] = {}
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = password
    params["application_name"] = check_application_name(application_name)
    return make_conninfo(**params), env


def has_pgbench_tables(dsn: str, application_name: str = DEFAULT_APPLICATION_NAME) -> bool:
    """Whether ``pgbench -i`` has run in this database (pgbench_accounts exists)."""
    with workload_connect(dsn, application_name=application_name) as conn:
        row = conn.execute("SELECT to_regclass('pgbench_accounts') IS NOT NULL").fetchone()
    return bool(row and row[0])


def pgbench_init(
    dsn: str,
    scale: int = 1,
    *,
    application_name: str = DEFAULT_APPLICATION_NAME,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 600,
) -> None:
    """``pgbench -i`` (server-side data generation): pgbench_accounts holds 100,000 x scale."""
    if not 1 <= scale <= 10_000:
        raise InvalidInput(f"pgbench scale {scale} is out of range.", "Give 1 to 10000.")
    conninfo, env = _pgbench_conn(dsn, application_name)
    exe = pgbench_path(_server_version(dsn, application_name))
    commands.run(
        [exe, "-i", "-I", "dtGvp", "-s", str(scale), "-q", conninfo],
        env=env,
        on_line=on_line or (lambda _line: None),
        timeout=timeout,
    )


def run_pgbench(
    dsn: str,
    *,
    duration_s: float = 10,
    clients: int = 4,
    threads: int = 2,
    rate: float | None = None,
    builtin: str | None = "tpcb-like",
    scripts: Sequence[str | tuple[str, int]] = (),
    protocol: str = "simple",
    application_name: str = DEFAULT_APPLICATION_NAME,
    on_progress: Callable[[PgbenchProgress], None] | None = None,
) -> PgbenchResult:
    """Run pgbench for ``duration_s`` seconds and return its report.

    ``builtin`` is a pgbench built-in script (``tpcb-like``, ``simple-update``,
    ``select-only``; None for custom scripts only); ``scripts`` are custom script texts, each
    optionally with a weight ``(text, weight)``. The built-in scripts need ``pgbench_init``
    first. ``rate`` throttles to that many transactions per second (``-R``).
    """
    if duration_s < 1 or clients < 1 or threads < 1:
        raise InvalidInput(
            "pgbench needs duration >= 1 s, clients >= 1 and threads >= 1.",
            "Example: duration 10, clients 4, threads 2.",
        )
    if builtin is None and not scripts:
        raise InvalidInput("Nothing to run: no built-in and no custom script.", "Give one.")
    threads = min(threads, clients)
    conninfo, env = _pgbench_conn(dsn, application_name)
    exe = pgbench_path(_server_version(dsn, application_name))
    args: list[str] = [
        str(exe), "-c", str(clients), "-j", str(threads), "-T", str(int(duration_s)),
        "-P", "1", f"--protocol={protocol}",
    ]  # fmt: skip
    if rate:
        args += ["-R", str(rate)]
    names: list[str] = []
    if builtin:
        args += ["-b", builtin]
        names.append(f"builtin:{builtin}")
    else:
        args.append("-n")  # no pgbench tables to vacuum
    progress: list[PgbenchProgress] = []

    def on_line(line: str) -> None:
        p = parse_progress(line)
        if p is not None:
            progress.append(p)
            if on_progress:
                on_progress(p)

    with tempfile.TemporaryDirectory(prefix="opscore-pgbench-") as tmp:
        for i, item in enumerate(scripts):
            text, weight = (item, 1) if isinstance(item, str) else item
            path = Path(tmp) / f"script{i}.sql"
            path.write_text(text if text.endswith("\n") else text + "\n")
            args += ["-f", f"{path}@{weight}"]
            names.append(f"custom{i}@{weight}")
        res = commands.run([*args, conninfo], env=env, on_line=on_line, timeout=duration_s + 120)
    out = res.stdout
    tx = _report_value(r"^number of transactions actually processed: (\d+)", out)
    tps = _report_value(r"^tps = ([\d.]+)", out)
    if tx is None or tps is None:
        raise commands.CommandFailed(
            "pgbench finished without a report.", returncode=res.returncode, stderr=res.stderr
        )
    failed = _report_value(r"^number of failed transactions: (\d+)", out)
    lat = _report_value(r"^latency average = ([\d.]+) ms", out)
    sd = _report_value(r"^latency stddev = ([\d.]+) ms", out)
    return PgbenchResult(
        clients=clients,
        threads=threads,
        duration_s=float(int(duration_s)),
        transactions=int(tx),
        failed=int(failed) if failed is not None else None,
        tps=float(tps),
        latency_avg_ms=float(lat) if lat else None,
        latency_stddev_ms=float(sd) if sd else None,
        scripts=names,
        pgbench=str(exe),
        progress=progress,
    )


# ---------------------------------------------------------------------------- shop mix

# kind -> weight (out of 100)
SHOP_MIX: dict[str, int] = {
    "customer_lookup": 25,
    "product_lookup": 20,
    "order_history": 15,
    "order_by_reference": 10,
    "new_order": 15,
    "update_stock": 10,
    "report_top_products": 3,
    "report_revenue_by_city": 2,
}


@dataclass
class ShopProgress:
    elapsed_s: float
    operations: int
    errors: int


@dataclass
class ShopResult:
    """What the shop threads really ran: operations per kind (``new_order`` is one transaction
    of several statements), SQL statements executed, errors per kind with a few messages."""

    clients: int
    duration_s: float
    seed: int
    operations: dict[str, int]
    statements: int
    errors: dict[str, int]
    error_samples: list[str]
    orders_created: int
    pids: list[int]

    @property
    def total_operations(self) -> int:
        return sum(self.operations.values())

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_operations"] = self.total_operations
        return d


def skewed_id(rng: random.Random, n: int) -> int:
    """1..n with a few hot ids (1 + n * u**3, u uniform)."""
    return 1 + int(n * rng.random() ** 3)


class _ShopWorker:
    def __init__(self, dsn: str, idx: int, seed: int, app: str, sizes: tuple[int, int, int]):
        self.rng = random.Random(seed * 1000 + idx)
        self.conn = workload_connect(dsn, application_name=app)
        self.pid = self.conn.info.backend_pid
        self.customers, self.products, self.orders = sizes
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []
        self.statements = 0
        self.created = 0
        kinds = list(SHOP_MIX)
        self.kinds, self.weights = kinds, [SHOP_MIX[k] for k in kinds]

    def _exec(self, kind: str, params: tuple) -> psycopg.Cursor:
        self.statements += 1
        return self.conn.execute(SHOP_STATEMENTS[kind], params)

    def step(self) -> None:
        rng = self.rng
        kind = rng.choices(self.kinds, self.weights)[0]
        try:
            if kind in ("customer_lookup", "order_history"):
                self._exec(kind, (skewed_id(rng, self.customers),)).fetchall()
            elif kind == "product_lookup":
                self._exec(kind, (skewed_id(rng, self.products),)).fetchall()
            elif kind == "order_by_reference":
                ref = f"ORD-{rng.randint(1, self.orders):09d}"
                self._exec(kind, (ref,)).fetchall()
            elif kind == "update_stock":
                self._exec(kind, (rng.randint(1, 50), skewed_id(rng, self.products)))
            elif kind == "new_order":
                self._new_order(rng)
            else:
                self._exec(kind, ()).fetchall()
            self.ops[kind] += 1
        except psycopg.Error as exc:
            self.errors[kind] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{kind}: {str(exc).strip().splitlines()[0]}")
            if self.conn.closed or self.conn.broken:
                raise

    def _new_order(self, rng: random.Random) -> None:
        lines = sorted({skewed_id(rng, self.products) for _ in range(rng.randint(1, 4))})
        qty = [rng.randint(1, 3) for _ in lines]
        with self.conn.transaction():
            cur = self._exec(
                "new_order", (skewed_id(rng, self.customers), round(rng.uniform(5, 500), 2))
            )
            row = cur.fetchone()
            assert row is not None
            order_id = row[0]
            for n, (pid, q) in enumerate(zip(lines, qty, strict=True), start=1):
                self._exec("new_order_item", (order_id, n, q, pid))
                self._exec("sell_stock", (q, pid))
        self.created += 1


def run_shop(
    dsn: str,
    *,
    duration_s: float = 10,
    clients: int = 2,
    seed: int = 1,
    scale: int = 1,
    operations_per_client: int | None = None,
    application_name: str = DEFAULT_APPLICATION_NAME,
    on_progress: Callable[[ShopProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> ShopResult:
    """Run the generated OLTP mix with ``clients`` threads for ``duration_s`` seconds (or
    until ``stop`` is set).

    Creates the ``demo`` schema at ``scale`` first if it is missing. Each thread draws its
    operations from ``random.Random(seed * 1000 + thread)``: with ``operations_per_client`` set,
    the run stops after that many operations per thread and the per-kind counts are the same on
    every run with the same seed.
    """
    if clients < 1 or clients > 200 or duration_s <= 0:
        raise InvalidInput(
            "The shop workload needs 1 to 200 clients and a positive duration.",
            "Example: --clients 4 --duration 30",
        )
    setup_shop_schema(dsn, scale, application_name=application_name)
    with workload_connect(dsn, application_name=application_name) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM demo.customers), (SELECT count(*) FROM demo.products), "
            "(SELECT last_value FROM demo.order_reference_seq)"
        ).fetchone()
    assert row is not None
    sizes = (int(row[0]) or CUSTOMERS_PER_SCALE, int(row[1]) or 1, max(1, int(row[2])))
    workers = [_ShopWorker(dsn, i, seed, application_name, sizes) for i in range(clients)]
    stop = stop or threading.Event()
    failures: list[BaseException] = []
    t0 = time.monotonic()
    deadline = t0 + duration_s

    def loop(w: _ShopWorker) -> None:
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                if operations_per_client is not None and (
                    sum(w.ops.values()) + sum(w.errors.values()) >= operations_per_client
                ):
                    return
                w.step()
        except BaseException as exc:  # noqa: BLE001 - reported in the result
            failures.append(exc)

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=1.0)
                if not t.is_alive():
                    continue
                break
            if on_progress:
                on_progress(
                    ShopProgress(
                        round(time.monotonic() - t0, 1),
                        sum(sum(w.ops.values()) for w in workers),
                        sum(sum(w.errors.values()) for w in workers),
                    )
                )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for w in workers:
            w.conn.close()
    ops: Counter[str] = Counter()
    errs: Counter[str] = Counter()
    samples: list[str] = []
    for w in workers:
        ops.update(w.ops)
        errs.update(w.errors)
        samples.extend(w.samples)
    samples.extend(f"session lost: {str(f).strip()}" for f in failures[:3])
    return ShopResult(
        clients=clients,
        duration_s=round(time.monotonic() - t0, 2),
        seed=seed,
        operations=dict(sorted(ops.items())),
        statements=sum(w.statements for w in workers),
        errors=dict(sorted(errs.items())),
        error_samples=samples[:10],
        orders_created=sum(w.created for w in workers),
        pids=[w.pid for w in workers],
    )


class BackgroundShop:
    """The shop mix running in the background while a ``with`` block runs (e.g. healthy load
    around an injected fault); ``result`` holds what ran once the block is left."""

    def __init__(
        self,
        dsn: str,
        *,
        clients: int = 2,
        seed: int = 1,
        scale: int = 1,
        application_name: str = DEFAULT_APPLICATION_NAME,
        max_duration_s: float = 3600,
    ):
        self.dsn, self.clients, self.seed, self.scale = dsn, clients, seed, scale
        self.application_name, self.max_duration_s = application_name, max_duration_s
        self.result: ShopResult | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundShop:
        setup_shop_schema(self.dsn, self.scale, application_name=self.application_name)

        def run() -> None:
            try:
                self.result = run_shop(
                    self.dsn, duration_s=self.max_duration_s, clients=self.clients,
                    seed=self.seed, scale=self.scale, application_name=self.application_name,
                    stop=self._stop,
                )  # fmt: skip
            except BaseException as exc:  # noqa: BLE001 - re-raised at exit
                self._error = exc

        self._thread = threading.Thread(target=run, name="background-shop", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._error is not None and exc_type is None:
            raise self._error
