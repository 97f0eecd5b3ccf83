"""Notification delivery: webhook (HTTP POST of JSON) and e-mail (SMTP), each with retries and
backoff; every delivery is returned as a record for the repository (who, where, attempts,
outcome). Secrets come from settings / the environment at send time, never from the rule."""

from __future__ import annotations

import json
import os
import smtplib
import time
from email.message import EmailMessage
from typing import Any

from ..config import Settings
from ..model.serialize import to_jsonable


def channels_for(rule_channels: list[dict[str, Any]], s: Settings) -> list[dict[str, Any]]:
    """The rule's channels, else the default ones from settings (possibly none)."""
    if rule_channels:
        return rule_channels
    out: list[dict[str, Any]] = []
    if s.alert_webhook_url:
        out.append({"type": "webhook", "url": s.alert_webhook_url, "token_env": None})
    if s.alert_email_to:
        out.append({"type": "email", "to": list(s.alert_email_to)})
    return out


def payload(alert: dict[str, Any], event: str) -> dict[str, Any]:
    keep = (
        "alert_id", "rule", "target", "status", "severity", "summary", "value", "details",
        "fired_at", "acknowledged_at", "resolved_at",
    )  # fmt: skip
    return {"event": event, **{k: to_jsonable(alert.get(k)) for k in keep}}


def _webhook(ch: dict[str, Any], body: dict[str, Any], s: Settings) -> str:
    headers = {"Content-Type": "application/json", "User-Agent": "opscore-alerts"}
    token = None
    if ch.get("token_env"):
        token = os.environ.get(ch["token_env"])
        if token is None:
            raise RuntimeError(f"environment variable {ch['token_env']} (webhook token) is not set")
    elif s.alert_webhook_token is not None and ch.get("url") == s.alert_webhook_url:
        token = s.alert_webhook_token.get_secret_value()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = ch.get("url")
    if ch.get("url_env"):
        url = os.environ.get(ch["url_env"])
        if not url:
            raise RuntimeError(f"environment variable {ch['url_env']} (webhook URL) is not set")
    import httpx  # here, not at start-up: every opscore command would pay its import

    r = httpx.post(url, content=json.dumps(body), headers=headers, timeout=s.alert_notify_timeout_s)
    if r.status_code >= 300:
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
    return f"HTTP {r.status_code}"


def _email(ch: dict[str, Any], body: dict[str, Any], s: Settings) -> str:
    if not s.smtp_host:
        raise RuntimeError("no SMTP server configured (OPSCORE_SMTP_HOST)")
    msg = EmailMessage()
    word = "RESOLVED" if body["event"] == "resolved" else str(body["severity"]).upper()
    msg["Subject"] = f"[opscore {word}] {body['rule']} on {body['target']}"
    msg["From"] = s.smtp_from
    msg["To"] = ", ".join(ch["to"])
    msg["X-Opscore-Alert-Id"] = str(body["alert_id"])
    msg.set_content(
        f"{body['summary']}\n\nevent: {body['event']}\nalert: {body['alert_id']}\n"
        f"fired at: {body['fired_at']}\nresolved at: {body['resolved_at'] or '-'}\n\n"
        + json.dumps(body["details"], indent=2, default=str)
    )
    with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.alert_notify_timeout_s) as smtp:
        if s.smtp_starttls:
            smtp.starttls()
        if s.smtp_user:
            pw = s.smtp_password.get_secret_value() if s.smtp_password else ""
            smtp.login(s.smtp_user, pw)
        refused = smtp.send_message(msg)
    if refused:
        raise RuntimeError(f"refused recipients: {sorted(refused)}")
    return "accepted"


def destination(ch: dict[str, Any]) -> str:
    """What a delivery record names: the URL, ``$VAR`` for a secret URL, the recipients."""
    if ch["type"] == "webhook":
        return ch.get("url") or f"${ch['url_env']}"
    return ", ".join(ch["to"])


def deliver(
    alert: dict[str, Any], event: str, channels: list[dict[str, Any]], s: Settings
) -> list[dict[str, Any]]:
    """Send ``event`` of ``alert`` to every channel; one record per channel."""
    body = payload(alert, event)
    records = []
    for ch in channels:
        send = _webhook if ch["type"] == "webhook" else _email
        dest = destination(ch)  # a secret URL is recorded as $VAR
        error, response, attempts = None, None, 0
        for attempt in range(1, s.alert_notify_attempts + 1):
            attempts = attempt
            try:
                response = send(ch, body, s)
                error = None
                break
            except Exception as exc:  # any failure is recorded and retried
                error = f"{type(exc).__name__}: {exc}"[:500]
                if attempt < s.alert_notify_attempts:
                    time.sleep(s.alert_notify_backoff_s * 2 ** (attempt - 1))
        records.append(
            {
                "event": event,
                "channel": ch["type"],
                "destination": dest,
                "attempts": attempts,
                "ok": error is None,
                "response": response,
                "error": error,
            }
        )
    return records
