"""Shared vocabulary below every layer (no imports of collectors, repository, analysis or api):
today the one serializer of frames and records; the wait classes, ``Finding``, column
definitions and ``Target`` are to move here next (issue 20)."""
