"""The one serializer (ops_core.model.serialize): what every JSON answer goes through."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from ops_core.model.serialize import frame_records, to_jsonable


@dataclass
class _Plain:
    at: datetime
    n: Decimal


@dataclass
class _Custom:
    x: int

    def as_dict(self):
        return {"x": self.x, "double": self.x * 2}


def test_frames_become_records_with_none_for_missing():
    df = pd.DataFrame(
        {
            "a": [1, None],
            "t": [pd.Timestamp("2026-01-01", tz="UTC"), pd.NaT],
            "arr": [np.array([1, 2]), None],
        }
    )
    assert frame_records(None) is None
    out = to_jsonable(df)
    assert out == [
        {"a": 1.0, "t": "2026-01-01T00:00:00+00:00", "arr": [1, 2]},
        {"a": None, "t": None, "arr": None},
    ]
    json.dumps(out, allow_nan=False)  # valid JSON: no NaN


def test_dataclasses_numbers_and_times():
    at = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    assert to_jsonable(_Plain(at, Decimal("1.5"))) == {"at": at.isoformat(), "n": 1.5}
    assert to_jsonable(_Custom(2)) == {"x": 2, "double": 4}  # its as_dict wins
    assert to_jsonable({1: (np.int64(3), timedelta(seconds=90), float("nan"))}) == {
        "1": [3, 90.0, None]
    }
