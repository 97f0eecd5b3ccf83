"""Rules of the code that a grep can hold: no SQL in the service layer and the surfaces, no
import cycle in ops_core, and statements that change a server only in the actions module and
the fault injectors. Static: no server needed."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "ops_core"

# --------------------------------------------------------------------------- helpers


def _py(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(current: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> ops_core modules it imports (anywhere in the file, lazy imports included:
    a function-level import of a module that imports us back is still a cycle)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, path.name == "__init__.py", node)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in mods else base)
            for t in targets:
                if t in mods and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_edge(a: str, b: str) -> bool:
    # a package's __init__ importing its own submodules (and those importing siblings through
    # the package) is how Python packages are built, not a design cycle
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_import_cycle_in_ops_core():
    graph = import_graph()
    design = {m: {t for t in ts if not _is_package_edge(m, t)} for m, ts in graph.items()}
    found = cycles(design)
    assert not found, "import cycles in ops_core: " + "; ".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_cycle():
    # the check above can fail: a two-module cycle is reported
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


# ------------------------------------------------------------------- no SQL in surfaces

#: the start of a SQL statement in a string literal (after an optional /* comment */)
SQL_START = re.compile(
    r"^\s*(/\*.*?\*/\s*)?("
    r"SELECT\s|INSERT\s+INTO\s|UPDATE\s+\S+\s+SET\s|DELETE\s+FROM\s|"
    r"EXPLAIN\s*\(|EXPLAIN\s+(SELECT|ANALYZE|VERBOSE|\{)|WITH\s+\w+\s+AS\s*\()",
    re.S,
)
#: a database call on a connection or cursor
DB_CALL = re.compile(r"\.(execute|executemany|cursor)\(")

SURFACES = ("ops_core/api", "app", "flows", "ops_core/cli", "ops_core/http")
# files allowed SQL in a surface (none left)
SQL_EXCEPTIONS: set[str] = set()


def _strings(path: Path) -> list[tuple[int, str]]:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                out.append((tok.start[0], ast.literal_eval(tok.string)))
            except (ValueError, SyntaxError):  # f-strings: their literal text
                out.append((tok.start[0], tok.string))
    return out


def sql_in(path: Path) -> list[str]:
    found = []
    for line, text in _strings(path):
        if isinstance(text, str) and (SQL_START.search(text) or "/* opscore */" in text):
            found.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()[:60]!r}")
    src = path.read_text().splitlines()
    for i, line in enumerate(src, 1):
        code = line.split("#", 1)[0]
        if DB_CALL.search(code):
            found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:60]}")
    return found


def test_no_sql_in_service_layer_and_surfaces():
    found = []
    for path in _py(*SURFACES):
        if str(path.relative_to(ROOT)) in SQL_EXCEPTIONS:
            continue
        found += sql_in(path)
    assert not found, "SQL in the service layer or a surface:\n" + "\n".join(found)


def test_sql_detector_sees_sql_and_not_prose(tmp_path):
    f = tmp_path / "x.py"
    f.write_text(
        'a = "SELECT /* opscore */ 1"\n'
        'b = "UPDATE opscore.targets SET dsn = %s"\n'
        'c = "EXPLAIN without ANALYZE (nothing is executed)"\n'
        'd = "Plan (EXPLAIN)"\n'
        "conn.execute(q)\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = sql_in(f)
    finally:
        ROOT = saved
    assert len(found) == 3, found


# ------------------------------------------------- target writes: the actions module only

#: statements that change a server; executed only by ops_core/targets/actions.py and the fault
#: injectors (ops_core/workload/, which act on servers opscore owns for tests and the demo)
WRITES = re.compile(
    r"pg_terminate_backend|pg_cancel_backend|CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX|"
    r"ALTER\s+SYSTEM|REINDEX|\bVACUUM\b|\bANALYZE\b|pg_create_restore_point|"
    r"pg_(create_physical|drop)_replication_slot|--(create|drop)-slot",
)
WRITE_ALLOWED = (
    "ops_core/targets/actions.py",
    "ops_core/targets/index_actions.py",  # index Actions built there, run by actions.perform
    "ops_core/workload/",
)


EXEC_CALLS = {"execute", "executemany", "SQL"}


def executed_strings(path: Path) -> list[tuple[int, str]]:
    """String literals that reach the server: the text given to ``execute()``/``executemany()``
    or composed with ``sql.SQL()``, directly or through a name assigned in the same module.
    Advice text (recommendations, hints, docs) never passes through these calls."""
    tree = ast.parse(path.read_text(), str(path))
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    assigned.setdefault(t.id, []).append(node.value)
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name not in EXEC_CALLS:
            continue
        roots = [node.args[0]]
        if isinstance(node.args[0], ast.Name):
            roots += assigned.get(node.args[0].id, [])
        for root in roots:
            for sub in ast.walk(root):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    out.append((sub.lineno, sub.value))
    return sorted(set(out))


def executed_writes(path: Path) -> list[str]:
    found = []
    for line, text in executed_strings(path):
        if WRITES.search(text) and not re.fullmatch(r"\s*EXPLAIN\s*\(.*", text, re.S):
            found.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()[:70]!r}")
    return found


def test_write_detector_flags_executed_sql_not_advice(tmp_path):
    f = tmp_path / "x.py"
    f.write_text(
        'HINT = "ALTER SYSTEM SET track_io_timing = on"\n'
        'Q = "VACUUM (ANALYZE) t"\n'
        "conn.execute(Q)\n"
        'conn.execute(sql.SQL("CREATE INDEX {} ON t (a)").format(x))\n'
        'conn.execute("SELECT 1")\n'
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = executed_writes(f)
    finally:
        ROOT = saved
    assert [x.split(": ", 1)[0] for x in found] == ["x.py:2", "x.py:4"], found


def executed_writes_in_sql_files() -> list[str]:
    """The collectors' SQL files are read-only monitoring SQL: no server change in them."""
    found = []
    for path in sorted((PKG / "collectors").rglob("*.sql")):
        if WRITES.search(re.sub(r"--[^\n]*", "", path.read_text())):
            found.append(str(path.relative_to(ROOT)))
    return found


def test_target_writes_only_in_actions_and_fault_injectors():
    found = []
    for path in _py("ops_core", "app", "flows"):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(WRITE_ALLOWED):
            continue
        found += executed_writes(path)
    found += executed_writes_in_sql_files()
    assert not found, "server-changing SQL outside ops_core/targets/actions.py:\n" + "\n".join(
        found
    )


# ---------------------------------------------------------------------- layering

#: repository modules allowed to import a layer above them (none left: ADDM's Finding and the
#: snapshot records and delta rules live in ops_core/model)
REPOSITORY_UPWARD: dict[str, set[str]] = {}


def test_model_is_the_bottom_layer():
    graph = import_graph()
    for mod, deps in graph.items():
        if mod.startswith("ops_core.model"):
            above = {d for d in deps if not d.startswith(("ops_core.model", "ops_core.errors"))}
            assert not above, f"{mod} imports {above}"


def test_repository_does_not_import_collectors_or_analysis():
    graph = import_graph()
    found = {}
    for mod, deps in graph.items():
        if mod.startswith("ops_core.repository"):
            up = {d for d in deps if d.startswith(("ops_core.collectors", "ops_core.analysis"))}
            up -= REPOSITORY_UPWARD.get(mod, set())
            if up:
                found[mod] = up
    assert not found, f"repository modules importing collectors/analysis: {found}"


def test_surfaces_use_only_public_service_names():
    """The CLI, app and flows call ops_core.api's public names, never an area's private helper
    (a private import broke silently when the helper moved: the fuzz test caught it)."""
    offenders = []
    for folder in ("ops_core/cli", "app", "flows", "ops_core/http"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom) or not node.module:
                    continue
                mod = node.module
                if not (mod.startswith("ops_core.api") or (node.level and mod.startswith("api"))):
                    continue
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private:
                    offenders.append(f"{path.relative_to(ROOT)}: {private} from {mod}")
    assert not offenders, offenders


def test_no_cli_module_shadows_a_name_the_cli_package_imports():
    """A module ops_core/cli/X.py, once imported, becomes the attribute X of the package and
    replaces whatever cli/__init__.py imported as X (cli/api.py once shadowed ops_core.api)."""
    init = ROOT / "ops_core" / "cli" / "__init__.py"
    imported = {
        a.asname or a.name
        for node in ast.walk(ast.parse(init.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level == 2
        for a in node.names
    }
    clash = sorted(n for n in imported if (ROOT / "ops_core" / "cli" / f"{n}.py").exists())
    assert not clash, clash
    assert "api" in imported  # the rule looks at something
