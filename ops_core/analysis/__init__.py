"""Analysis: pure functions over repository data (DataFrames in, DataFrames/dataclasses out)."""
