"""REST routes generated from the operation registry: one route per catalog row (method and
path from ops_core/catalog/endpoints.tsv), its parameters and body from the operation's
request model, its answer validated against the response model. Rows not built yet answer 501
with the catalog's words and become real routes as soon as their operation is registered.

Transport rules (no logic of its own):

- ``{id}`` in a path is the function's parameter named ``id``, else the first ending in
  ``_id``, else the first required one ending in ``id`` (``queryid``), else the first
  required parameter (a name, a target).
- GET and DELETE take the other parameters from the query string; POST and PUT from a JSON
  body (unknown fields refused).
- A GET answering a list pages and filters: ``offset``, ``limit`` (a function that has its own
  ``limit`` receives ``offset + limit``), ``sort`` (``field`` or ``-field``), ``filter``
  (``field:value``, repeatable, all must hold); the count before paging is in
  ``X-Total-Count``. An unknown query parameter is refused (400), never ignored.
- A text answer (Prometheus exposition) is served as ``text/plain``; a health probe whose
  verdict is failing answers 503 (what Kubernetes probes read).
- Optional server-side paths (``reports_dir``) are not request parameters: the server's
  configured directory applies.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import typing
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, RootModel, create_model
from pydantic.fields import FieldInfo

from ..api.registry import REGISTRY, Operation
from ..model.serialize import to_jsonable
from .auth import Authenticator, required_role
from .errors import ERROR_RESPONSES, ApiError

__all__ = ["HTTP_METHODS", "FIXED", "id_field", "install", "is_list", "route_table"]

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE")
PAGING = ("offset", "limit", "sort", "filter")
NOT_SERVED_TAG = "not served"  # rows not built yet or not available: they answer 501
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: arguments a route fixes because its path names them (the same function serves two rows)
FIXED: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/workload/reports/awr"): {"kind": "awr"},
    ("POST", "/api/v1/monitoring/ash/reports"): {"kind": "ash"},
}
#: defaults a route sets because its path names them (the caller may still change them)
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/performance/hub/sessions"): {"by": "session"},
    ("GET", "/api/v1/performance/hub/wait-events"): {"by": "event"},
    ("GET", "/api/v1/stats/v$system-event"): {"by": "event"},
}
SCALARS = (str, int, float, bool)
log = logging.getLogger("ops_core.http")


def id_field(op: Operation) -> str | None:
    """The request field that a path's ``{id}`` names (see the module docstring)."""
    assert op.request is not None
    names = list(op.request.model_fields)
    required = [n for n, fi in op.request.model_fields.items() if fi.is_required()]
    for pool, rule in (
        (names, lambda n: n == "id"),
        (names, lambda n: n.endswith("_id")),
        (required, lambda n: n.endswith("id")),
        (required, lambda n: True),
        (names, lambda n: True),
    ):
        found = [n for n in pool if rule(n)]
        if found:
            return found[0]
    return None


def is_list(op: Operation) -> bool:
    if op.response is None or not issubclass(op.response, RootModel):
        return False
    return typing.get_origin(op.response.model_fields["root"].annotation) is list


def _item_fields(op: Operation) -> set[str] | None:
    """Field names of a list's items when they are typed models (None: open records)."""
    assert op.response is not None
    args = typing.get_args(op.response.model_fields["root"].annotation)
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return set(args[0].model_fields)
    return None


def _withheld(name: str, fi: FieldInfo) -> bool:
    return not fi.is_required() and "Path" in str(fi.annotation) and name.endswith("_dir")


def _scalar(annotation: Any) -> Any:
    """The annotation a query or path parameter is declared with: a scalar or optional scalar
    as is, anything richer as a string (the request model converts it)."""
    if annotation in SCALARS:
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1 and args[0] in SCALARS:
        return annotation
    if args and all(a in (int, str) for a in args):
        return str
    return str | None if type(None) in typing.get_args(annotation) else str


def _description(fi: FieldInfo) -> str | None:
    return fi.description


def _page(
    op: Operation, data: list[Any], offset: int, limit: int | None, sort: str | None, filters
) -> tuple[list[Any], int]:
    known = _item_fields(op)
    records = all(isinstance(r, dict) for r in data)
    for f in filters or ():
        field, sep, value = f.partition(":")
        if not sep or not field:
            raise ApiError(400, "bad_input", f"filter {f!r}: use field:value.")
        if not records:
            raise ApiError(400, "bad_input", "This list's items are not records to filter.")
        if (known is not None and field not in known) or (
            known is None and data and not any(field in r for r in data)
        ):
            raise ApiError(
                400,
                "bad_input",
                f"filter: the items have no field {field!r}.",
                {"fields": sorted(known or (set(data[0]) if data else set()))},
            )

        def text(v: Any) -> str:
            return v if isinstance(v, str) else json.dumps(v)

        data = [r for r in data if text(r.get(field)) == value]
    if sort:
        field = sort.lstrip("-")
        if not records or (data and not any(field in r for r in data)):
            raise ApiError(400, "bad_input", f"sort: the items have no field {field!r}.")
        present = [r for r in data if r.get(field) is not None]
        missing = [r for r in data if r.get(field) is None]
        try:
            present.sort(key=lambda r: r[field], reverse=sort.startswith("-"))
        except TypeError:
            present.sort(key=lambda r: str(r[field]), reverse=sort.startswith("-"))
        data = present + missing
    total = len(data)
    end = None if limit is None else offset + limit
    return data[offset:end], total


def _auth_dependency(op: Operation, auth: Authenticator) -> Callable[[Request], None]:
    need = required_role(op)
    label = f"{op.kind} {op.name}"

    def check(request: Request) -> None:
        token = auth.check(auth.token_of(request.headers))
        auth.allow(token, need, label)
        request.state.token_name = token.name

    return check


def _not_yet(op: Operation) -> Callable[..., Response]:
    def endpoint(**_: Any) -> Response:
        words = "not built yet" if op.status == "not yet" else op.status
        raise ApiError(
            501,
            "not_implemented" if op.status == "not yet" else "not_available",
            f"{op.kind} {op.name} ({op.description}): {words}.",
            {"status": op.status, "catalog_section": op.section},
        )

    params = [
        inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=str, default=Path())
        for p in re.findall(r"{(\w+)}", op.name)
    ]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return endpoint


def _unmapped(op: Operation, reason: str) -> Callable[..., Response]:
    def endpoint(**_: Any) -> Response:
        raise ApiError(500, "not_mappable", f"{op.kind} {op.name}: {reason}")

    params = [
        inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=str, default=Path())
        for p in re.findall(r"{(\w+)}", op.name)
    ]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return endpoint


def _served(op: Operation, model_names: dict[str, int]) -> tuple[Callable[..., Response], dict]:
    assert op.request is not None and op.response is not None
    fields = {n: fi for n, fi in op.request.model_fields.items() if not _withheld(n, fi)}
    fixed = FIXED.get((op.kind, op.name), {})
    defaults = DEFAULTS.get((op.kind, op.name), {})
    path_names = re.findall(r"{(\w+)}", op.name)
    path_map = {}
    for p in path_names:
        target = id_field(op) if p == "id" else p
        if target is None or target not in fields:
            raise RuntimeError(f"{op.kind} {op.name}: no parameter for {{{p}}}")
        path_map[p] = target
    rest = {n: fi for n, fi in fields.items() if n not in path_map.values() and n not in fixed}
    params: list[inspect.Parameter] = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    for p, f in path_map.items():
        params.append(
            inspect.Parameter(
                p,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_scalar(fields[f].annotation),
                default=Path(description=f"the {f}"),
            )
        )
    in_query = op.kind in ("GET", "DELETE")
    paged = op.kind == "GET" and is_list(op)
    query_names: list[str] = []
    body_model: type[BaseModel] | None = None
    if in_query:
        for n, fi in rest.items():
            if paged and n in PAGING:
                continue  # the page's limit (forwarded as the function's limit)
            default = defaults.get(n, ... if fi.is_required() else fi.default)
            params.append(
                inspect.Parameter(
                    n,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=_scalar(fi.annotation),
                    default=Query(default),
                )
            )
            query_names.append(n)
    elif rest:
        base = "".join(w.title() for w in op.function.split("_")) + "Body"
        model_names[base] = model_names.get(base, 0) + 1
        name = base if model_names[base] == 1 else f"{base}{model_names[base]}"
        body_model = create_model(
            name,
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **{
                n: (fi.annotation, defaults.get(n, ... if fi.is_required() else fi.default))
                for n, fi in rest.items()
            },
        )
        required = any(fi.is_required() for fi in rest.values())
        params.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=body_model if required else body_model | None,
                default=Body(...) if required else Body(None),
            )
        )
    if paged:
        params += [
            inspect.Parameter(
                "offset",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=int,
                default=Query(0, ge=0, description="rows to skip"),
            ),
            inspect.Parameter(
                "limit",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=int | None,
                default=Query(None, ge=1, le=100_000, description="rows to return"),
            ),
            inspect.Parameter(
                "sort",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str | None,
                default=Query(None, description="field, or -field for descending"),
            ),
            inspect.Parameter(
                "filter",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=list[str] | None,
                default=Query(None, description="field:value (repeat: all must hold)"),
            ),
        ]
    known_query = set(query_names) | (set(PAGING) if paged else set())
    fn_has_limit = "limit" in fields
    text = op.response.model_fields.get("root") is not None and (
        op.response.model_fields["root"].annotation is str
    )
    probe = op.name.startswith("/api/v1/health/")

    def endpoint(request: Request, **kw: Any) -> Response:
        unknown = sorted(set(request.query_params) - known_query)
        if unknown:
            raise ApiError(
                400,
                "bad_input",
                f"Unknown query parameter(s): {', '.join(unknown)}.",
                {"accepted": sorted(known_query)},
            )
        args: dict[str, Any] = dict(defaults)
        args.update(fixed)
        for p, f in path_map.items():
            args[f] = kw[p]
        for n in query_names:
            if n in request.query_params or n in defaults:
                args[n] = kw[n]
        body = kw.get("body")
        if body is not None:
            args.update(body.model_dump(exclude_unset=True))
        if paged and fn_has_limit and kw.get("limit") is not None:
            args["limit"] = kw["offset"] + kw["limit"]
        result, data = _call(op, args)
        if text:
            return PlainTextResponse(result, media_type=PROMETHEUS_TYPE)
        status = 200
        if probe and getattr(result, "ok", True) is False:
            status = 503
        if paged:
            page, total = _page(
                op, data, kw["offset"], kw.get("limit"), kw.get("sort"), kw.get("filter")
            )
            return JSONResponse(page, headers={"X-Total-Count": str(total)})
        return JSONResponse(data, status_code=status)

    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    extra: dict[str, Any] = {}
    if text:  # errors stay JSON: only the 200 answer is text
        extra["response_model"] = None
        extra["responses"] = {
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "text"}
        }
    else:
        extra["response_model"] = op.response
        if paged:
            extra["responses"] = {
                200: {"headers": {"X-Total-Count": {"schema": {"type": "integer"}}}}
            }
        if probe:
            extra["responses"] = {503: {"model": op.response, "description": "failing"}}
    return endpoint, extra


def _call(op: Operation, args: dict[str, Any]) -> tuple[Any, Any]:
    """``Operation.call`` serializing the result once: (the result, its JSON form, validated
    against the response model). The answer is this JSON form, so FastAPI does not validate
    it again (to_jsonable twice was a quarter of a cached read's time under the burst)."""
    assert op.request is not None and op.response is not None
    req = op.request.model_validate(args)
    result = op.fn(**{k: getattr(req, k) for k in req.model_fields_set})
    data = to_jsonable(result)
    op.response.model_validate(data)
    return result, data


def route_table() -> list[Operation]:
    """The REST rows of the registry, static paths before parameterised ones (so
    ``/backup/list`` is not taken for ``/backup/{id}``)."""
    rows = [op for op in REGISTRY if op.kind in HTTP_METHODS]
    return sorted(rows, key=lambda op: op.name.count("{"))


def install(app: FastAPI, auth: Authenticator) -> None:
    router = APIRouter()
    model_names: dict[str, int] = {}
    unmapped: list[str] = []
    app.state.unmapped = unmapped
    for op in route_table():
        tag = op.section.split(":", 1)[-1].strip() or "catalog"
        tags = [tag]
        responses = dict(ERROR_RESPONSES)
        if op.served:
            try:
                endpoint, extra = _served(op, model_names)
            except Exception as exc:  # a signature HTTP cannot carry: said, not hidden
                log.error("%s %s cannot be served over HTTP: %s", op.kind, op.name, exc)
                unmapped.append(f"{op.kind} {op.name}: {exc}")
                endpoint, extra = _unmapped(op, str(exc)), {}
            responses.update(extra.pop("responses", {}))
            summary = op.description
        else:
            endpoint, extra = _not_yet(op), {}
            summary = f"{op.description} ({op.status.split(':')[0]})"
            tags = [tag, NOT_SERVED_TAG]
        public = op.name.startswith("/api/v1/health/") and op.name != "/api/v1/health/full"
        router.add_api_route(
            op.name,
            endpoint,
            methods=[op.kind],
            summary=summary,
            description=_doc(op),
            tags=tags,
            responses=responses,
            dependencies=[] if public else [Depends(_auth_dependency(op, auth))],
            operation_id=_operation_id(op),
            **extra,
        )
    app.include_router(router)


def _doc(op: Operation) -> str:
    lines = [op.description, "", f"Status: {op.status}."]
    if op.served:
        lines.append(f"Function: `ops_core.api.{op.function}`; role: {required_role(op)}.")
        reads = ", ".join(op.reads) or "nothing"
        writes = ", ".join(op.writes) or "nothing"
        lines.append(f"Reads {reads}; writes {writes}.")
    if op.cli:
        lines.append(f"CLI: `{op.cli}`.")
    return "\n".join(lines)


def _operation_id(op: Operation) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", op.name.removeprefix("/api/v1/")).strip("_")
    return f"{op.kind.lower()}_{slug}"
