"""Wait classes moved to ops_core.model.waits (shared vocabulary below every layer); this
module keeps the names analysis code imports."""

from ..model.waits import (  # noqa: F401
    ACTIVE_STATES,
    FOREGROUND_BACKEND_TYPES,
    IDLE_CLASSES,
    IDLE_IN_XACT_STATES,
    PG_WAIT_TYPES,
    WAIT_CLASSES,
    event_name,
    event_sql,
    is_background_sql,
    is_db_time,
    is_db_time_sql,
    is_foreground,
    is_working,
    normalize_wait_class,
    wait_class,
    wait_class_sql,
)
