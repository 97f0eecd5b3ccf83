"""Presentation helpers for the report notebooks: tables with units, plotly charts.

No data access here: everything comes from the report models of ``ops_core.api``. Tables are
HTML (class ``opscore``) so numbers are right-aligned with their unit in the heading, and long
SQL text is folded in a ``<details>`` element (first line shown, full text one click away).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import pandas as pd

from ..analysis.ash_report import CLASS_COLORS
from ..model.formats import BLOCK, dur, fmt, human_bytes, isnull, short

# column spec: (field, heading, format); formats: ops_core.model.formats.fmt
Col = tuple[str, str, str]
#: after the heading of a column of SQL texts (long ones are folded)
QUERY_HINT = " (click ▸ for the full text)"


def _query_cell(q: Any) -> str:
    text = "" if isnull(q) else str(q)
    cut = short(text, 90)
    if cut == " ".join(text.split()) and "\n" not in text:
        return f'<td class="text query"><code>{html.escape(text)}</code></td>'
    return (
        f'<td class="text query"><details><summary><code>{html.escape(cut)}</code></summary>'
        f"<pre>{html.escape(text)}</pre></details></td>"
    )


def table_html(
    df: pd.DataFrame | None,
    cols: Sequence[Col],
    empty: str = "No rows.",
    highlight: str | None = None,
) -> str:
    """An HTML table of ``df`` with the given columns (missing columns are skipped);
    ``highlight`` names the column the table is ranked by (shown bold)."""
    if df is None or df.empty:
        return f'<p class="opscore-empty">{html.escape(empty)}</p>'
    use = [c for c in cols if c[0] in df.columns]
    head = "".join(
        f'<th class="text">{html.escape(h)}{QUERY_HINT if k == "query" else ""}</th>'
        if k in ("text", "query", "time", "clock")
        else f'<th class="{"hl" if n == highlight else ""}">{html.escape(h)}</th>'
        for n, h, k in use
    )
    body = []
    for rec in df.to_dict("records"):
        cells = []
        for name, _, kind in use:
            v = rec.get(name)
            if kind == "query":
                cells.append(_query_cell(v))
            elif kind in ("text", "time", "clock"):
                cells.append(f'<td class="text">{html.escape(fmt(v, kind))}</td>')
            elif name == highlight:
                cells.append(f'<td class="hl">{html.escape(fmt(v, kind))}</td>')
            else:
                cells.append(f"<td>{html.escape(fmt(v, kind))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="opscore"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


#: where report output goes: None -> IPython's display (a notebook kernel); a list -> the
#: in-process renderer collects nbformat outputs there (ops_core.reports.inprocess)
SINK: ContextVar[list[dict[str, Any]] | None] = ContextVar("opscore_report_sink", default=None)


def show_html(text: str) -> None:
    sink = SINK.get()
    if sink is not None:
        sink.append({"text/html": text, "text/plain": "<HTML>"})
        return
    from IPython.display import HTML, display

    display(HTML(text))


def show_fig(fig: Any) -> None:
    """Show a plotly figure: in a kernel through plotly's renderers (setup_plotly); in the
    in-process renderer as the figure's HTML, drawn by the shared plotly.js of the page."""
    sink = SINK.get()
    if sink is None:
        fig.show()
        return
    import plotly.io as pio

    sink.append(
        {
            "text/html": pio.to_html(fig, include_plotlyjs=False, full_html=False),
            "text/plain": "<Figure>",
        }
    )


def show_table(
    df: pd.DataFrame | None,
    cols: Sequence[Col],
    empty: str = "No rows.",
    highlight: str | None = None,
) -> None:
    show_html(table_html(df, cols, empty, highlight))


def metric_in_mb(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of a (metric, value, unit) frame counted in bytes shown in MB (display only)."""
    df = df.copy()
    mask = df["unit"] == "bytes"
    df["value"] = df["value"].astype("float64")
    df.loc[mask, "value"] = df.loc[mask, "value"] / 1048576
    df.loc[mask, "unit"] = "MB"
    return df


def note(text: str, kind: str = "info") -> str:
    return f'<div class="opscore-note {kind}">{html.escape(text)}</div>'


def show_notes(notes: Sequence[str], kind: str = "warn") -> None:
    if notes:
        show_html("".join(note(n, kind) for n in notes))


def summary_box(title: str, lines: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(x)}</li>" for x in lines)
    return f'<div class="opscore-summary"><h3>{html.escape(title)}</h3><ul>{items}</ul></div>'


def kv_html(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(
        f'<tr><th class="text">{html.escape(k)}</th>'
        f'<td class="text">{html.escape(str(v))}</td></tr>'
        for k, v in pairs
    )
    return f'<table class="opscore kv"><tbody>{rows}</tbody></table>'


# ----------------------------------------------------------------------------- charts
def setup_plotly() -> None:
    """In a kernel: plotly's renderers for nbconvert. In the in-process renderer (SINK set)
    nothing: figures go to the sink, and the calling process's plotly settings stay as they
    are."""
    if SINK.get() is not None:
        return
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"


def _layout(fig: Any, title: str, height: int = 340) -> Any:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 45, "b": 40},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.18},
    )
    return fig


def activity_chart(
    matrix: pd.DataFrame, bucket_s: int, title: str = "", cpu_count: int | None = None
) -> Any:
    """Stacked area: average active sessions per wait class over time; with ``cpu_count``, a
    dashed line at the host's CPUs (sessions above it wait for a CPU), as Oracle's ASH."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cls in matrix.columns:
        fig.add_trace(
            go.Scatter(
                x=matrix.index,
                y=matrix[cls],
                name=cls,
                mode="lines",
                stackgroup="one",
                line={"width": 0.5, "color": CLASS_COLORS.get(cls, "#999")},
                hovertemplate="%{x|%H:%M:%S}: %{y:.2f} sessions<extra>" + cls + "</extra>",
            )
        )
    if cpu_count:
        fig.add_hline(
            y=cpu_count,
            line_dash="dash",
            line_color="#d62728",
            annotation_text=f"{cpu_count} CPUs",
            annotation_position="top left",
        )
    fig.update_yaxes(title_text="average active sessions", rangemode="tozero")
    fig.update_xaxes(title_text=f"time (UTC), {bucket_s} s buckets")
    return _layout(fig, title or "Activity over time by wait class", 380)


def class_bar(df: pd.DataFrame, title: str) -> Any:
    """Horizontal bar of DB time (s) per wait class."""
    import plotly.graph_objects as go

    d = df.sort_values("db_time_s")
    fig = go.Figure(
        go.Bar(
            x=d["db_time_s"],
            y=d["wait_class"],
            orientation="h",
            marker_color=[CLASS_COLORS.get(c, "#999") for c in d["wait_class"]],
            text=[f"{p:.0f} %" for p in d["pct"]],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1f} s<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="DB time (s)")
    return _layout(fig, title, 60 + 32 * max(len(d), 3))


def sql_bar(df: pd.DataFrame, value: str, unit: str, title: str) -> Any:
    """Horizontal bar of the top statements by ``value`` (labelled by query id)."""
    import plotly.graph_objects as go

    d = df.head(10).iloc[::-1]
    labels = [f"#{r} {str(q)[:40]}" for r, q in zip(d["rank"], d["query"], strict=False)]
    fig = go.Figure(
        go.Bar(
            x=d[value],
            y=labels,
            orientation="h",
            marker_color="#4c78a8",
            hovertext=[" ".join(str(q).split())[:200] for q in d["query"]],
            hovertemplate="%{x:,.1f} " + unit + "<br>%{hovertext}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=unit)
    return _layout(fig, title, 80 + 30 * max(len(d), 3))


__all__ = [
    "BLOCK",
    "Col",
    "fmt",
    "human_bytes",
    "table_html",
    "show_html",
    "show_fig",
    "metric_in_mb",
    "SINK",
    "show_table",
    "note",
    "show_notes",
    "summary_box",
    "kv_html",
    "dur",
    "setup_plotly",
    "activity_chart",
    "class_bar",
    "sql_bar",
]
