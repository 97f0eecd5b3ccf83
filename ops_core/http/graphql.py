"""GraphQL (strawberry) generated from the registry's GraphQL rows
(ops_core/catalog/graphql.tsv): each query, mutation and subscription is a field whose
arguments are the operation's request model (camelCase) and whose answer is the operation's
JSON (the same that REST serves, validated against the same response model). Subscriptions
poll the same function every ``interval`` seconds and send ``{polledAt, data, added}``
(``added``: the rows that were not in the previous poll; none on the first). Rows not built yet
are fields that answer an error with code ``NOT_IMPLEMENTED`` and the catalog's words.

Limits: query depth, aliases, tokens, and a cost limit (operation calls per request).
Auth: the same tokens and roles as REST (``Authorization`` header; over WebSocket, the
``connection_init`` payload ``{"Authorization": "Bearer ..."}``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any

import strawberry
from anyio import to_thread
from graphql import GraphQLError, ValidationRule
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.tools import create_type

from ..api.registry import REGISTRY, Operation
from ..errors import OpsCoreError
from ..model.serialize import to_jsonable
from .auth import Authenticator, required_role
from .errors import ApiError, status_of
from .gqltypes import SCALAR_MAP, TypeBuilder, field_of, is_json

__all__ = ["LIMITS", "build_schema", "graphql_router", "field_name"]

LIMITS = {"depth": 8, "aliases": 10, "tokens": 2000, "calls": 8}
SUB_INTERVAL = (0.5, 2.0, 300.0)  # min, default, max seconds between polls
SCALARS = (str, int, float, bool)


def field_name(op: Operation) -> str:
    """``slowQueries(limit)`` -> ``slowQueries`` (the catalog names hint arguments)."""
    return op.name.split("(", 1)[0].strip()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _scalar_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list and typing.get_args(annotation)[:1] in [
        (t,) for t in SCALARS
    ]


def _arg_type(annotation: Any) -> Any:
    """A GraphQL-able argument type: scalars and lists of them as they are, anything richer
    as JSON."""
    if annotation in SCALARS or _scalar_list(annotation):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1 and (args[0] in SCALARS or _scalar_list(args[0])):
        return args[0]
    if args and all(a in (int, str) for a in args):
        return str
    if all(a in SCALARS or "datetime" in str(a) or "Path" in str(a) for a in args) and args:
        return str
    return JSON


def _error(exc: Exception) -> GraphQLError:
    if isinstance(exc, ApiError):
        return GraphQLError(
            exc.message, extensions={"code": exc.code.upper(), "status": exc.status}
        )
    if isinstance(exc, OpsCoreError):
        status, code = status_of(exc)
        ext: dict[str, Any] = {"code": code.upper(), "status": status}
        if exc.hint:
            ext["hint"] = exc.hint
        return GraphQLError(exc.message, extensions=ext)
    if isinstance(exc, ValueError):  # request model validation
        return GraphQLError(str(exc), extensions={"code": "BAD_INPUT", "status": 400})
    return GraphQLError(
        f"Unexpected {type(exc).__name__}; the server log has the trace.",
        extensions={"code": "INTERNAL", "status": 500},
    )


class _Auth:
    def __init__(self, auth: Authenticator):
        self.auth = auth

    async def require(self, info: strawberry.Info, op: Operation) -> None:
        ctx = info.context
        token = ctx.get("token")
        if token is None:
            secret = self.auth.token_of(ctx["request"].headers)
            token = await to_thread.run_sync(self.auth.check, secret)
            ctx["token"] = token
        self.auth.allow(token, required_role(op), f"{op.kind} {field_name(op)}")


def _signature(op: Operation, *, extra: list[inspect.Parameter] = ()) -> inspect.Signature:
    params = [
        inspect.Parameter(
            "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
        )
    ]
    assert op.request is not None
    for n, fi in op.request.model_fields.items():
        if not fi.is_required() and "Path" in str(fi.annotation) and n.endswith("_dir"):
            continue  # server-side directory: the configured one applies
        tp = _arg_type(fi.annotation)
        if fi.is_required():
            params.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=tp))
        else:
            params.append(
                inspect.Parameter(
                    n,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=tp | None,
                    default=strawberry.UNSET,
                )
            )
    return inspect.Signature([*params, *extra], return_annotation=JSON)


def _given(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not strawberry.UNSET}


def _resolver(op: Operation, auth: _Auth, answer: Any) -> Callable[..., Any]:
    async def resolve(info: strawberry.Info, **kw: Any) -> Any:
        try:
            await auth.require(info, op)
            if not op.served:
                raise ApiError(501, "not_implemented", _not_built(op))
            result, _ = await to_thread.run_sync(lambda: op.call(**_given(kw)))
            return to_jsonable(result)
        except GraphQLError:
            raise
        except Exception as exc:  # one error shape: code + status in extensions
            raise _error(exc) from exc

    resolve.__name__ = _snake(field_name(op))
    if op.served:
        resolve.__signature__ = _signature(op).replace(  # type: ignore[attr-defined]
            return_annotation=answer
        )
    else:
        resolve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(
                    "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
                )
            ],
            return_annotation=JSON,
        )
    return resolve


def _not_built(op: Operation) -> str:
    words = "not built yet" if op.status == "not yet" else op.status
    return f"{op.kind} {op.name}: {words}."


def _row_key(row: Any) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _subscriber(op: Operation, auth: _Auth, event: Any) -> Callable[..., Any]:
    lo, default, hi = SUB_INTERVAL

    async def subscribe(info: strawberry.Info, **kw: Any) -> AsyncGenerator[Any, None]:
        try:
            await auth.require(info, op)
            if not op.served:
                raise ApiError(501, "not_implemented", _not_built(op))
            interval = kw.pop("interval", strawberry.UNSET)
            interval = default if interval in (None, strawberry.UNSET) else interval
            if not lo <= interval <= hi:
                raise ApiError(400, "bad_input", f"interval must be {lo} to {hi} seconds.")
            args = _given(kw)
            previous: set[str] | None = None
            while True:
                result, _ = await to_thread.run_sync(lambda: op.call(**args))
                data = to_jsonable(result)
                items = data if isinstance(data, list) else [data]
                keys = {_row_key(r) for r in items}
                added = (
                    [] if previous is None else [r for r in items if _row_key(r) not in previous]
                )
                previous = keys
                yield {"polled_at": datetime.now(UTC).isoformat(), "data": data, "added": added}
                await asyncio.sleep(interval)
        except GraphQLError:
            raise
        except Exception as exc:
            raise _error(exc) from exc

    subscribe.__name__ = _snake(field_name(op))
    interval = inspect.Parameter(
        "interval",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=float | None,
        default=strawberry.UNSET,
    )
    if op.served:
        sig = _signature(op, extra=[interval])
    else:
        sig = inspect.Signature(
            [
                inspect.Parameter(
                    "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
                ),
                interval,
            ]
        )
    subscribe.__signature__ = sig.replace(  # type: ignore[attr-defined]
        return_annotation=AsyncGenerator[event, None]
    )
    return subscribe


class CallLimit(ValidationRule):
    """Cost limit: each root field is one opscore operation (a repository or target query);
    a request may call at most ``LIMITS['calls']`` of them (fragments counted through)."""

    def enter_operation_definition(self, node, *_):
        count = 0
        pending = list(node.selection_set.selections)
        seen: set[str] = set()
        while pending:
            sel = pending.pop()
            kind = type(sel).__name__
            if kind == "FieldNode":
                if not sel.name.value.startswith("__"):
                    count += 1
            elif kind == "FragmentSpreadNode":
                name = sel.name.value
                frag = self.context.get_fragment(name)
                if frag is not None and name not in seen:
                    seen.add(name)
                    pending.extend(frag.selection_set.selections)
            elif kind == "InlineFragmentNode":
                pending.extend(sel.selection_set.selections)
        if count > LIMITS["calls"]:
            self.report_error(
                GraphQLError(
                    f"Query cost {count} operation calls exceeds the limit of "
                    f"{LIMITS['calls']}; split it into several requests.",
                    node,
                )
            )


class _Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Log what went wrong on the server's side only (a 404 or 403 is the caller's)."""
        ours = [e for e in errors if (e.extensions or {}).get("status") == 500]
        if ours:
            super().process_errors(ours, execution_context)


def _event_type(op: Operation, answer: Any, built: TypeBuilder) -> Any:
    """``{Field}Event { polledAt data added }`` of a subscription: ``data`` the operation's
    answer, ``added`` the rows (or the object) new since the previous poll."""
    inner = [a for a in typing.get_args(answer) if a is not type(None)]
    base = inner[0] if typing.get_origin(answer) is typing.Union and len(inner) == 1 else answer
    row = typing.get_args(base)[0] if typing.get_origin(base) is list else base
    name = field_name(op)[0].upper() + field_name(op)[1:] + "Event"
    ns = {
        "__annotations__": {
            "polled_at": str,
            "data": answer,
            "added": list[row],  # type: ignore[valid-type]
        },
        "__module__": __name__,
    }
    return strawberry.type(type(name, (), ns), name=name, description=f"One poll of {op.name}.")


def build_schema(auth: Authenticator) -> strawberry.Schema:
    guard = _Auth(auth)
    built = TypeBuilder()
    by_kind: dict[str, list[Any]] = {"query": [], "mutation": [], "subscription": []}
    seen: set[tuple[str, str]] = set()
    for op in REGISTRY:
        if op.kind not in by_kind or (op.kind, field_name(op)) in seen:
            continue
        seen.add((op.kind, field_name(op)))
        desc = f"{op.description} — {op.status}" + (
            f" (ops_core.api.{op.function}; role {required_role(op)})" if op.served else ""
        )
        answer = built.response(op.response) if op.served else JSON
        if not is_json(answer):
            answer = typing.Optional[answer]  # noqa: UP045 (an error answers null)
        if op.kind == "subscription":
            event = _event_type(op, answer, built) if op.served else JSON
            by_kind[op.kind].append(
                strawberry.subscription(
                    resolver=_subscriber(op, guard, event), name=field_name(op), description=desc
                )
            )
        elif op.kind == "mutation":
            by_kind[op.kind].append(
                strawberry.mutation(
                    resolver=_resolver(op, guard, answer), name=field_name(op), description=desc
                )
            )
        else:
            by_kind[op.kind].append(
                strawberry.field(
                    resolver=_resolver(op, guard, answer), name=field_name(op), description=desc
                )
            )
    types = {k: create_type(k.title(), v) if v else None for k, v in by_kind.items()}
    return _Schema(
        query=types["query"],
        mutation=types["mutation"],
        subscription=types["subscription"],
        config=StrawberryConfig(scalar_map=SCALAR_MAP, default_resolver=field_of),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=LIMITS["depth"]),
            lambda: MaxAliasesLimiter(max_alias_count=LIMITS["aliases"]),
            lambda: MaxTokensLimiter(max_token_count=LIMITS["tokens"]),
            lambda: AddValidationRules([CallLimit]),
        ],
    )


class _Router(GraphQLRouter):
    auth: Authenticator

    async def on_ws_connect(self, context: Any) -> Any:
        params = context.get("connection_params") or {}
        value = (
            params.get("Authorization") or params.get("authorization")
            if isinstance(params, dict)
            else None
        )
        try:
            secret = self.auth.token_of({"authorization": value} if value else {})
            context["token"] = await to_thread.run_sync(self.auth.check, secret)
        except ApiError as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from None
        return await super().on_ws_connect(context)


def graphql_router(auth: Authenticator) -> GraphQLRouter:
    router = _Router(
        build_schema(auth),
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        graphql_ide="graphiql",
    )
    router.auth = auth
    return router
