-- opscore repository: the delta state as bytes (issue 21, the repository side of a snapshot).
--
-- snapshot_state.state held the ~1 MB JSON of 5,000 statements as `json`: every snapshot made
-- the repository validate it (a JSON parse) and pglz-compress it before writing, ~30 ms of
-- backend time per snapshot (bench in the commit), for a value only opscore reads back whole.
-- Now the same JSON text as bytes (UTF-8), stored uncompressed out of line: written as is.
ALTER TABLE opscore.snapshot_state
    ALTER COLUMN state TYPE bytea USING convert_to(state::text, 'UTF8');
ALTER TABLE opscore.snapshot_state ALTER COLUMN state SET STORAGE EXTERNAL;
COMMENT ON COLUMN opscore.snapshot_state.state IS
    'Cumulative counters of the last capture per row key, for the next delta: JSON text as UTF-8 bytes';
