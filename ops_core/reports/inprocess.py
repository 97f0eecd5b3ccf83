"""Execute a report notebook inside the calling process, without a Jupyter kernel.

A kernel costs a Python start, the import of ``ops_core.api`` (pandas, scipy, psycopg...:
8 s on a busy 2-core machine) and ZeroMQ round trips per cell, on every report. The report
notebooks only call ``ops_core.api`` for a model and the view functions of
``ops_core.reports`` to show it, and the views send their output to
:data:`ops_core.reports.display.SINK` when it is set: so the cells can run here, in a fresh
namespace, each cell's output collected as nbformat ``display_data``. The executed notebook is
the same document a kernel would produce (parameters injected by papermill's own
``parameterize_notebook``), and nbconvert renders it the same way.

Figures are written as plotly's HTML without plotly.js; :func:`plotly_script` gives the
shared script the page loads first.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import OpsCoreError
from .display import SINK


class CellFailed(OpsCoreError):
    pass


def execute(src: Path, parameters: dict[str, Any], nb_path: Path) -> Any:
    """Run the notebook ``src`` with ``parameters``; the executed notebook (with outputs) is
    written to ``nb_path`` and returned. A failing cell raises :class:`CellFailed` after the
    notebook so far is written (for inspection)."""
    import nbformat
    from nbformat.v4 import new_output
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(src))  # as papermill reads it (every cell with its tags)
    nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python")
    ns: dict[str, Any] = {"__name__": "__main__"}
    count = 0
    # the report cells use no relative path: the process's cwd is left alone (threads)
    with warnings.catch_warnings():  # the setup cell silences warnings: for itself only
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            count += 1
            out: list[dict[str, Any]] = []
            token = SINK.set(out)
            try:
                code = compile(cell.source, f"<{src.name} cell {count}>", "exec")
                exec(code, ns)  # noqa: S102 - the packaged report notebook, not user input
            except Exception as exc:
                cell.outputs = [
                    new_output(
                        "error",
                        ename=type(exc).__name__,
                        evalue=str(exc),
                        traceback=[],
                    )
                ]
                nbformat.write(nb, str(nb_path))
                if isinstance(exc, OpsCoreError):
                    raise
                raise CellFailed(
                    f"The report notebook {src.name} failed in cell {count}: "
                    f"{type(exc).__name__}: {exc}",
                    f"The executed notebook is kept at {nb_path} for inspection.",
                ) from exc
            finally:
                SINK.reset(token)
            cell.execution_count = count
            cell.outputs = [new_output("display_data", data=d, metadata={}) for d in out]
    nbformat.write(nb, str(nb_path))
    return nb


def plotly_script(static_dir: Path, html_path: Path) -> str:
    """Write plotly.js once to ``static_dir/plotly-<version>.min.js`` (the file the kernel path
    shares too) and return the ``<script>`` tag that loads it relative to ``html_path``."""
    import plotly.offline

    version = plotly.offline.get_plotlyjs_version()
    static_dir.mkdir(parents=True, exist_ok=True)
    shared = static_dir / f"plotly-{version}.min.js"
    if not shared.exists():
        tmp = shared.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
        tmp.replace(shared)
    rel = Path(os.path.relpath(shared, html_path.parent)).as_posix()
    return f'<script src="{rel}" charset="utf-8"></script>'
