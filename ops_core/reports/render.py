"""Execute a parameterized report notebook with papermill and render it to HTML with nbconvert.

Output: ``<reports_dir>/<target>/<kind>-<begin>-<end>.html`` without code cells, with the
executed notebook kept beside it (``.ipynb``) for people who want to dig.
"""

from __future__ import annotations

import re
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
  body { max-width: 1400px; margin: auto; }
  table.dataframe, table.opscore { border-collapse: collapse; font-size: 13px; margin: 6px 0 18px; }
  table.dataframe th, table.opscore th { background: #eef2f7; position: sticky; top: 0; }
  table.dataframe td, table.dataframe th, table.opscore td, table.opscore th {
    padding: 3px 8px; border-bottom: 1px solid #e3e6ea; text-align: right; }
  table.dataframe td:first-child, table.opscore td.text { text-align: left; }
  .jp-RenderedHTMLCommon code, pre { font-size: 12px; white-space: pre-wrap; }
</style>
"""


@dataclass
class RenderedReport:
    html: Path
    notebook: Path
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"html": str(self.html), "notebook": str(self.notebook), "seconds": self.seconds}


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
) -> RenderedReport:
    """Execute ``notebooks/<kind>_report.ipynb`` with ``parameters`` and write the HTML."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    started = time.monotonic()
    src = notebook_path(kind)
    html_path, nb_path = output_paths(target, kind, begin, end, reports_dir)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    say(f"executing {src.name}")
    try:
        papermill.execute_notebook(
            str(src),
            str(nb_path),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(src.parent),
            log_output=False,
        )
    except papermill.PapermillExecutionError as exc:
        raise OpsCoreError(
            f"The {kind} report notebook failed: {exc.ename}: {exc.evalue}",
            f"The executed notebook is kept at {nb_path} for inspection.",
        ) from None
    say("rendering HTML")
    nb = nbformat.read(str(nb_path), as_version=4)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    body = body.replace("</head>", SORTABLE_JS + "</head>", 1)
    html_path.write_text(body, encoding="utf-8")
    return RenderedReport(html_path, nb_path, round(time.monotonic() - started, 2))
