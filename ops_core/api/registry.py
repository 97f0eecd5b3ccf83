"""The operation registry: every catalog row (ops_core/catalog: 132 REST-style rows and 31
GraphQL rows) as one :class:`Operation` with

- its ``ops_core.api`` function and pydantic request/response models derived from the
  function's signature and return type (dataclasses become models field by field, DataFrames
  become lists of records);
- what it reads and what it writes (``repository``, ``target``, ``filesystem``);
- the CLI command, app page and Prefect flow that expose or schedule it;
- its status: ``served``, ``not available: <reason>`` or ``not yet``.

Surfaces look operations up here instead of keeping their own lists: ``opscore catalog``, the
app's catalog page, the coverage test (which calls every served operation and validates the
answer against the response model) and the coming HTTP API.

Adding an operation: write the function in its area module, export it from
``ops_core.api``, name it in the catalog row's ``api_function`` column and give its effects in
:data:`EFFECTS` (a test fails while one is missing).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import PurePath
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, RootModel, create_model

from .. import catalog
from ..model.serialize import to_jsonable

__all__ = ["EFFECTS", "NOT_AVAILABLE", "Operation", "Registry", "REGISTRY", "response_model"]

R, T, F = "repository", "target", "filesystem"

#: function -> (what it reads, what it writes). A function named by a catalog row and missing
#: here is an error (test_catalog), so a new operation states its effects.
EFFECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # workload repository (AWR)
    "take_snapshot": ((T, R), (R,)),
    # fleet
    "fleet_overview": ((R,), ()),
    "tag_target": ((R,), (R,)),
    "list_snapshots": ((R,), ()),
    "get_snapshot": ((R,), ()),
    "compare_periods": ((R,), ()),
    "create_baseline": ((R,), (R,)),
    "list_baselines": ((R,), ()),
    "delete_baseline": ((R,), (R,)),
    "render_report": ((R,), (F,)),
    # performance hub, live views
    "targets_status": ((R, T), ()),
    "live_sessions": ((T,), ()),
    "live_summary": ((T,), ()),
    "top_statements": ((R,), ()),
    "explain_statement": ((R, T), ()),
    "load_profile": ((R,), ()),
    "load_trends": ((R,), ()),
    "object_io": ((R,), ()),
    # ASH
    "query_ash": ((R,), ()),
    "ash_top": ((R,), ()),
    "blocking_chains": ((R,), ()),
    "ash_report": ((R,), ()),
    # ADDM
    "run_addm": ((R, T), (R,)),
    "list_addm": ((R,), ()),
    "get_addm": ((R,), ()),
    "addm_findings": ((R,), ()),
    "addm_recommendations": ((R,), ()),
    "delete_addm": ((R,), (R,)),
    # autonomous: config and self-healing
    "autonomous_config": ((R,), ()),
    "set_autonomous_config": ((R,), (R,)),
    "healing_report": ((R, T), ()),
    "healing_issues": ((T,), ()),
    "healing_actions": ((R,), ()),
    "corruption_results": ((R,), ()),
    "index_health": ((T,), ()),
    # autonomous: auto-indexing
    "indexing_config": ((R,), ()),
    "set_indexing_config": ((R,), (R,)),
    "indexing_candidates": ((R, T), ()),
    "indexing_recommendations": ((R,), ()),
    "indexing_created": ((R,), ()),
    "indexing_dropped": ((R,), ()),
    # autonomous: self-tuning
    "tuning_report": ((R, T), ()),
    "tuning_parameters": ((R, T), ()),
    "override_parameter": ((R, T), (R,)),
    "tuning_actions": ((R,), ()),
    "apply_tuning": ((R, T), (R, T)),
    # backup and recovery
    "take_full_backup": ((R, T), (R, F)),
    "take_incremental_backup": ((R, T), (R, F)),
    "list_backups": ((R,), ()),
    "get_backup": ((R, F), ()),
    "delete_backup": ((R, F), (R, F)),
    "verify_backup": ((R, F), (R,)),
    "restore_backup": ((R, F), (F,)),
    "get_backup_schedule": ((R,), ()),
    "set_backup_schedule": ((R,), (R,)),
    "create_restore_point": ((R, T), (T, R, F)),
    "list_restore_points": ((R,), ()),
    "backup_report": ((R, F), ()),
    "cloud_providers": ((), ()),
    "upload_backup": ((R, F), (R, F)),
    # restores into $OPSCORE_HOME/clones, records the clone, starts a server process
    "clone_backup": ((R, F), (R, F)),
    # alerts, metrics, health
    "create_alert_rule": ((R,), (R,)),
    "list_alert_rules": ((R,), ()),
    "get_alert_rule": ((R,), ()),
    "update_alert_rule": ((R,), (R,)),
    "delete_alert_rule": ((R,), (R,)),
    "list_alerts": ((R,), ()),
    "ack_alert": ((R,), (R,)),
    "target_metrics": ((R, T), ()),
    "prometheus_metrics": ((R, T), ()),
    "health_liveness": ((), ()),
    "health_startup": ((R,), ()),
    "health_readiness": ((R, T), ()),
    "health_full": ((R, T, F), ()),
    # workload ML and capacity
    "train_ml": ((R,), (R, F)),
    "ml_anomalies": ((R, T), (R,)),  # detection stores anomalies; ADDM may read the target
    "capacity_forecasts": ((R,), ()),
    "capacity_alerts": ((R,), ()),
    "storage_growth": ((R,), ()),
    "maintenance_windows": ((R,), ()),
    # resource groups (target roles, journaled) and quotas
    "create_resource_group": ((R, T), (T, R)),
    "list_resource_groups": ((R, T), ()),
    "get_resource_group": ((R, T), ()),
    "update_resource_group": ((R, T), (T, R)),
    "delete_resource_group": ((R, T), (T, R)),
    "resource_group_stats": ((R, T), ()),
    "set_quota": ((R, T), (R, T)),  # changing an enforced quota reverts its enforcement
    "list_quotas": ((R,), ()),
    # live locks, deadlocks, server log (the log file: local, or pg_read_file on the target)
    "live_locks": ((R, T), ()),
    # replication, storage (live, target) and performance events (repository)
    "replication_status": ((R, T), ()),
    "cluster_topology": ((R, T), ()),
    "cluster_nodes": ((R, T), ()),
    "storage_status": ((R, T), ()),
    "performance_events": ((R,), ()),
    "deadlocks": ((R, T, F), ()),
    "server_log": ((R, T, F), ()),
    # V$ views (live; V$SYSTEM_EVENT and DB time from the repository's ASH)
    "v_session": ((R, T), ()),
    "v_sql": ((R, T), ()),
    "v_sysstat": ((R, T), ()),
    "v_system_event": ((R,), ()),
    "v_sesstat": ((R, T), ()),
    "v_transaction": ((R, T), ()),
    # diagnostics: incidents (opened from the repository's alerts, ADDM, actions) and dumps
    "list_incidents": ((R,), (R,)),
    "create_dump": ((R, T, F), (R, F)),
    "get_dump": ((R,), ()),
    "dump_download": ((R, F), ()),
    # dashboards (definitions in the repository)
    "create_dashboard": ((R,), (R,)),
    "list_dashboards": ((R,), (R,)),  # installs the built-in ones on first use
    "get_dashboard": ((R,), (R,)),
    "update_dashboard": ((R,), (R,)),
    "delete_dashboard": ((R,), (R,)),
    "connection_pools": ((R, T), ()),  # and the PgBouncer admin console when configured
    # resource statistics (live; host figures only for a local server; ASH for DB CPU)
    "resource_stats": ((R, T), ()),
    "resource_allocations": ((R, T), ()),
    "memory_stats": ((R, T), ()),
    "cpu_stats": ((R, T), ()),
    "connection_stats": ((R, T), ()),
    "buffer_pool": ((R, T), ()),
    "io_stats": ((R, T), ()),
    "ml_patterns": ((R,), ()),
    "ml_classifications": ((R,), ()),
    "ml_predictions": ((R,), ()),
    "response_time_forecasts": ((R,), ()),
    # SQL Monitor (the plan of an execution is read on the target)
    "sql_monitor": ((T, R), (R,)),
    "sql_execution": ((R, T), ()),
    "sql_execution_plan": ((R, T), ()),
    "sql_execution_statistics": ((R,), ()),
    "sql_monitor_statistics": ((R,), ()),
    "slow_queries": ((R,), ()),
    # SQL Tuning Advisor and SQL profiles (execution on the target is read-only, rolled back)
    "create_tuning_task": ((R,), (R,)),
    "list_tuning_tasks": ((R,), ()),
    "get_tuning_task": ((R,), ()),
    "execute_tuning_task": ((R, T), (R,)),
    "tuning_recommendations": ((R,), ()),
    "delete_tuning_task": ((R,), (R,)),
    "create_sql_profile": ((R,), (R,)),
    "list_sql_profiles": ((R,), ()),
    "drop_sql_profile": ((R,), (R,)),
    "set_sql_profile_enabled": ((R,), (R,)),
    # plan cache and optimizer misestimates
    "plan_cache_statistics": ((R,), ()),
    "plan_cache_entries": ((R,), ()),
    "adaptive_statistics": ((R, T), ()),
    "adaptive_suggestions": ((R, T), ()),
    "query_profiles": ((R, T), ()),
}

#: catalog rows that PostgreSQL itself cannot support, with the reason
NOT_AVAILABLE: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/performance/plan-cache/clear"): (
        "PostgreSQL keeps no shared plan cache: prepared plans live in each session and "
        "DISCARD PLANS clears only the calling session's"
    ),
    ("GET", "/api/v1/resources/io"): (
        "PostgreSQL has no I/O throttling of sessions or groups (only vacuum's cost delay)"
    ),
}


# ----------------------------------------------------------------------------- models


class _Open(BaseModel):
    """Base of generated response models: fields typed, extra keys (computed ones that
    ``as_dict`` adds) allowed."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)


_MODELS: dict[type, type[BaseModel]] = {}

#: result dataclasses whose ``as_dict`` spreads one field's own fields at the top level
#: (class qualified name -> that field); their model has that field's model as its base
FLATTENED = {"ops_core.api.backup.BackupDetail": "backup"}
Records = list[dict[str, Any]]


def _json_type(tp: Any, owner: Any = None) -> Any:
    """The JSON-side type of a Python annotation (what :func:`to_jsonable` produces)."""
    if tp is Any or tp is None or tp is type(None):
        return tp
    if isinstance(tp, str):  # an annotation that could not be resolved
        return Any
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        mapped = tuple(_json_type(a, owner) for a in args)
        return typing.Union[mapped]  # noqa: UP007 (built from a tuple)
    if origin in (list, Sequence, set, frozenset, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple[tuple(_json_type(a, owner) for a in args)]  # type: ignore[misc]
        return list[_json_type(args[0], owner) if args else Any]  # type: ignore[misc]
    if origin is dict or origin is typing.Mapping:
        return dict[str, _json_type(args[1], owner) if len(args) == 2 else Any]  # type: ignore[misc]
    if origin is typing.Literal:
        return tp
    if origin is not None:
        return Any
    if tp is pd.DataFrame:
        return Records
    if isinstance(tp, type):
        if issubclass(tp, bool | int | float | str):
            return tp
        if issubclass(tp, datetime | date):
            return str  # ISO 8601
        if issubclass(tp, PurePath):
            return str
        if dataclasses.is_dataclass(tp):
            return model_for(tp)
    return Any


def model_for(cls: type) -> type[BaseModel]:
    """A pydantic model of a result dataclass, field by field (as serialized)."""
    if cls in _MODELS:
        return _MODELS[cls]
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation names something not importable at runtime
        hints = {f.name: Any for f in dataclasses.fields(cls)}
    fields: dict[str, Any] = {}
    _MODELS[cls] = _Open  # recursion guard for self-referencing types
    base: type[BaseModel] = _Open
    spread = FLATTENED.get(f"{cls.__module__}.{cls.__qualname__}")
    for f in dataclasses.fields(cls):
        if f.name == spread:
            base = _json_type(hints.get(f.name, Any), cls)
            continue
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        jt = _json_type(hints.get(f.name, Any), cls)
        fields[f.name] = (jt, None) if has_default else (jt, ...)
    model = create_model(f"{cls.__name__}Model", __base__=base, **fields)
    _MODELS[cls] = model
    return model


def response_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """The response model of an api function: its return type, as JSON."""
    try:
        ret = typing.get_type_hints(fn).get("return", Any)
    except Exception:
        ret = Any
    jt = _json_type(ret)
    if isinstance(jt, type) and issubclass(jt, BaseModel):
        return jt
    return RootModel[jt]  # type: ignore[valid-type]


def request_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """The request model of an api function: its parameters that a caller can send (callbacks
    such as progress printers are not part of a request)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        tp = hints.get(name, Any)
        if "Callable" in str(tp) or "ProgressFn" in str(tp) or name in ("progress", "on_progress"):
            continue
        default = ... if p.default is p.empty else p.default
        fields[name] = (tp, default)
    return create_model(
        f"{fn.__name__.title().replace('_', '')}Request",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


# -------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    kind: str  # GET/POST/PUT/DELETE, or query/mutation/subscription
    name: str  # the route or GraphQL operation
    description: str
    section: str
    function: str  # the ops_core.api function ("" when not yet)
    status: str  # served / not available: <reason> / not yet
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    cli: str
    app_page: str
    flow: str

    @property
    def served(self) -> bool:
        return self.status == "served"

    @property
    def fn(self) -> Callable[..., Any]:
        from .. import api

        return getattr(api, self.function)

    @cached_property
    def request(self) -> type[BaseModel] | None:
        return request_model(self.fn) if self.served else None

    @cached_property
    def response(self) -> type[BaseModel] | None:
        return response_model(self.fn) if self.served else None

    def call(self, **arguments: Any) -> tuple[Any, BaseModel]:
        """Validate ``arguments`` against the request model, call the function, and validate
        its JSON form against the response model: (the result, the validated model)."""
        assert self.request is not None and self.response is not None, self.status
        req = self.request.model_validate(arguments)
        result = self.fn(**{k: getattr(req, k) for k in req.model_fields_set})
        return result, self.response.model_validate(to_jsonable(result))

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "function": self.function or None,
            "reads": list(self.reads),
            "writes": list(self.writes),
            "cli": self.cli or None,
            "app_page": self.app_page or None,
            "flow": self.flow or None,
        }


def _status(op: catalog.Operation) -> str:
    reason = NOT_AVAILABLE.get((op.kind, op.name))
    if reason:
        return f"not available: {reason}"
    if op.api_function:
        return "served"
    return "not yet"


class Registry(Sequence[Operation]):
    """Every catalog row as an :class:`Operation`, in catalog order (built on first use)."""

    @cached_property
    def _ops(self) -> list[Operation]:
        out = []
        for op in catalog.operations():
            reads, writes = EFFECTS.get(op.api_function, ((), ()))
            out.append(
                Operation(
                    kind=op.kind,
                    name=op.name,
                    description=op.description,
                    section=op.section,
                    function=op.api_function,
                    status=_status(op),
                    reads=reads,
                    writes=writes,
                    cli=op.cli,
                    app_page=op.app_page,
                    flow=op.flow,
                )
            )
        return out

    def __len__(self) -> int:
        return len(self._ops)

    def __getitem__(self, i):  # type: ignore[override]
        return self._ops[i]

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._ops)

    def get(self, kind: str, name: str) -> Operation:
        for op in self._ops:
            if op.kind == kind and op.name == name:
                return op
        raise KeyError(f"{kind} {name}")

    def served(self) -> list[Operation]:
        return [op for op in self._ops if op.served]

    def functions(self) -> list[str]:
        """The distinct api functions that serve catalog rows, in catalog order."""
        return list(dict.fromkeys(op.function for op in self._ops if op.served))

    def coverage(self) -> dict[str, int]:
        counts = {"operations": len(self), "served": 0, "not_available": 0, "not_yet": 0}
        for op in self._ops:
            key = "served" if op.served else "not_yet" if op.status == "not yet" else None
            counts[key or "not_available"] += 1
        return counts


REGISTRY = Registry()
