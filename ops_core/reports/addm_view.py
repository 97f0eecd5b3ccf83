"""ADDM report sections as notebook output (HTML and plotly), from an ADDM analysis of
``ops_core.api`` (``get_addm`` / ``addm_for_range``); also the ADDM section of the AWR report.

Display only: the findings, their evidence and recommendations come from the analysis as
stored; nothing is computed here that a surface would need elsewhere.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import spec
from .display import (
    _layout,
    class_bar,
    dur,
    kv_html,
    note,
    show_fig,
    show_html,
    show_table,
    summary_box,
)

if TYPE_CHECKING:
    from ..analysis.addm import Finding
    from ..api.addm import AddmAnalysis

PROBLEM_COLOR, INFO_COLOR = "#c0392b", "#4c78a8"
SKIP_EVIDENCE = {"tie", "per_statement", "queryid", "explain"}


def _e(v: Any) -> str:
    return html.escape(str(v))


def _val(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, list | tuple):
        return ", ".join(_val(x) for x in v) if v else "none"
    if isinstance(v, dict):
        return "; ".join(f"{k.replace('_', ' ')} {_val(x)}" for k, x in v.items())
    return str(v)


def evidence_items(f: Finding) -> list[tuple[str, str]]:
    """The evidence as (label, value) pairs: the finding's own figures, then the first (or
    only) statement's; ties and plans are shown elsewhere."""
    ev = dict(f.evidence or {})
    items = [(k, v) for k, v in ev.items() if k not in SKIP_EVIDENCE and v is not None]
    per = ev.get("per_statement") or []
    if per:
        items += [(k, v) for k, v in per[0].items() if k not in SKIP_EVIDENCE and v is not None]
        if len(per) > 1:
            items.append(("statements", len(per)))
    return [(k.replace("_", " "), _val(v)) for k, v in items]


def evidence_summary(f: Finding, n: int = 6) -> str:
    return "; ".join(f"{k}: {v}" for k, v in evidence_items(f)[:n])


def _nested(f: Finding) -> str:
    """The cause link of a symptom, shown before its title."""
    return f"↳ caused by #{f.cause}: " if f.cause else ""


def _impact(f: Finding) -> str:
    if f.basis == "risk" and f.risk_pct is not None:
        return f"risk {f.risk_pct:.0f} % of capacity"
    return f"{f.impact_pct:.1f} % ({f.impact_db_time_s:,.1f} s)"


def _who(f: Finding) -> str:
    parts = []
    if f.objects:
        parts.append("objects: " + ", ".join(f.objects))
    if f.sessions:
        parts.append("sessions: " + ", ".join(str(s) for s in f.sessions))
    return "; ".join(parts)


def _actions(f: Finding, limit: int | None = None) -> str:
    out = []
    for r in f.recommendations[:limit]:
        benefit = f" — benefit up to {r.benefit_pct:.1f} % of DB time" if r.benefit_pct else ""
        out.append(
            f'<div class="addm-action"><span class="addm-kind">{_e(r.action_type)}</span>'
            f"<code>{_e(r.action)}</code>{_e(benefit)}</div>"
        )
    return "".join(out)


def findings_table_html(a: AddmAnalysis, *, actions: int | None = 1) -> str:
    """Ranked findings: impact, objects/sessions, evidence summary, the recommended actions."""
    if not a.findings:
        return '<p class="opscore-empty">No findings stored for this analysis.</p>'
    rows = []
    for f in a.findings:
        kind = "problem" if f.is_problem else "info"
        rows.append(
            f'<tr class="addm-{kind}"><td>{f.rank}</td>'
            f'<td class="text">{_nested(f)}<b>{_e(f.title)}</b><br>'
            f'<span class="addm-type">{_e(f.type)}'
            f"{' · snapshot only' if f.snapshot_only else ''}</span></td>"
            f"<td>{_e(_impact(f))}</td>"
            f'<td class="text">{_e(_who(f))}</td>'
            f'<td class="text addm-ev">{_e(evidence_summary(f))}</td>'
            f'<td class="text">{_actions(f, actions)}</td></tr>'
        )
    head = (
        '<tr><th>#</th><th class="text">finding</th><th>share of DB time</th>'
        '<th class="text">objects / sessions</th><th class="text">evidence</th>'
        '<th class="text">recommended action</th></tr>'
    )
    return (
        ADDM_CSS + f'<table class="opscore addm"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


ADDM_CSS = """<style>
table.addm td { vertical-align: top; }
table.addm tr.addm-problem td:first-child { border-left: 4px solid #c0392b; }
table.addm tr.addm-info td:first-child { border-left: 4px solid #4c78a8; }
.addm-type { color: #667; font-size: 12px; }
.addm-ev { max-width: 380px; font-size: 12px; }
.addm-action { margin: 2px 0 6px; }
.addm-action code { display: block; white-space: pre-wrap; background: #f6f8fa;
                    padding: 3px 6px; border-radius: 3px; }
.addm-kind { font-size: 11px; text-transform: uppercase; color: #667; }
.addm-finding { border: 1px solid #dde3ea; border-radius: 4px; padding: 4px 14px; margin: 12px 0; }
.addm-finding h3 { margin: 8px 0 4px; }
.addm-finding pre { background: #f8f8f8; padding: 6px 8px; font-family: monospace;
                    white-space: pre-wrap; }
</style>"""


def _no_ash(a: AddmAnalysis) -> str:
    if a.db_time_source == "ash":
        return ""
    return note(
        "No ASH samples in this range: ADDM needs ASH for DB time by wait class, lock chains "
        "and sessions. DB time below is pg_stat_statements execution time and the findings are "
        "those snapshots can support (marked 'snapshot only'). Run the ASH sampler "
        "(`opscore ash run`, or the scheduled ash flow) during the periods you want diagnosed.",
        "warn",
    )


def awr_section(a: AddmAnalysis | None, note_text: str | None, target: str) -> None:
    """The ADDM section of the AWR report: the analysis of the same range, findings first."""
    if a is None:
        show_html(note(note_text or "No ADDM analysis for this range.", "warn"))
        return
    src = "ASH" if a.db_time_source == "ash" else "pg_stat_statements (no ASH samples)"
    line = (
        f"ADDM analysis {a.analysis_id} of snapshots {a.begin_snapshot_id} → "
        f"{a.end_snapshot_id} (made {a.created_at:%Y-%m-%d %H:%M:%S} UTC): DB time "
        f"{dur(a.db_time_s)} from {src}, findings ranked by their share of it. Full report: "
        f"opscore report addm --target {target} --analysis {a.analysis_id}"
    )
    show_html(
        f'<p class="opscore-sub">{_e(line)}</p>' + _no_ash(a) + findings_table_html(a, actions=None)
    )


# ------------------------------------------------------------------------------ ADDM report
def header(a: AddmAnalysis) -> None:
    src = "ASH samples" if a.db_time_source == "ash" else "pg_stat_statements (no ASH samples)"
    aas = a.db_time_s / a.elapsed_s if a.elapsed_s > 0 else 0.0
    pairs = [
        ("Target", a.target + (f" (database {a.database})" if a.database else "")),
        (
            "Interval",
            f"snapshots {a.begin_snapshot_id} → {a.end_snapshot_id}: "
            f"{a.begin_at:%Y-%m-%d %H:%M:%S} → {a.end_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({dur(a.elapsed_s)})",
        ),
        ("DB time", f"{dur(a.db_time_s)} from {src} — {aas:,.2f} average active sessions"),
        ("pg_stat_statements execution time", dur(a.pgss_time_s)),
        ("ASH sample rows", f"{a.ash_samples:,}"),
        ("Threshold", f"findings under {a.min_impact_pct:g} % of DB time are omitted"),
        ("Analysis", f"{a.analysis_id}, made {a.created_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    top = [
        ("    ↳ " if f.cause else "")
        + f"#{f.rank} {f.title} — {_impact(f)}"
        + (f" (symptom of #{f.cause})" if f.cause else "")
        for f in a.findings
        if f.is_problem or f.type == "nothing_significant"
    ][:5] or ["No finding stored."]
    sub = (
        f"{a.target} · snapshots {a.begin_snapshot_id} → {a.end_snapshot_id} · "
        f"{a.begin_at:%Y-%m-%d %H:%M:%S} → {a.end_at:%H:%M:%S} UTC ({dur(a.elapsed_s)})"
    )
    show_html(
        f'<p class="opscore-sub">{_e(sub)}</p>'
        + summary_box("Findings", top)
        + _no_ash(a)
        + kv_html(pairs)
    )


def impact_chart(a: AddmAnalysis) -> Any | None:
    """Horizontal bar: each finding's share of DB time (risk findings by their risk)."""
    import plotly.graph_objects as go

    fs = [f for f in a.findings if f.score > 0]
    if not fs:
        return None
    fs = fs[::-1]
    labels = [f"#{f.rank} {f.type}" for f in fs]
    colors = [PROBLEM_COLOR if f.is_problem else INFO_COLOR for f in fs]
    fig = go.Figure(
        go.Bar(
            x=[f.score for f in fs],
            y=labels,
            orientation="h",
            marker_color=colors,
            text=[f"{f.score:.1f} %" for f in fs],
            textposition="auto",
            hovertext=[f.title for f in fs],
            hovertemplate="%{hovertext}<br>%{x:.1f} % of DB time<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="share of DB time (%)", rangemode="tozero")
    return _layout(fig, "Impact of each finding (share of DB time)", 80 + 34 * max(len(fs), 3))


def findings(a: AddmAnalysis) -> None:
    fig = impact_chart(a)
    if fig is not None:
        show_fig(fig)
    show_html(findings_table_html(a))


def _frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    return pd.DataFrame(rows or [])


def breakdown(a: AddmAnalysis) -> None:
    b = a.breakdown or {}
    for title, key, cols in spec.ADDM_BREAKDOWN:
        df = _frame(b.get(key))
        if key == "wait_class":  # the chart, then its table (no heading of its own)
            if df.empty:
                show_html(note("No DB time by wait class: ASH samples are needed for it.", "info"))
            else:
                show_fig(class_bar(df, "DB time by wait class (ASH samples)"))
                show_table(df, spec.html(cols))
            continue
        show_html(f"<h4>{_e(title)}</h4>")
        show_table(df, spec.html(cols), empty="None sampled.")
    bg = _frame(b.get("background"))
    if not bg.empty and "time_s" not in bg.columns and "db_time_s" in bg.columns:
        bg = bg.rename(columns={"db_time_s": "time_s"})  # analyses stored before the rename
    show_html("<h4>Background activity (not DB time)</h4>")
    show_table(bg, spec.html(spec.BACKGROUND), empty="No background process was sampled working.")


def details(a: AddmAnalysis) -> None:
    """Each finding: impact, objects and sessions, its SQL, all its evidence, and every
    recommendation with the exact action, why, and the expected benefit."""
    out = [ADDM_CSS]
    for f in a.findings:
        style = ' style="margin-left:2em"' if f.cause else ""
        parts = [f'<div class="addm-finding"{style}><h3>#{f.rank} {_nested(f)}{_e(f.title)}</h3>']
        parts.append(
            f'<p class="addm-type">{_e(f.type)} · impact {_e(_impact(f))} · basis {_e(f.basis)}'
            f"{(' · ' + _e(_who(f))) if _who(f) else ''}</p>"
        )
        if f.evidence.get("tie"):
            parts.append(note(f"Tie: {f.evidence['tie']}", "info"))
        items = evidence_items(f)
        if items:
            parts.append(kv_html(items))
        per = f.evidence.get("per_statement") or []
        if len(per) > 1:
            parts.append(
                "<h4>Per statement</h4>" + _per_statement_html(per)  # several statements, one cause
            )
        for s in f.statements[:5]:
            q = s.get("query") or ""
            parts.append(
                f"<p><b>SQL {_e(s.get('queryid') or '')}</b></p><pre>{_e(q)}</pre>" if q else ""
            )
        for r in f.recommendations:
            benefit = (
                f"expected benefit up to {r.benefit_db_time_s:,.1f} s ({r.benefit_pct:.1f} % of "
                "DB time)"
                if r.benefit_pct
                else "benefit not estimated"
            )
            parts.append(
                f'<div class="addm-action"><span class="addm-kind">{_e(r.action_type)} · '
                f"{_e(benefit)}</span><code>{_e(r.action)}</code>{_e(r.rationale)}</div>"
            )
        parts.append("</div>")
        out.append("".join(parts))
    show_html("".join(out) if a.findings else note("No findings stored.", "info"))


def _per_statement_html(per: list[dict[str, Any]]) -> str:
    df = pd.DataFrame(per)
    cols = [c for c in df.columns if c not in ("explain",)]
    from .display import table_html

    return table_html(df, [(c, c.replace("_", " "), "text") for c in cols])


def notes(a: AddmAnalysis) -> None:
    """The analysis notes (cross-check, omitted findings, CPU) and the ties between findings."""
    lines = list(a.notes)
    ties = sorted({f.evidence["tie"] for f in a.findings if f.evidence.get("tie")})
    lines += [f"Tie: {t}" for t in ties]
    if not lines:
        show_html(note("No notes.", "ok"))
        return
    show_html("".join(note(n, "warn" if "No ASH" in n else "info") for n in lines))


__all__ = [
    "awr_section",
    "breakdown",
    "details",
    "evidence_items",
    "evidence_summary",
    "findings",
    "findings_table_html",
    "header",
    "impact_chart",
    "notes",
]
