-- Workload ML (issue 15): an anomaly says why it is only a warning when its score reached the
-- alert level: a throughput-only move with the statements in flight unchanged is the same work
-- at another speed (the host or server ran faster or slower for everyone), not a workload
-- change. NULL for every other anomaly, and for those stored before.
ALTER TABLE opscore.ml_anomalies ADD COLUMN note text;
