"""Shared vocabulary below every layer (no imports of collectors, repository, analysis or api):
the one serializer of frames and records (``serialize``), wait classes and the DB-time rule
(``waits``), the row type of each source (``sources``), the capture record (``capture``) and
the rules that turn its counters into deltas (``deltas``), and ``Target``."""
