-- opscore repository: the 5-minute ASH summary as compressed arrays (issue 3: the row-per-group
-- summary of 0003 was ~10.6 MB per target-day, most of the repository's steady state).
--
-- opscore.ash_summary_chunks: one row per (target, 5-minute bucket, grouping) holding parallel
-- arrays, one element per group, that TOAST compresses (pglz, as the ASH chunks of 0006):
--   'event'    event_key   -> ash_events: the group (wait class, wait_event_type, event name)
--   'sql'      query_key   -> ash_queries: query_id, and text_hash (the smallest text hash of
--              wait_class     the group's samples), with the group's wait class as text
--   'session'  session_key -> ash_sessions: pid, backend_start, usename, datname,
--                             application_name, backend_type
--   samples    session-samples of the group
--   time_s     sampled seconds; a NULL element stands for samples * weight_s (weight_s: the
--              weight every sample of the bucket had, NULL if they differed): with a steady
--              sampler the whole array is NULL and costs only its null bitmap
--   db_time_s  DB time; a NULL element stands for "equal to time_s"
-- A group is keyed by ONE dictionary entry that decodes to its values (several entries can:
-- sessions that differ only in leader pid or client address, events of one class and name in
-- different states; the smallest key is taken). Every entry a bucket references has last_seen at
-- or after the bucket's start, so retention's dictionary trimming (entries last seen before the
-- oldest kept day) never removes an entry a kept bucket needs.
-- Writer: ops_core.repository.ash_summary.summarize; reader: ash_summary.summary_sql.

CREATE TABLE opscore.ash_summary_chunks (
    target_id     int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    bucket_start  timestamptz NOT NULL,
    grouping      text NOT NULL CHECK (grouping IN ('event', 'sql', 'session')),
    bucket_s      int NOT NULL,
    groups        int NOT NULL,     -- elements per array
    weight_s      real,
    event_key     int[],            -- 'event' only
    query_key     int[],            -- 'sql' only
    wait_class    text[],           -- 'sql' only
    session_key   int[],            -- 'session' only
    samples       int[] NOT NULL,
    time_s        real[] NOT NULL,
    db_time_s     real[] NOT NULL,
    PRIMARY KEY (target_id, bucket_start, grouping)
);
COMMENT ON TABLE opscore.ash_summary_chunks IS
    'ASH DB time per target, 5-minute bucket and grouping (event, sql, session) as parallel arrays';
-- A row over ~2 kB is toasted: by default the toaster compresses its largest arrays only until
-- the row is under ~2 kB, and moves values out of line. Here it compresses every array
-- (toast_tuple_target) and keeps them in the row (MAIN: out of line only if a row outgrows a
-- page), where a small compressed array costs less than a TOAST row. Smaller rows (the event
-- and session groupings of a few dozen groups) are not compressed at all.
ALTER TABLE opscore.ash_summary_chunks SET (toast_tuple_target = 128);
ALTER TABLE opscore.ash_summary_chunks
    ALTER COLUMN event_key SET STORAGE MAIN,
    ALTER COLUMN query_key SET STORAGE MAIN,
    ALTER COLUMN wait_class SET STORAGE MAIN,
    ALTER COLUMN session_key SET STORAGE MAIN,
    ALTER COLUMN samples SET STORAGE MAIN,
    ALTER COLUMN time_s SET STORAGE MAIN,
    ALTER COLUMN db_time_s SET STORAGE MAIN;

-- Complete UTC days added up per group, in the same layout (bucket_start = the day's start,
-- bucket_s = 86400): a long-range read takes a day from here when the range covers it whole and
-- the day has a row, and the 5-minute rows otherwise. A day row always equals the sum of that
-- day's 5-minute rows: summarize() rebuilds it with them, retention drops it with the first
-- 5-minute row it drops of that day and builds the rows complete days lack.
CREATE TABLE opscore.ash_summary_days (
    target_id     int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    bucket_start  timestamptz NOT NULL,
    grouping      text NOT NULL CHECK (grouping IN ('event', 'sql', 'session')),
    bucket_s      int NOT NULL,
    groups        int NOT NULL,
    weight_s      real,
    event_key     int[],
    query_key     int[],
    wait_class    text[],
    session_key   int[],
    samples       int[] NOT NULL,
    time_s        real[] NOT NULL,
    db_time_s     real[] NOT NULL,
    PRIMARY KEY (target_id, bucket_start, grouping)
);
COMMENT ON TABLE opscore.ash_summary_days IS
    'ASH summary per target, complete UTC day and grouping: the sum of the day''s 5-minute rows';
ALTER TABLE opscore.ash_summary_days SET (toast_tuple_target = 128);
ALTER TABLE opscore.ash_summary_days
    ALTER COLUMN event_key SET STORAGE MAIN,
    ALTER COLUMN query_key SET STORAGE MAIN,
    ALTER COLUMN wait_class SET STORAGE MAIN,
    ALTER COLUMN session_key SET STORAGE MAIN,
    ALTER COLUMN samples SET STORAGE MAIN,
    ALTER COLUMN time_s SET STORAGE MAIN,
    ALTER COLUMN db_time_s SET STORAGE MAIN;

-- The row summary of 0003 (opscore.ash_summary) goes. Its conversion into the arrays above was
-- removed in issue 20: every installation has converted it long ago (a repository created
-- since holds no rows there). A repository that still holds rows there is refused, with
-- nothing changed, rather than losing them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM opscore.ash_summary) THEN
        RAISE EXCEPTION 'opscore.ash_summary holds the ASH summary of migration 0003'
            USING HINT = 'Upgrade through an opscore release before issue 20 first (it converts '
                         'that summary), then to this one.';
    END IF;
END $$;
DROP TABLE opscore.ash_summary;
