"""Execute a parameterized report notebook with papermill and render it to HTML with nbconvert.

Output: ``<reports_dir>/<target>/<kind>-<begin>-<end>.html`` without code cells, with the
executed notebook kept beside it (``.ipynb``) for people who want to dig.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import get_settings
from ..errors import NotFound, OpsCoreError

# Click-to-sort for every table of the report: a few lines of vanilla JS instead of a table
# library, so reports stay self-contained files that open offline.
SORTABLE_JS = """
<script>
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('table.dataframe, table.opscore').forEach(function (table) {
    var head = table.tHead; if (!head) return;
    var ths = head.rows[head.rows.length - 1].cells;
    Array.prototype.forEach.call(ths, function (th, idx) {
      th.style.cursor = 'pointer'; th.title = 'click to sort';
      th.addEventListener('click', function () {
        var body = table.tBodies[0]; if (!body) return;
        var asc = th.dataset.sort !== 'asc'; th.dataset.sort = asc ? 'asc' : 'desc';
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (r) {
          var c = r.cells[idx]; if (!c) return '';
          var t = c.innerText.trim(); var n = parseFloat(t.replace(/[, %]|ms|MB|kB|GB|s$/g, ''));
          return isNaN(n) ? t.toLowerCase() : n;
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (typeof x === typeof y) { return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }
          return (typeof x === 'number' ? -1 : 1) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
});
</script>
<style>
  body { max-width: 1400px; margin: auto; font-family: system-ui, -apple-system, "Segoe UI",
         Roboto, sans-serif; }
  h1 { border-bottom: 3px solid #2a5d9f; padding-bottom: 4px; }
  h2 { border-bottom: 1px solid #c9d3e0; padding-bottom: 3px; margin-top: 28px; color: #1d3f6e; }
  .opscore-summary { background: #f3f7fc; border-left: 5px solid #2a5d9f; padding: 6px 16px;
                     margin: 8px 0 14px; }
  .opscore-summary h3 { margin: 6px 0; }
  .opscore-summary li { margin: 3px 0; }
  .opscore-note { padding: 6px 12px; margin: 6px 0; border-radius: 3px; font-size: 13px; }
  .opscore-note.warn { background: #fff6e0; border-left: 4px solid #e0a100; }
  .opscore-note.info { background: #eef4fb; border-left: 4px solid #6c9bd2; }
  .opscore-note.ok { background: #edf8ee; border-left: 4px solid #49a84f; }
  .opscore-empty { color: #666; font-style: italic; }
  table.opscore.kv th { text-align: left; background: #f6f8fa; position: static; width: 260px; }
  table.opscore td.text, table.opscore th.text { text-align: left; }
  table.opscore details summary { cursor: pointer; }
  table.opscore td.query { min-width: 360px; max-width: 640px; }
  table.opscore td.query code { white-space: normal; word-break: break-word; }
  table.opscore td.hl { font-weight: 600; background: #f4f8fd; }
  table.opscore th.hl { background: #d9e5f4; }
  .opscore-sub { color: #445; font-size: 15px; margin: 2px 0 8px; }
  table.opscore pre { max-width: 900px; background: #f8f8f8; padding: 6px; }
  table.dataframe, table.opscore { border-collapse: collapse; font-size: 13px; margin: 6px 0 18px; }
  table.dataframe th, table.opscore th { background: #eef2f7; position: sticky; top: 0; }
  table.dataframe td, table.dataframe th, table.opscore td, table.opscore th {
    padding: 3px 8px; border-bottom: 1px solid #e3e6ea; text-align: right; }
  table.dataframe td:first-child, table.opscore td.text { text-align: left; }
  .jp-RenderedHTMLCommon code, pre { font-size: 12px; white-space: pre-wrap; }
</style>
"""


STATIC_DIR = "_static"
# nbconvert inlines plotly.js (~4.8 MB) into the first chart's output of every report.
_PLOTLY_INLINE = re.compile(
    r"<script(?: type=\"text/javascript\")?>"
    r"(/\*\*\s*\n\* plotly\.js v(?P<version>[0-9][0-9A-Za-z.+-]*)\s*\n.*?)</script>",
    re.DOTALL,
)


def externalize_plotly(html: str, html_path: Path, static_dir: Path) -> str:
    """Move the inlined plotly.js of a rendered report into one shared file.

    The script is written once per plotly version to ``static_dir/plotly-<version>.min.js`` and
    the report references it by a relative path, so a report is a few hundred kB instead of
    ~5 MB and the folder of reports still opens offline (copy ``_static`` along with it).
    A report without an inlined plotly.js is returned unchanged.
    """
    match = _PLOTLY_INLINE.search(html)
    if match is None:
        return html
    version = match.group("version")
    script = match.group(1)
    static_dir.mkdir(parents=True, exist_ok=True)
    shared = static_dir / f"plotly-{version}.min.js"
    if not shared.exists() or shared.stat().st_size != len(script.encode("utf-8")):
        tmp = shared.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(script, encoding="utf-8")
        tmp.replace(shared)  # atomic: a report rendered beside us never reads half a file
    rel = Path(os.path.relpath(shared, html_path.parent)).as_posix()
    tag = f'<script src="{rel}" charset="utf-8"></script>'
    return html[: match.start()] + tag + html[match.end() :]


_SHARED_REF = re.compile(
    r'<script src="(?P<src>[^"]*' + STATIC_DIR + r'/plotly-[^"]+\.min\.js)" charset="utf-8">'
    r"</script>"
)


def standalone_html(html_path: Path) -> bytes:
    """The report as one self-contained file (plotly.js inlined again), for a download that
    must open offline away from the reports folder."""
    html = Path(html_path).read_text(encoding="utf-8")
    match = _SHARED_REF.search(html)
    if match is None:
        return html.encode("utf-8")
    shared = (Path(html_path).parent / match.group("src")).resolve()
    if not shared.exists():
        raise NotFound(
            f"The report {html_path} references {shared}, which is missing.",
            "Render the report again (opscore report ...) to write the shared script.",
        )
    script = shared.read_text(encoding="utf-8")
    inline = "<script>" + script + "</script>"
    return (html[: match.start()] + inline + html[match.end() :]).encode("utf-8")


def _local_kernel_manager(ipc_dir: str) -> type:
    """A kernel manager talking to its kernel over Unix sockets in a private temporary
    directory: no loopback TCP ports, and no "running over TCP without encryption" warning
    from the kernel on the user's terminal; the kernel's log goes to a file there."""
    from jupyter_client.manager import AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any):
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", str(Path(ipc_dir) / "k"))
            super().__init__(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            # The kernel's own log lines ("[IPKernelApp] ERROR | KeyboardInterrupt caught in
            # kernel" when papermill shuts it down) are not the user's business: they go to a
            # file beside the kernel's sockets; the notebook's errors come back as messages.
            with open(Path(ipc_dir) / "kernel.log", "ab") as log:
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LocalKernelManager


def _skip_iri_grammar() -> None:
    """nbformat imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it is
    installed; that package compiles some twenty Earley parsers at import (1-5 s here, more
    than the whole report). Notebooks never carry IRI-formatted fields, so the module is
    marked absent before the first jsonschema import (jsonschema then skips those two
    formats). Nothing changes when it was imported already."""
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


@dataclass
class RenderedReport:
    html: Path
    notebook: Path
    seconds: float
    execute_s: float | None = None  # papermill: kernel start, model, sections
    convert_s: float | None = None  # nbconvert to HTML and writing the file

    @property
    def path(self) -> Path:
        """The HTML report (same as ``html``)."""
        return self.html

    def as_dict(self) -> dict[str, Any]:
        return {
            "html": str(self.html),
            "notebook": str(self.notebook),
            "seconds": self.seconds,
            "execute_s": self.execute_s,
            "convert_s": self.convert_s,
        }


def notebook_path(kind: str) -> Path:
    """The packaged notebook for a report kind (awr, ash, compare, addm)."""
    root = Path(__file__).resolve().parents[2] / "notebooks"
    path = root / f"{kind}_report.ipynb"
    if not path.exists():
        try:
            path = Path(str(resources.files("notebooks").joinpath(f"{kind}_report.ipynb")))
        except ModuleNotFoundError:
            pass
    if not path.exists():
        raise NotFound(
            f"There is no report notebook for {kind!r} ({path}).", "Kinds: awr, ash, compare, addm."
        )
    return path


def _slug(value: object) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value)).strip("_") or "x"


def output_paths(
    target: str, kind: str, begin: object, end: object, reports_dir: Path | None = None
) -> tuple[Path, Path]:
    base = Path(reports_dir or get_settings().reports_dir) / _slug(target)
    stem = f"{kind}-{_slug(begin)}-{_slug(end)}"
    return base / f"{stem}.html", base / f"{stem}.ipynb"


def render(
    kind: str,
    target: str,
    begin: object,
    end: object,
    parameters: dict[str, Any],
    *,
    reports_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    kernel: bool | None = None,
) -> RenderedReport:
    """Execute ``notebooks/<kind>_report.ipynb`` with ``parameters`` and write the HTML.

    By default the cells run in this process (:mod:`.inprocess`: no kernel start, no second
    import of ops_core); ``kernel=True`` (or ``OPSCORE_REPORT_KERNEL=1``) runs them in a
    Jupyter kernel through papermill, as a notebook server would."""
    _skip_iri_grammar()
    import nbformat
    from nbconvert import HTMLExporter

    started = time.monotonic()
    src = notebook_path(kind)
    html_path, nb_path = output_paths(target, kind, begin, end, reports_dir)
    html_path, nb_path = html_path.resolve(), nb_path.resolve()
    html_path.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    say(f"executing {src.name}")
    if kernel is None:
        kernel = os.environ.get("OPSCORE_REPORT_KERNEL", "").lower() in ("1", "true", "yes")
    static_dir = html_path.parent.parent / STATIC_DIR
    head = SORTABLE_JS
    if kernel:
        _execute_kernel(kind, src, nb_path, parameters)
    else:
        from . import inprocess

        inprocess.execute(src, parameters, nb_path)
        head = inprocess.plotly_script(static_dir, html_path) + head
    executed = time.monotonic()
    say("rendering HTML")
    nb = nbformat.read(str(nb_path), as_version=4)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    body = body.replace("</head>", head + "</head>", 1)
    body = externalize_plotly(body, html_path, static_dir)
    html_path.write_text(body, encoding="utf-8")
    done = time.monotonic()
    return RenderedReport(
        html_path,
        nb_path,
        round(done - started, 2),
        round(executed - started, 2),
        round(done - executed, 2),
    )


def _execute_kernel(kind: str, src: Path, nb_path: Path, parameters: dict[str, Any]) -> None:
    import papermill

    # the kernel must import this ops_core (not another checkout installed in the venv)
    root = str(Path(__file__).resolve().parents[2])
    old_path = os.environ.get("PYTHONPATH")
    ipc_dir = tempfile.mkdtemp(prefix="opscore-kernel-")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, old_path) if p)
    try:
        papermill.execute_notebook(
            str(src),
            str(nb_path),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(src.parent),
            log_output=False,
            kernel_manager_class=_local_kernel_manager(ipc_dir),
        )
    except papermill.PapermillExecutionError as exc:
        raise OpsCoreError(
            f"The {kind} report notebook failed: {exc.ename}: {exc.evalue}",
            f"The executed notebook is kept at {nb_path} for inspection.",
        ) from None
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)
        if old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_path
