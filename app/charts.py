"""Charts of the app (plotly): the wait-class colours of the reports, time axes, the ASH
activity chart."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ops_core import api
from ops_core.analysis.ash_report import CLASS_COLORS

from .times import to_local

#: one colour per ASH wait class, the same on every chart of the app and the reports
WAIT_COLORS: dict[str, str] = CLASS_COLORS


def time_axis(fig: Any, begin: Any = None, end: Any = None) -> None:
    """Readable time ticks; with ``begin``/``end`` the axis spans that range (so a single
    point sits at its time instead of filling a millisecond-wide axis)."""
    fig.update_xaxes(tickformat="%H:%M\n%b %d", title=None)
    if begin is not None and end is not None:
        fig.update_xaxes(range=[to_local(begin), to_local(end)])
    fig.update_yaxes(rangemode="tozero")


def activity_chart(act: pd.DataFrame, height: int = 300, slider: bool = True) -> Any:
    """Stacked area of average active sessions by wait class (from api.ash_activity)."""
    import plotly.express as px

    df = act.copy()
    df["time"] = to_local(df["bucket_start"])
    fig = px.area(
        df, x="time", y="aas", color="wait_class", color_discrete_map=WAIT_COLORS,
        category_orders={"wait_class": list(api.WAIT_CLASSES)},
        labels={"aas": "average active sessions", "time": "", "wait_class": ""},
    )  # fmt: skip
    fig.update_traces(line_width=0.5)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )  # fmt: skip
    time_axis(fig)
    if slider:
        fig.update_xaxes(rangeslider=dict(visible=True, thickness=0.08))
    return fig
