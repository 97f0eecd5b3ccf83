"""The one serializer from opscore's results to JSON-ready values.

Every surface that prints JSON (the CLI's ``--json``, the app's downloads, the coming HTTP API)
and every response model of the operation registry go through :func:`to_jsonable`, so they
agree field by field. :func:`frame_records` is the one DataFrame-to-records conversion (missing
values become None, never NaN).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import pandas as pd

__all__ = ["frame_records", "to_jsonable"]


def frame_records(df: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """The rows of ``df`` as dicts (column -> value), NaN/NaT/NA as None; None stays None."""
    if df is None:
        return None
    return df.astype(object).where(df.notna(), None).to_dict("records")


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON types: dataclasses through their ``as_dict()`` (else their fields),
    DataFrames as records, timestamps as ISO 8601, decimals and numpy scalars as numbers,
    NaN as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(r) for r in frame_records(value) or []]
    if isinstance(value, pd.Series):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return None if pd.isna(value) else value.total_seconds()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_dict = getattr(value, "as_dict", None)
        raw = as_dict() if callable(as_dict) else {
            f.name: getattr(value, f.name) for f in dataclasses.fields(value)
        }  # fmt: skip
        return to_jsonable(raw)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if callable(getattr(value, "tolist", None)):  # numpy scalars and arrays
        return to_jsonable(value.tolist())
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)
