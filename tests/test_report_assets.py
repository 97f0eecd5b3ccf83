"""Rendered reports share one plotly.js file instead of inlining ~5 MB each."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from ops_core.reports.render import STATIC_DIR, externalize_plotly

CHART_CELL = """
from ops_core.reports.display import setup_plotly
setup_plotly()
import plotly.graph_objects as go
go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2])).show()
go.Figure(go.Bar(x=[1, 2], y=[3, 4])).show()
"""


@pytest.fixture(scope="module")
def chart_html() -> str:
    """nbconvert HTML of a real executed notebook with two plotly charts (as a report has)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CHART_CELL)]
    NotebookClient(nb, kernel_name="python3", timeout=300).execute(
        cwd=str(Path(__file__).resolve().parents[1])
    )
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
    return body


def test_plotly_written_once_and_referenced_relatively(chart_html: str, tmp_path: Path) -> None:
    assert len(chart_html) > 3_000_000  # nbconvert inlined plotly.js
    static = tmp_path / STATIC_DIR
    first = tmp_path / "demo" / "awr-1-2.html"
    second = tmp_path / "other" / "ash-3-4.html"
    out1 = externalize_plotly(chart_html, first, static)
    out2 = externalize_plotly(chart_html, second, static)
    shared = list(static.glob("plotly-*.min.js"))
    assert len(shared) == 1 and shared[0].stat().st_size > 3_000_000
    for html, path in ((out1, first), (out2, second)):
        assert len(html.encode()) < 1_000_000
        assert "plotly.js v" not in html
        src = f'<script src="../{STATIC_DIR}/{shared[0].name}"'
        assert src in html
        # the relative reference resolves from the report's own folder
        assert (path.parent / ".." / STATIC_DIR / shared[0].name).resolve() == shared[0]
        # the charts themselves are still in the report
        assert html.count("Plotly.newPlot(") == 2
    # the script is the one nbconvert inlined, byte for byte
    assert shared[0].read_text(encoding="utf-8") in chart_html


def test_html_without_plotly_unchanged(tmp_path: Path) -> None:
    html = "<html><head></head><body><script>var x = 1;</script></body></html>"
    assert externalize_plotly(html, tmp_path / "t" / "r.html", tmp_path / STATIC_DIR) == html
    assert not (tmp_path / STATIC_DIR).exists()


def test_download_is_self_contained(chart_html: str, tmp_path: Path) -> None:
    from ops_core import api

    report = tmp_path / "demo" / "awr-1-2.html"
    report.parent.mkdir(parents=True)
    report.write_text(externalize_plotly(chart_html, report, tmp_path / STATIC_DIR), "utf-8")
    data = api.report_download(report).decode("utf-8")
    assert "plotly.js v" in data and f"{STATIC_DIR}/plotly-" not in data
    assert data.count("Plotly.newPlot(") == 2


def test_notebooks_follow_the_report_spec() -> None:
    """Each committed report notebook is what build_notebooks makes from
    ops_core.reports.spec (a changed section list is rebuilt, never edited by hand), and the AWR
    table of contents links every section's anchor."""
    import importlib.util

    import nbformat

    from ops_core.reports import spec

    root = Path(__file__).resolve().parents[1] / "notebooks"
    loader = importlib.util.spec_from_file_location("build_notebooks", root / "build_notebooks.py")
    assert loader is not None and loader.loader is not None
    builder = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(builder)
    for kind, sections in spec.SECTIONS.items():
        committed = nbformat.read(str(root / f"{kind}_report.ipynb"), as_version=4)
        built = builder.build(kind)
        assert [c.source for c in committed.cells] == [c.source for c in built.cells], kind
        text = "\n".join(c.source for c in committed.cells)
        for s in sections:
            assert f'<a id="{s.anchor}"></a>' in text and s.call in text, (kind, s.anchor)
    from ops_core.reports.awr_view import toc_html

    toc = toc_html(spec.AWR_SECTIONS)
    assert all(f'href="#{s.anchor}"' in toc for s in spec.AWR_SECTIONS)
