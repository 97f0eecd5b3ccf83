"""Test servers: the embedded PostgreSQL 18 by default, any server via OPSCORE_TEST_DSN.

No mocked database: every test that touches PostgreSQL talks to a real server.

Fixtures
- ``pg``: session-wide :class:`TestServer` (admin DSN, version, helpers to make databases).
- ``opscore_env``: OPSCORE_HOME in a temp dir and the repository on the test server
  (embedded default: OPSCORE_REPOSITORY_DSN unset; external: a database ``opscore_test_repo``).
- ``repo``: a freshly migrated, empty repository for one test (returns a connection): a clone
  of a template database migrated once per session (CREATE DATABASE ... TEMPLATE), not all
  migrations again for every test.
- ``target_db``: a fresh database with pg_stat_statements on the test server (its DSN).

Temporary files: everything the session writes to the temporary directory (pytest's
``tmp_path``, Prefect's home, notebook kernels, subprocesses through ``TMPDIR``) goes under one
``/tmp/opscore-tests-*`` directory removed when the process exits (kept with
``OPSCORE_TEST_KEEP_TMP=1``, to look at after a failure). Test servers' homes (short unix
socket paths) are made directly in that root, by ``tempfile.mkdtemp(dir=tempfile.gettempdir())``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

# One temporary root for the whole session, removed at exit (below): set before pytest picks
# its basetemp and before anything imports prefect. Traversable like /tmp itself, since the
# embedded server runs as its own OS user when the tests run as root.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="opscore-tests-", dir="/tmp"))
_SESSION_TMP.chmod(0o755)
os.environ["TMPDIR"] = str(_SESSION_TMP)
tempfile.tempdir = str(_SESSION_TMP)
# Prefect must not touch the user's ~/.prefect. Under pytest-xdist (``-n 2``) each worker is a
# process of its own with its own temporary root, test servers and Prefect home: a worker
# inherits the controller's environment, so a home the tests chose (marked) is replaced, one the
# user set is kept.
if os.environ.get("PREFECT_HOME", "") in ("", os.environ.get("OPSCORE_TEST_PREFECT_HOME")):
    os.environ["PREFECT_HOME"] = str(_SESSION_TMP / "prefect")
    os.environ["OPSCORE_TEST_PREFECT_HOME"] = os.environ["PREFECT_HOME"]
# the ADDM scenarios' confusion table: a test artifact kept beside the app's screenshots
_ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
_ARTIFACTS.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("OPSCORE_ADDM_TABLE", str(_ARTIFACTS / "addm-confusion.jsonl"))


def _remove_session_tmp() -> None:
    if os.environ.get("OPSCORE_TEST_KEEP_TMP"):
        (_SESSION_TMP / _OWNER).unlink(missing_ok=True)  # kept on purpose: never reaped
        print(f"opscore tests: temporary files kept in {_SESSION_TMP}")
        return
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


# A run that is killed (SIGKILL, a CI timeout, pytest-xdist workers when the run is
# interrupted) neither tears down its fixtures nor runs atexit: its test servers keep running
# and its root stays in /tmp. Each root names the process that owns it (pid and start time);
# a later run stops the servers of roots whose owner is gone and removes them. Roots without
# the file (kept ones, other checkouts' runs) are left alone.
_OWNER = ".opscore-tests-owner"


def _process_token(pid: int) -> str:
    return f"{pid} {psutil.Process(pid).create_time():.2f}"


def _reap_orphaned_roots() -> None:
    for root in Path("/tmp").glob("opscore-tests-*"):
        try:
            pid, _ = token = (root / _OWNER).read_text().split()
            alive = _process_token(int(pid)) == " ".join(token)
        except (OSError, ValueError):
            continue  # no owner file: not ours to judge
        except psutil.Error:
            alive = False
        if alive:
            continue
        postmasters = []
        for pidfile in root.glob("**/postmaster.pid"):
            try:
                proc = psutil.Process(int(pidfile.read_text().split()[0]))
                if "postgres" in proc.name():
                    proc.send_signal(signal.SIGINT)  # fast shutdown
                    postmasters.append(proc)
            except (OSError, ValueError, IndexError, psutil.Error):
                pass
        psutil.wait_procs(postmasters, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _terminated(signum, frame) -> None:
    # SIGTERM (a CI step's timeout, `kill`) ends the run as Ctrl-C does: pytest tears down the
    # session's fixtures (the test servers stop) and atexit removes the root
    raise KeyboardInterrupt


_reap_orphaned_roots()
(_SESSION_TMP / _OWNER).write_text(_process_token(os.getpid()))
try:
    signal.signal(signal.SIGTERM, _terminated)
except ValueError:  # not the main thread: leave the default
    pass


# at exit, registered first so it runs last: after Prefect's test harness removed its own
# directory in there (an atexit callback too)
atexit.register(_remove_session_tmp)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import psycopg  # noqa: E402
import pytest  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from ops_core.config import get_settings, reset_settings_cache  # noqa: E402
from ops_core.targets.embedded import EmbeddedServer  # noqa: E402

from .helpers import RepositoryTemplate, reset_repository, set_repository_template  # noqa: E402

#: Modules whose tests judge a diagnosis from what the machine measured (ADDM on injected
#: faults, the ML detector on a captured healthy-then-fault run): another suite's load on the
#: same machine lands in their "healthy" phases, so they are marked ``exclusive`` and CI runs
#: them alone, after the rest of both suites ran side by side.
EXCLUSIVE_MODULES = frozenset(
    {
        "test_addm_scenarios.py",
        "test_addm_scenarios_wide.py",
        "test_addm_server_scenarios.py",
        "test_addm_horizon.py",
        "test_addm_sql_shapes.py",
        "test_ml.py",
        "test_demo.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that need Prefect's test server (20-130 s to start here) or headless Chromium are
    slow wherever they are: ``pytest -m "not slow"`` (the fast tier) leaves them out.

    With ``OPSCORE_TEST_SERVER_TESTS_ONLY=1`` only the tests that talk to the test server (the
    ``pg`` fixture) run: CI's pass on a second server (PostgreSQL 15) skips what does not depend
    on the server and already ran in the first pass (unit tests, the demo and the throw-away
    embedded servers some tests start themselves)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "prefect_harness" in fixtures or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
        if item.path.name in EXCLUSIVE_MODULES:
            item.add_marker(pytest.mark.exclusive)
    if os.environ.get("OPSCORE_TEST_SERVER_TESTS_ONLY") == "1":
        keep = [i for i in items if "pg" in getattr(i, "fixturenames", ())]
        dropped = [i for i in items if "pg" not in getattr(i, "fixturenames", ())]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


@dataclass
class TestServer:
    admin_dsn: str
    version_num: int
    embedded: EmbeddedServer | None

    @property
    def major(self) -> int:
        return self.version_num // 10000

    def dsn(self, dbname: str) -> str:
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_dsn, autocommit=True, application_name="opscore-tests")

    def create_database(self, prefix: str = "t", pgss: bool = True) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = self.dsn(name)
        if pgss:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return dsn

    def drop_database(self, dsn: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _short_tmp(prefix: str) -> Path:
    # unix socket paths must stay short: test homes directly under the session's root in /tmp
    return Path(tempfile.mkdtemp(prefix=prefix, dir=_SESSION_TMP))


@pytest.fixture(scope="session")
def pg() -> Iterator[TestServer]:
    external = os.environ.get("OPSCORE_TEST_DSN")
    if external:
        with psycopg.connect(external, autocommit=True) as conn:
            v = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0]
        yield TestServer(external, v, None)
        return
    home = _short_tmp("ops-pg-")
    server = EmbeddedServer(home)
    server.start()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        v = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0]
    try:
        yield TestServer(server.conninfo(), v, server)
    finally:
        server.destroy()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def opscore_env(pg: TestServer) -> Iterator[dict[str, str]]:
    saved = {k: os.environ.get(k) for k in ("OPSCORE_HOME", "OPSCORE_REPOSITORY_DSN")}
    if pg.embedded is not None:
        home = str(pg.embedded.home)
        os.environ.pop("OPSCORE_REPOSITORY_DSN", None)
    else:
        home = str(_short_tmp("ops-home-"))
        # one repository database per test session, so parallel runs never share one
        repo_db = f"opscore_test_repo_{os.getpid()}"
        with pg.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(repo_db))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(repo_db)))
        os.environ["OPSCORE_REPOSITORY_DSN"] = pg.dsn(repo_db)
    os.environ["OPSCORE_HOME"] = home
    reset_settings_cache()
    template = _repository_template(pg)
    set_repository_template(template)
    try:
        yield {
            "OPSCORE_HOME": home,
            "OPSCORE_REPOSITORY_DSN": os.environ.get("OPSCORE_REPOSITORY_DSN", ""),
        }
    finally:
        set_repository_template(None)
        with pg.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(template.template)
                )
            )
        if pg.embedded is None:
            with pg.admin() as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(f"opscore_test_repo_{os.getpid()}")
                    )
                )
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings_cache()


def _repository_template(pg: TestServer) -> RepositoryTemplate:
    """Migrate a template database once; each test's repository is a clone of it."""
    from ops_core import repository

    dsn = repository.repository_dsn()  # the embedded default starts the server, makes the DB
    database = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    if pg.embedded is not None:
        assert database == get_settings().repository_database
    template = f"{database}_tpl_{os.getpid()}"
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(template))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
    with psycopg.connect(pg.dsn(template), autocommit=True) as conn:
        repository.migrate(conn)
    return RepositoryTemplate(pg.admin_dsn, database, template)


@pytest.fixture
def repo(opscore_env) -> Iterator[psycopg.Connection]:
    """An empty, freshly migrated repository (a clone of the session's migrated template)."""
    from ops_core import repository

    reset_repository()
    conn = repository.connect()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def target_db(pg: TestServer) -> Iterator[str]:
    dsn = pg.create_database("tgt")
    try:
        yield dsn
    finally:
        pg.drop_database(dsn)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test API server for the whole session (it takes ~20-30 s to start here)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
