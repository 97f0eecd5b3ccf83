"""Settings: environment variables ``OPSCORE_*`` and an optional TOML file, in one place.

Precedence (highest first): environment, ``$OPSCORE_HOME/opscore.toml`` (or the file named
by ``OPSCORE_CONFIG``), defaults.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from .errors import ConfigError


def _toml_values() -> dict[str, Any]:
    path = os.environ.get("OPSCORE_CONFIG")
    if path:
        file = Path(path).expanduser()
        if not file.exists():
            raise ConfigError(
                f"OPSCORE_CONFIG names {file}, which does not exist.",
                "Create the file or unset OPSCORE_CONFIG.",
            )
    else:
        home = Path(os.environ.get("OPSCORE_HOME", "~/.opscore")).expanduser()
        file = home / "opscore.toml"
        if not file.exists():
            return {}
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}", "Fix the file.") from exc


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSCORE_", extra="ignore")

    home: Path = Field(default=Path("~/.opscore"), description="Where opscore keeps its state")
    repository_dsn: str | None = Field(
        default=None,
        description="Repository PostgreSQL; default: database 'opscore' on the embedded server",
    )
    repository_database: str = "opscore"
    reports_dir: Path = Path("reports")
    # monitoring session limits (milliseconds / seconds)
    statement_timeout_ms: int = Field(default=10_000, ge=100)
    lock_timeout_ms: int = Field(default=1_000, ge=10)
    connect_timeout_s: int = Field(default=5, ge=1)
    # collection
    snapshot_interval_minutes: int = Field(default=15, ge=1)
    ash_interval_s: float = Field(default=1.0, gt=0)
    snapshot_retention_days: int = Field(default=8, ge=1)
    ash_raw_retention_days: int = Field(default=3, ge=1)
    ash_history_retention_days: int = Field(default=30, ge=1)
    # SQL Monitor: executions running at least this long are monitored, kept this many days
    sqlmon_min_elapsed_s: float = Field(default=5.0, ge=0)
    sqlmon_retention_days: int = Field(default=8, ge=1)
    include_opscore_activity: bool = False
    # schedules of `opscore serve` (Prefect): an interval in minutes or a cron expression
    snapshot_cron: str | None = Field(default=None, description="overrides the interval")
    ash_window_minutes: int = Field(default=15, ge=1, description="length of one ASH flow run")
    retention_cron: str = "17 3 * * *"
    report_cron: str = "7 0 * * *"
    ml_retrain_cron: str = Field(default="37 2 * * *", description="daily anomaly-model retrain")
    healing_interval_minutes: int = Field(default=5, ge=1, description="self-healing checks")
    corruption_check_cron: str = Field(default="47 3 * * 0", description="weekly amcheck")
    tuning_cron: str = Field(default="23 * * * *", description="self-tuning: hourly")
    sqltune_cron: str = Field(default="43 1 * * *", description="SQL Tuning Advisor: daily")
    sqltune_top: int = Field(default=10, ge=1, le=100, description="statements it tunes")
    sqlmon_keep_minutes: int = Field(default=10, ge=1, description="SQL Monitor from ASH")
    indexing_cron: str = Field(default="41 * * * *", description="auto-indexing cycle: hourly")
    report_retention_days: int = Field(default=30, ge=1)
    serve_targets: list[str] = Field(default_factory=list, description="empty: all targets")
    # snapshots: object-level capture bounds and filters
    snapshot_max_relations: int = Field(default=2000, ge=1, description="top-N tables/indexes")
    snapshot_sizes_interval_minutes: int = Field(default=60, ge=0)
    snapshot_databases: list[str] = Field(default_factory=list, description="empty: all")
    snapshot_exclude_databases: list[str] = Field(default_factory=list)
    snapshot_exclude_schemas: list[str] = Field(default_factory=list)
    # ASH: rows are flushed to the repository every N seconds (or sooner when many are
    # buffered); query texts kept in samples are truncated to this many characters
    ash_flush_interval_s: float = Field(default=10.0, gt=0)
    ash_query_text_max: int = Field(default=2048, ge=64)
    # ADDM: findings below this share of DB time are omitted
    addm_min_impact_pct: float = Field(default=5.0, ge=0, lt=100)
    # the ADDM flow logs findings at or above this share of DB time as errors
    addm_alert_pct: float = Field(default=20.0, ge=0, le=100)

    # alerts: evaluation schedule, default notification channels, delivery retries. Secrets
    # (SMTP password, webhook token) come from the environment / TOML, never the repository.
    alert_interval_minutes: int = Field(default=1, ge=1, description="alert evaluation flow")
    alert_webhook_url: str | None = Field(default=None, description="default webhook channel")
    alert_webhook_token: SecretStr | None = Field(default=None, description="Bearer token")
    alert_email_to: list[str] = Field(default_factory=list, description="default recipients")
    alert_notify_attempts: int = Field(default=3, ge=1, le=10)
    alert_notify_backoff_s: float = Field(default=1.0, ge=0)
    alert_notify_timeout_s: float = Field(default=10.0, gt=0)
    alert_redeliveries: int = Field(default=5, ge=0, description="later evaluations retry")
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "opscore@localhost"

    # backup and recovery
    backup_dir: Path | None = Field(
        default=None, description="Root of the backup stores; default $OPSCORE_HOME/backups"
    )
    backup_sync: bool = Field(
        default=True, description="fsync backups to disk (turn off only for throw-away tests)"
    )
    pg_bin_dirs: dict[str, str] = Field(
        default_factory=dict,
        description='Client/server binaries per major, e.g. {"16": "/usr/pgsql-16/bin"}',
    )

    @property
    def home_dir(self) -> Path:
        return Path(self.home).expanduser().resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings(**_toml_values())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"Invalid setting {field!r}: {first['msg']}.",
            f"Fix OPSCORE_{field.upper()} or the TOML file.",
        ) from None
    except SettingsError as exc:
        # e.g. a list setting whose variable is not JSON; never echo the value (it may be a DSN)
        field = str(exc).split('field "', 1)[-1].split('"', 1)[0]
        raise ConfigError(
            f"Invalid setting {field!r}: the value of OPSCORE_{field.upper()} cannot be parsed.",
            "List and table settings take JSON, e.g. OPSCORE_SNAPSHOT_DATABASES='[\"app\"]'.",
        ) from None


def reset_settings_cache() -> None:
    """Re-read settings on next access (tests, and the CLI after changing env)."""
    get_settings.cache_clear()
