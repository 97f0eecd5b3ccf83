-- opscore repository: the delta state is not WAL-logged (issue 21, the repository at fleet scale).
--
-- snapshot_state keeps, per target and source, the cumulative counters of the last capture:
-- ~1 MB for 5,000 statements, replaced by every snapshot. Logged, it was most of the WAL a
-- snapshot wrote (the snapshot's own rows are ~160 KB): ~100 MB of WAL per target-day at
-- 15-minute snapshots, 20 GB a day for a fleet of 200 such targets, archived and replicated
-- for a value that is only the base of the next delta. Unlogged, a crash of the repository
-- (or a failover to a replica) empties it: the next capture of each target is then a new
-- baseline, recorded as such in the snapshot's resets, and the one after it has deltas again.
ALTER TABLE opscore.snapshot_state SET UNLOGGED;
COMMENT ON TABLE opscore.snapshot_state IS
    'Cumulative counters of the last capture per target and source (base of the next delta); unlogged: emptied by a crash, the next capture is then a baseline';
