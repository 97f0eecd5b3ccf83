"""Collectors: read-only catalog queries against targets (SQL files per view and minimum
server version), snapshot capture, host metrics."""
