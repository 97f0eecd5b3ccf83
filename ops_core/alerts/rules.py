"""Alert rule vocabulary and validation (pure: no server, no repository).

A rule watches one metric of a target (or of every target) and is one of

- ``threshold``: the metric compared with ``value`` (``op``) for at least ``for_s`` seconds;
- ``rate``: the metric's change per second between two evaluations, compared with ``value``;
- ``absence``: a collector behind its schedule (snapshots, the ASH sampler, backups): fires
  when its last data is older than the schedule allows plus ``value`` seconds of grace;
- ``addm``: the newest ADDM analysis has a finding of at least ``value`` % of DB time;
- ``anomaly``: the anomaly detector's score of the target's latest snapshot interval (robust z,
  ``ops_core.api.ml_alerts``) compared with ``value`` for ``for_s``; the alert carries the
  metrics that moved with their expected range and the ADDM analysis of the anomaly; "not
  available" while the history is too short to judge;
- ``forecast``: the capacity forecasts' days until a limit (disk, connections, transaction-ID /
  multixact wraparound, sequences) compared with ``value`` (e.g. ``<`` 14 days).

Every rule also has ``clear_for_s``: once firing, the condition must stay false this long
before the alert resolves (flap damping).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from ..errors import InvalidInput

KINDS = ("threshold", "rate", "absence", "addm", "anomaly", "forecast")
OPS = (">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "critical")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kinds: tuple[str, ...]
    description: str


_T, _R = ("threshold", "rate"), ("rate",)
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("connections", "sessions", _T, "client backends connected"),
        Metric(
            "connections_pct",
            "%",
            _T,
            "connections used: of max_connections minus the superuser reserve, or of a "
            "database's CONNECTION LIMIT, whichever is fuller",
        ),
        Metric(
            "idle_in_transaction_s", "s", _T, "longest session idle in a transaction (not opscore)"
        ),
        Metric("longest_transaction_s", "s", _T, "oldest open transaction of a client session"),
        Metric(
            "prepared_transaction_age_s",
            "s",
            _T,
            "oldest prepared transaction (two-phase commit) waiting for COMMIT/ROLLBACK PREPARED",
        ),
        Metric("blocked_sessions", "sessions", _T, "sessions waiting for a lock another holds"),
        Metric("longest_blocked_s", "s", _T, "longest-running statement among blocked sessions"),
        Metric(
            "wraparound_pct",
            "%",
            _T,
            "oldest datfrozenxid / datminmxid age as a share of the 2^31 wraparound horizon",
        ),
        Metric(
            "replication_lag_s",
            "s",
            _T,
            "replay lag of the slowest standby (primary), or time since the last replayed "
            "transaction (standby)",
        ),
        Metric("replication_lag_bytes", "bytes", _T, "WAL not yet replayed by the slowest standby"),
        Metric(
            "disk_used_pct",
            "%",
            _T,
            "file system of the data directory, used share (only when it is on this host)",
        ),
        Metric(
            "wal_archive_stalled_s",
            "s",
            _T,
            "seconds since the last archived WAL while a completed segment waits or archiving "
            "fails (0 when nothing waits)",
        ),
        Metric("deadlocks_total", "deadlocks", _R, "deadlocks, all databases (counter)"),
        Metric("xact_commit_total", "transactions", _R, "commits, all databases (counter)"),
        Metric("xact_rollback_total", "transactions", _R, "rollbacks, all databases (counter)"),
        Metric("temp_bytes_total", "bytes", _R, "temporary file bytes written (counter)"),
        Metric("wal_bytes_total", "bytes", _R, "WAL position in bytes (counter)"),
        Metric("snapshot", "s", ("absence",), "AWR snapshots: age of the newest good snapshot"),
        Metric("ash_sampler", "s", ("absence",), "ASH sampler: age of its last flush"),
        Metric("backup", "s", ("absence",), "backups: age of the newest usable physical backup"),
        Metric(
            "addm_impact_pct",
            "%",
            ("addm",),
            "largest finding of the newest ADDM analysis, % of DB time",
        ),
        Metric(
            "anomaly_score",
            "score",
            ("anomaly",),
            "the anomaly detector's score of the latest snapshot interval (robust z: the "
            "largest over the load-profile metrics and the multivariate detector)",
        ),
        Metric(
            "quota_used_pct",
            "%",
            _T,
            "the target's quota nearest its soft limit (else its hard limit), measured by the "
            "quotas flow: 100 = at the limit",
        ),
        Metric(
            "days_until_disk_full",
            "days",
            ("forecast",),
            "forecast days until the databases fill the data directory's file system",
        ),
        Metric(
            "days_until_connections_max",
            "days",
            ("forecast",),
            "forecast days until connections reach max_connections minus the reserve",
        ),
        Metric(
            "days_until_xid_wraparound",
            "days",
            ("forecast",),
            "forecast days until the oldest transaction-ID age reaches the stop limit",
        ),
        Metric(
            "days_until_mxid_wraparound",
            "days",
            ("forecast",),
            "forecast days until the oldest multixact age reaches the stop limit",
        ),
        Metric(
            "days_until_sequence_exhausted",
            "days",
            ("forecast",),
            "forecast days until the first non-cycling sequence reaches its bound",
        ),
    )
}


def parse_duration(value: int | float | str | None, what: str) -> int:
    """Seconds from ``300``, ``'300'``, ``'30s'``, ``'5m'``, ``'1h'``, ``'1d'``."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} is not a duration.", "Use e.g. 30s, 5m or 1h.")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = DURATION_RE.match(value)
        if not m:
            raise InvalidInput(
                f"{what} {value!r} is not a duration.", "Use e.g. 30s, 5m, 1h or 1d."
            )
        seconds = float(m.group(1)) * UNIT_S[m.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0 or seconds > 30 * 86400:
        raise InvalidInput(
            f"{what} {value!r} is out of range.", "Give 0 to 30 days (e.g. 0, 5m, 2h)."
        )
    return int(round(seconds))


def validate_channels(channels: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Channels as stored: ``{"type": "webhook", "url": ..., "token_env": VAR}`` (or
    ``"url_env": VAR`` for a URL that is itself a secret) or ``{"type": "email", "to":
    [addresses]}``. A secret itself is refused: it is named by the environment variable that
    holds it."""
    out: list[dict[str, Any]] = []
    for ch in channels or []:
        if not isinstance(ch, dict):
            raise InvalidInput(f"Channel {ch!r} is not an object.", _CHANNEL_HINT)
        kind = ch.get("type")
        allowed = {"type", "url", "url_env", "token_env"} if kind == "webhook" else {"type", "to"}
        extra = set(ch) - allowed
        if extra:
            raise InvalidInput(
                f"Channel {kind!r} has unknown keys {sorted(extra)}"
                + (" (secrets are never stored: name an environment variable)" if extra else ""),
                _CHANNEL_HINT,
            )
        if kind == "webhook" and ch.get("url_env"):
            # a URL that is itself a secret (Slack-style): named by its environment variable
            if ch.get("url") or not ENV_RE.match(str(ch["url_env"])):
                raise InvalidInput(
                    "Give a webhook either url or url_env (an environment variable name).",
                    _CHANNEL_HINT,
                )
            token_env = ch.get("token_env")
            if token_env is not None and not ENV_RE.match(str(token_env)):
                raise InvalidInput(f"{token_env!r} is not an environment variable name.")
            out.append({"type": "webhook", "url_env": ch["url_env"], "token_env": token_env})
        elif kind == "webhook":
            url = str(ch.get("url") or "")
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InvalidInput(f"Webhook URL {url!r} is not an http(s) URL.", _CHANNEL_HINT)
            if parsed.password:
                raise InvalidInput(
                    "The webhook URL holds a password; it would be stored in clear.",
                    "Put the secret in an environment variable and give --webhook-token-env.",
                )
            token_env = ch.get("token_env")
            if token_env is not None and not ENV_RE.match(str(token_env)):
                raise InvalidInput(f"{token_env!r} is not an environment variable name.")
            out.append({"type": "webhook", "url": url, "token_env": token_env})
        elif kind == "email":
            to = ch.get("to")
            to = [to] if isinstance(to, str) else list(to or [])
            bad = [a for a in to if not EMAIL_RE.match(str(a))]
            if not to or bad:
                raise InvalidInput(
                    f"E-mail channel recipients {bad or to!r} are not addresses.", _CHANNEL_HINT
                )
            out.append({"type": "email", "to": [str(a) for a in to]})
        else:
            raise InvalidInput(f"Unknown channel type {kind!r}.", _CHANNEL_HINT)
    return out


_CHANNEL_HINT = (
    'Channels: {"type": "webhook", "url": "https://...", "token_env": "VAR"} or '
    '{"type": "email", "to": ["dba@example.com"]}.'
)


def validate_rule(values: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Check a rule's fields (all of them, or only those given when ``partial``); returns
    them normalized. Nothing is stored here."""
    out = dict(values)
    if "name" in out or not partial:
        if not NAME_RE.match(str(out.get("name") or "")):
            raise InvalidInput(
                f"{out.get('name')!r} is not a valid rule name.",
                "Use 1-63 letters, digits, '_', '.', ':', '-', starting with a letter or digit.",
            )
    kind = out.get("kind", "threshold")
    if kind not in KINDS:
        raise InvalidInput(f"Unknown rule kind {kind!r}.", f"Kinds: {', '.join(KINDS)}.")
    if "metric" in out or not partial:
        metric = out.get("metric")
        if metric not in METRICS:
            raise InvalidInput(
                f"Unknown metric {metric!r}.",
                "Metrics: " + ", ".join(f"{m} ({', '.join(d.kinds)})" for m, d in METRICS.items()),
            )
        if kind not in METRICS[metric].kinds:
            raise InvalidInput(
                f"Metric {metric!r} cannot be used by a {kind} rule.",
                f"{metric} suits: {', '.join(METRICS[metric].kinds)}.",
            )
    if "op" in out and out["op"] not in OPS:
        raise InvalidInput(f"Unknown comparison {out['op']!r}.", f"Use one of {' '.join(OPS)}.")
    if "value" in out or not partial:
        v = out.get("value")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidInput(f"The rule value {v!r} is not a finite number.")
        out["value"] = float(v)
    if "severity" in out and out["severity"] not in SEVERITIES:
        raise InvalidInput(
            f"Unknown severity {out['severity']!r}.", f"Use {', '.join(SEVERITIES)}."
        )
    for key in ("for_s", "clear_for_s"):
        if key in out:
            out[key] = parse_duration(out[key], key.replace("_s", ""))
    if "channels" in out:
        out["channels"] = validate_channels(out["channels"])
    return out


def compare(value: float, op: str, limit: float) -> bool:
    return {
        ">": value > limit,
        ">=": value >= limit,
        "<": value < limit,
        "<=": value <= limit,
    }[op]


#: the rule set a DBA switches on (`opscore alert rule defaults`): name -> fields
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "replication_lag": dict(
        kind="threshold", metric="replication_lag_s", op=">", value=300, for_s=120,
        clear_for_s=60, severity="critical",
        description="A standby replays more than 5 minutes behind (for 2 minutes).",
    ),
    "connections_near_max": dict(
        kind="threshold", metric="connections_pct", op=">", value=90, for_s=120,
        clear_for_s=60, severity="critical",
        description="More than 90 % of max_connections (or of a database's CONNECTION "
        "LIMIT) in use for 2 minutes.",
    ),
    "wraparound_risk": dict(
        kind="threshold", metric="wraparound_pct", op=">", value=50, for_s=0,
        clear_for_s=0, severity="critical",
        description="A database's oldest transaction ID is past half the wraparound horizon "
        "(about 1.07 billion): VACUUM (FREEZE) it.",
    ),
    "idle_in_transaction": dict(
        kind="threshold", metric="idle_in_transaction_s", op=">", value=300, for_s=0,
        clear_for_s=30, severity="warning",
        description="A session has been idle in a transaction for more than 5 minutes.",
    ),
    "prepared_transaction_stuck": dict(
        kind="threshold", metric="prepared_transaction_age_s", op=">", value=300, for_s=0,
        clear_for_s=0, severity="warning",
        description="A prepared transaction has waited more than 5 minutes for COMMIT or "
        "ROLLBACK PREPARED: it holds its locks and the xmin horizon, and no session timeout "
        "ends it.",
    ),
    "blocked_sessions": dict(
        kind="threshold", metric="blocked_sessions", op=">=", value=1, for_s=60,
        clear_for_s=30, severity="warning",
        description="Sessions have been waiting for locks for a minute.",
    ),
    "disk_nearly_full": dict(
        kind="threshold", metric="disk_used_pct", op=">", value=90, for_s=300,
        clear_for_s=300, severity="critical",
        description="The data directory's file system is more than 90 % full.",
    ),
    "wal_not_archived": dict(
        kind="threshold", metric="wal_archive_stalled_s", op=">", value=900, for_s=0,
        clear_for_s=60, severity="critical",
        description="No WAL archived for 15 minutes while segments wait (or archiving fails).",
    ),
    "backup_overdue": dict(
        kind="absence", metric="backup", op=">", value=3600, for_s=0, clear_for_s=0,
        severity="critical",
        description="The newest backup is older than its schedule's last due run (1 h grace).",
    ),
    "sampler_stopped": dict(
        kind="absence", metric="ash_sampler", op=">", value=120, for_s=0, clear_for_s=0,
        severity="warning",
        description="The ASH sampler has not flushed for 2 minutes beyond its flush interval.",
    ),
    "snapshots_stopped": dict(
        kind="absence", metric="snapshot", op=">", value=900, for_s=0, clear_for_s=0,
        severity="warning",
        description="No good AWR snapshot for one interval plus 15 minutes.",
    ),
    "disk_full_forecast": dict(
        kind="forecast", metric="days_until_disk_full", op="<", value=14, for_s=0,
        clear_for_s=0, severity="warning",
        description="At the forecast growth the databases fill the file system within 14 days.",
    ),
    "connections_exhausted_forecast": dict(
        kind="forecast", metric="days_until_connections_max", op="<", value=7, for_s=0,
        clear_for_s=0, severity="warning",
        description="At the forecast trend connections reach max_connections within 7 days.",
    ),
    "xid_wraparound_forecast": dict(
        kind="forecast", metric="days_until_xid_wraparound", op="<", value=30, for_s=0,
        clear_for_s=0, severity="critical",
        description="At the forecast consumption the transaction-ID age reaches the stop "
        "limit within 30 days: VACUUM (FREEZE) the oldest database, find what holds it back.",
    ),
    "mxid_wraparound_forecast": dict(
        kind="forecast", metric="days_until_mxid_wraparound", op="<", value=30, for_s=0,
        clear_for_s=0, severity="critical",
        description="At the forecast consumption the multixact age reaches the stop limit "
        "within 30 days.",
    ),
    "workload_anomaly": dict(
        kind="anomaly", metric="anomaly_score", op=">=", value=6, for_s=120,
        clear_for_s=300, severity="warning", enabled=False,
        description="The anomaly detector scores the latest snapshot interval at 6 robust "
        "sigmas or more for 2 minutes; the alert lists the metrics that moved with their "
        "expected range and the ADDM analysis of the anomaly. Disabled by default: enable it "
        "once the target has two days of snapshots (the daily profile; `opscore ml train` "
        "says whether the history is enough); with less it says 'not enough history'.",
    ),
    "sequence_exhausted_forecast": dict(
        kind="forecast", metric="days_until_sequence_exhausted", op="<", value=30, for_s=0,
        clear_for_s=0, severity="critical",
        description="A sequence reaches its bound within 30 days at the forecast rate: "
        "widen it (bigint) or plan the change.",
    ),
}  # fmt: skip
