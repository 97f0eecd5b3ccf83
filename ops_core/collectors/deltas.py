"""Reset detection and per-interval deltas: moved to :mod:`ops_core.model.deltas` (the
repository applies them in its snapshot transaction, and imports nothing above the model);
re-exported here for the collectors' callers."""

from ..model.deltas import (  # noqa: F401
    JSON_SOURCES,
    DeltaResult,
    Previous,
    Reset,
    SnapshotDeltas,
    compute,
    key_of,
    snapshot_deltas,
    state,
)
