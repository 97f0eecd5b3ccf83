"""Examples in the OpenAPI document, generated from the schemas the registry's models give
(no example is written by hand per operation): every served route's request body, query and
path parameters and JSON answers get one that conforms to its schema.

Values come from the schema (type, format, enum, bounds, default) and the field's name
(``*_at`` a timestamp, ``*_bytes`` a size, ``target`` a target name ...): illustrative
documentation, not figures of a server."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["add_examples", "example"]

NOT_SERVED_TAG = "not served"
#: field name (regex, matched in order) -> example value, when the schema's type allows it
BY_NAME: list[tuple[str, dict[str, Any]]] = [
    (r"(^|_)target$", {"string": "prod-db"}),
    (r"(^|_)(database|datname)$", {"string": "app"}),
    (r"(^|_)(usename|user|owner)$", {"string": "app_user"}),
    (r"(^|_)(name|rule|slot_name)$", {"string": "nightly"}),
    (r"severity$", {"string": "warning"}),
    (r"status$", {"string": "ok"}),
    # a statement stays prose here: surfaces hold no SQL (tests/test_architecture.py)
    (r"(query|sql|statement)(_text)?$", {"string": "<the SQL statement>"}),
    (r"(_at|_time|^begin|^end|start|_seen)$", {"string": "2026-12-05T08:00:00Z"}),
    (r"lsn$", {"string": "0/3000148"}),
    (r"(_id|^id|^pid)$", {"integer": 42}),
    (r"bytes$", {"integer": 16777216, "number": 16777216.0}),
    (r"(_s|_ms|seconds)$", {"number": 1.5, "integer": 2}),
    (r"(pct|percent)", {"number": 12.5}),
    (r"(count|calls|rows|files|limit)$", {"integer": 10}),
    (r"(host|addr)$", {"string": "10.0.0.12"}),
    (r"port$", {"integer": 5432}),
]
PROMETHEUS = '# TYPE opscore_target_up gauge\nopscore_target_up{target="prod-db"} 1\n'
SIMPLE = {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "null": None}
FORMATS = {"date-time": "2026-12-05T08:00:00Z", "date": "2026-12-05", "path": "/var/lib/opscore"}


def _resolve(schema: dict[str, Any], comps: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = comps[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(schema: dict[str, Any], comps: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A value that conforms to ``schema`` (a JSON Schema of the OpenAPI document)."""
    s = _resolve(schema, comps)
    if "example" in s:
        return s["example"]
    if "const" in s:
        return s["const"]
    if s.get("enum"):
        return s["enum"][0]
    if "default" in s and s["default"] is not None:
        return s["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in s:
            options = [o for o in s[key] if _resolve(o, comps).get("type") != "null"]
            if key == "allOf" and len(options) > 1:
                merged: dict[str, Any] = {}
                for o in options:
                    v = example(o, comps, name, depth)
                    if isinstance(v, dict):
                        merged.update(v)
                return merged
            return example(options[0], comps, name, depth) if options else None
    tp = s.get("type")
    if isinstance(tp, list):
        tp = next((t for t in tp if t != "null"), "null")
    if tp == "object" or (tp is None and "properties" in s):
        if depth > 6:
            return {}
        props = s.get("properties") or {}
        out = {k: example(v, comps, k, depth + 1) for k, v in props.items()}
        if not props and isinstance(s.get("additionalProperties"), dict):
            out = {"key": example(s["additionalProperties"], comps, "", depth + 1)}
        return out
    if tp == "array":
        if depth > 6:
            return []
        items = s.get("items") or {}
        if s.get("prefixItems"):
            return [example(i, comps, name, depth + 1) for i in s["prefixItems"]]
        return [example(items, comps, name, depth + 1)] if items else []
    if tp is None:  # any JSON
        return None
    if tp == "string" and s.get("format") in FORMATS:
        return FORMATS[s["format"]]
    for pattern, values in BY_NAME:
        if tp in values and re.search(pattern, name.lower()):
            return _bounded(values[tp], s)
    return _bounded(SIMPLE.get(tp), s)


def _bounded(value: Any, s: dict[str, Any]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo = s.get("minimum", s.get("exclusiveMinimum"))
        hi = s.get("maximum", s.get("exclusiveMaximum"))
        if lo is not None and value < lo:
            value = lo + (1 if "exclusiveMinimum" in s else 0)
        if hi is not None and value > hi:
            value = hi - (1 if "exclusiveMaximum" in s else 0)
    if isinstance(value, str) and s.get("minLength", 0) > len(value):
        value = value.ljust(s["minLength"], "x")
    return value


def add_examples(spec: dict[str, Any]) -> dict[str, Any]:
    """Add an example to every served operation of ``spec`` (in place; returned)."""
    comps = spec.get("components", {}).get("schemas", {})
    for methods in spec.get("paths", {}).values():
        for entry in methods.values():
            if NOT_SERVED_TAG in entry.get("tags", []):
                continue  # answers 501: its example is the error shape's
            for p in entry.get("parameters", []):
                if "example" not in p and "schema" in p:
                    p["example"] = example(p["schema"], comps, p["name"])
            body = entry.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "schema" in body and "example" not in body:
                body["example"] = example(body["schema"], comps)
            for resp in entry.get("responses", {}).values():
                content = resp.get("content", {})
                js = content.get("application/json")
                if js and "schema" in js and "example" not in js:
                    js["example"] = example(js["schema"], comps)
                text = content.get("text/plain")
                if text and "example" not in text:
                    text["example"] = PROMETHEUS
    return spec
