"""GraphQL object types generated from the registry's pydantic response models, so a client
selects the fields it wants (``{ metrics(target: "x") { target up connections } }``) instead of
receiving one JSON blob.

Mapping (the JSON side of each model field, as :func:`ops_core.api.registry.model_for` types
it): str/float/bool as they are; int as ``Long`` (GraphQL's Int is 32-bit, and byte counts,
LSN differences and query ids are not); datetimes are ISO 8601 strings; a nested model is a
nested object type; a list of them a list. What has no fixed shape (DataFrames as records,
dicts, unions of shapes, ``Any``) stays the ``JSON`` scalar. Types are named after their
result class (``TargetMetricsModel`` -> ``TargetMetrics``) and built once per model.

Answers are the same JSON that REST serves (``to_jsonable``); the schema's default resolver
(:func:`field_of`) reads a field as a key: no second serialization path.
"""

from __future__ import annotations

import types
import typing
from typing import Any, NewType

import strawberry
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType
from pydantic import BaseModel, RootModel
from strawberry.scalars import JSON

__all__ = ["Long", "SCALAR_MAP", "TypeBuilder", "field_of", "selection", "is_json"]

Long = NewType("Long", int)
#: the schema's ``scalar_map`` (StrawberryConfig)
SCALAR_MAP = {
    Long: strawberry.scalar(
        name="Long",
        description="A 64-bit integer (sizes in bytes, LSN differences, query ids): GraphQL's "
        "Int is 32-bit.",
        serialize=int,
        parse_value=int,
    )
}


def field_of(obj: Any, name: str) -> Any:
    """The schema's default resolver: answers are JSON, so a field is a key of its object (a
    missing optional key reads as null); anything else by attribute."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name)


def is_json(annotation: Any) -> bool:
    """Whether a generated annotation is (an optional) JSON scalar."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation is JSON or (len(args) == 1 and args[0] is JSON)


def _optional(tp: Any) -> Any:
    return typing.Optional[tp]  # noqa: UP045 (NewType scalars have no | operator everywhere)


class TypeBuilder:
    """Strawberry types for pydantic models, each built once (one instance per schema)."""

    def __init__(self) -> None:
        self.by_model: dict[type[BaseModel], Any] = {}
        self.names: set[str] = set()

    def response(self, model: type[BaseModel]) -> Any:
        """The GraphQL answer type of an operation's response model."""
        if issubclass(model, RootModel):
            return self.output(model.model_fields["root"].annotation)
        return self.output(model)

    def output(self, tp: Any) -> Any:
        if tp is Any or tp is None or tp is type(None) or isinstance(tp, str):
            return JSON
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1:
                return JSON
            out = self.output(inner[0])
            return out if out is JSON else _optional(out)
        if origin is list:
            inner = self.output(args[0]) if args else JSON
            return list[_optional(inner) if inner is JSON else inner]  # type: ignore[valid-type]
        if origin is typing.Literal:
            return str if all(isinstance(a, str) for a in args) else JSON
        if origin is not None:  # dict, tuple, Mapping ...
            return JSON
        if tp is bool:
            return bool
        if tp is int:
            return Long
        if tp in (float, str):
            return tp
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return self.object(tp)
        return JSON

    def object(self, model: type[BaseModel]) -> Any:
        if model in self.by_model:
            return self.by_model[model]
        if not model.model_fields:  # an open model with no declared field
            self.by_model[model] = JSON
            return JSON
        self.by_model[model] = JSON  # recursion guard: a self-reference stays JSON
        name = model.__name__.removesuffix("Model") or "Result"
        base, n = name, 2
        while name in self.names:
            name, n = f"{base}{n}", n + 1
        self.names.add(name)
        annotations: dict[str, Any] = {}
        for fname, fi in model.model_fields.items():
            out = self.output(fi.annotation)
            nullable = not fi.is_required() or type(None) in typing.get_args(fi.annotation)
            if out is JSON or (nullable and typing.get_origin(out) is not typing.Union):
                out = _optional(out)
            annotations[fname] = out
        cls = type(name, (), {"__annotations__": annotations, "__module__": __name__})
        doc = (model.__doc__ or "").strip()
        built = strawberry.type(cls, name=name, description=doc if doc and "pydantic" not in
                                doc else None)  # fmt: skip
        self.by_model[model] = built
        return built


def selection(schema: strawberry.Schema, kind: str, field: str, depth: int = 6) -> str:
    """Every field of an operation's answer as a GraphQL selection set (``""`` for a leaf):
    what a client that wants everything writes (the tests walk every field with it)."""
    gschema = schema._schema
    root = {
        "query": gschema.query_type,
        "mutation": gschema.mutation_type,
        "subscription": gschema.subscription_type,
    }[kind]
    return _select(root.fields[field].type, depth)


def _select(gtype: Any, depth: int) -> str:
    while isinstance(gtype, GraphQLNonNull | GraphQLList):
        gtype = gtype.of_type
    if not isinstance(gtype, GraphQLObjectType) or depth <= 0:
        return ""
    parts = []
    for name, f in gtype.fields.items():
        sub = _select(f.type, depth - 1)
        inner = f.type
        while isinstance(inner, GraphQLNonNull | GraphQLList):
            inner = inner.of_type
        if isinstance(inner, GraphQLObjectType) and not sub:
            continue  # too deep to select: left out
        parts.append(f"{name} {sub}".strip())
    return "{ " + " ".join(parts) + " }"
