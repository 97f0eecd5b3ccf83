"""Workload ML over snapshot and ASH series: pure functions, frames in, results out.

- :mod:`.anomaly`: per-metric seasonal decomposition (STL / MSTL) or robust z-scores, and a
  multivariate IsolationForest over the load profile;
- :mod:`.windows`: maintenance windows (quietest recurring hour-of-week slots);
- :mod:`.series`: regular series from irregular snapshots.

Capacity forecasts are :mod:`ops_core.analysis.capacity`.
"""
