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
-- 5-minute row it drops of that day and builds the rows complete days lack (0003 conversions).
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

-- Conversion of the 0003 summary: every row is kept (not rebuilt from samples, which retention
-- may have dropped already). Its groups are matched to dictionary entries; a group no entry
-- matches (its samples were compacted before 0006, or only history kept them) gets a new entry
-- that decodes to the same values: sessions without leader pid and client address, queries as
-- they are, events in a state that gives the same wait class and event name. Groups are matched
-- on ROW(...)::text, which is NULL-safe and hashable. The wait class and event name below are
-- ops_core.analysis.waits as of this migration.

-- every event entry with the wait class and event name it stands for
CREATE TEMP VIEW ash_event_groups AS
SELECT e.target_id, e.event_key, c.wait_class, e.wait_event_type,
       CASE WHEN e.wait_event_type IS NULL OR e.wait_event IS NULL THEN c.wait_class
            ELSE e.wait_event END AS wait_event
  FROM opscore.ash_events e
 CROSS JOIN LATERAL (
       SELECT CASE WHEN e.wait_event_type IS NULL THEN
                        CASE WHEN e.state IS NULL
                                  OR e.state = ANY ('{active,"fastpath function call"}')
                             THEN 'CPU' ELSE 'Client' END
                   WHEN e.wait_event_type = ANY (
                        '{Lock,LWLock,IO,IPC,Client,Timeout,Extension,BufferPin,Activity}')
                        THEN e.wait_event_type
                   ELSE 'Other' END AS wait_class) c;

-- 1. dictionary entries for the groups no entry matches
INSERT INTO opscore.ash_events (target_id, event_key, state, wait_event_type, wait_event, last_seen)
SELECT m.target_id,
       coalesce((SELECT max(x.event_key) FROM opscore.ash_events x
                  WHERE x.target_id = m.target_id), 0)
         + row_number() OVER (PARTITION BY m.target_id
                              ORDER BY m.wait_class, m.wait_event_type, m.wait_event),
       -- CPU: running without a wait event; Client without a wait event: not running
       CASE WHEN m.wait_event_type IS NULL AND m.wait_class = 'Client'
            THEN 'idle in transaction' ELSE 'active' END,
       m.wait_event_type,
       CASE WHEN m.wait_event_type IS NOT NULL THEN m.wait_event END,
       m.last_seen
  FROM (SELECT s.target_id, s.wait_class, s.wait_event_type, s.wait_event,
               max(s.bucket_start) AS last_seen
          FROM opscore.ash_summary s
         WHERE s.grouping = 'event'
           AND NOT EXISTS (SELECT 1 FROM ash_event_groups k
                            WHERE k.target_id = s.target_id
                              AND ROW(k.wait_class, k.wait_event_type, k.wait_event)::text
                                = ROW(s.wait_class, s.wait_event_type, s.wait_event)::text)
         GROUP BY s.target_id, s.wait_class, s.wait_event_type, s.wait_event) m;

INSERT INTO opscore.ash_queries (target_id, query_key, query_id, text_hash, last_seen)
SELECT m.target_id,
       coalesce((SELECT max(x.query_key) FROM opscore.ash_queries x
                  WHERE x.target_id = m.target_id), 0)
         + row_number() OVER (PARTITION BY m.target_id ORDER BY m.query_id, m.text_hash),
       m.query_id, m.text_hash, m.last_seen
  FROM (SELECT s.target_id, s.query_id, s.text_hash, max(s.bucket_start) AS last_seen
          FROM opscore.ash_summary s
         WHERE s.grouping = 'sql'
           AND NOT EXISTS (SELECT 1 FROM opscore.ash_queries q
                            WHERE q.target_id = s.target_id
                              AND ROW(q.query_id, q.text_hash)::text
                                = ROW(s.query_id, s.text_hash)::text)
         GROUP BY s.target_id, s.query_id, s.text_hash) m;

INSERT INTO opscore.ash_sessions (target_id, session_key, pid, backend_type, usename, datname,
                                  application_name, backend_start, last_seen)
SELECT m.target_id,
       coalesce((SELECT max(x.session_key) FROM opscore.ash_sessions x
                  WHERE x.target_id = m.target_id), 0)
         + row_number() OVER (PARTITION BY m.target_id ORDER BY m.pid, m.backend_start),
       m.pid, m.backend_type, m.usename, m.datname, m.application_name, m.backend_start,
       m.last_seen
  FROM (SELECT s.target_id, s.pid, s.backend_type, s.usename, s.datname, s.application_name,
               s.backend_start, max(s.bucket_start) AS last_seen
          FROM opscore.ash_summary s
         WHERE s.grouping = 'session'
           AND NOT EXISTS (SELECT 1 FROM opscore.ash_sessions ss
                            WHERE ss.target_id = s.target_id
                              AND ROW(ss.pid, ss.backend_start, ss.usename, ss.datname,
                                      ss.application_name, ss.backend_type)::text
                                = ROW(s.pid, s.backend_start, s.usename, s.datname,
                                      s.application_name, s.backend_type)::text)
         GROUP BY s.target_id, s.pid, s.backend_type, s.usename, s.datname, s.application_name,
                  s.backend_start) m;

-- 2. one row per (target, bucket, grouping); rows of one group in one bucket (a summary that two
-- writers rebuilt at once) are added up, as the 0003 reader added them up. time_s is kept
-- as it is (weight_s NULL).
INSERT INTO opscore.ash_summary_chunks (target_id, bucket_start, grouping, bucket_s, groups,
                                        event_key, samples, time_s, db_time_s)
SELECT g.target_id, g.bucket_start, 'event', max(g.bucket_s), count(*),
       array_agg(g.key ORDER BY g.key), array_agg(g.samples ORDER BY g.key),
       array_agg(g.time_s ORDER BY g.key),
       array_agg(CASE WHEN g.db_time_s = g.time_s THEN NULL ELSE g.db_time_s END ORDER BY g.key)
  FROM (SELECT s.target_id, s.bucket_start, max(s.bucket_s) AS bucket_s, k.key,
               sum(s.samples)::int AS samples, sum(s.time_s) AS time_s,
               sum(s.db_time_s) AS db_time_s
          FROM opscore.ash_summary s
          JOIN (SELECT target_id, ROW(wait_class, wait_event_type, wait_event)::text AS grp,
                       min(event_key) AS key
                  FROM ash_event_groups GROUP BY 1, 2) k
            ON k.target_id = s.target_id
           AND k.grp = ROW(s.wait_class, s.wait_event_type, s.wait_event)::text
         WHERE s.grouping = 'event'
         GROUP BY s.target_id, s.bucket_start, k.key) g
 GROUP BY g.target_id, g.bucket_start;

INSERT INTO opscore.ash_summary_chunks (target_id, bucket_start, grouping, bucket_s, groups,
                                        query_key, wait_class, samples, time_s, db_time_s)
SELECT g.target_id, g.bucket_start, 'sql', max(g.bucket_s), count(*),
       array_agg(g.key ORDER BY g.wait_class, g.key),
       array_agg(g.wait_class ORDER BY g.wait_class, g.key),
       array_agg(g.samples ORDER BY g.wait_class, g.key),
       array_agg(g.time_s ORDER BY g.wait_class, g.key),
       array_agg(CASE WHEN g.db_time_s = g.time_s THEN NULL ELSE g.db_time_s END
                 ORDER BY g.wait_class, g.key)
  FROM (SELECT s.target_id, s.bucket_start, max(s.bucket_s) AS bucket_s, k.key, s.wait_class,
               sum(s.samples)::int AS samples, sum(s.time_s) AS time_s,
               sum(s.db_time_s) AS db_time_s
          FROM opscore.ash_summary s
          JOIN (SELECT target_id, ROW(query_id, text_hash)::text AS grp, min(query_key) AS key
                  FROM opscore.ash_queries GROUP BY 1, 2) k
            ON k.target_id = s.target_id AND k.grp = ROW(s.query_id, s.text_hash)::text
         WHERE s.grouping = 'sql'
         GROUP BY s.target_id, s.bucket_start, k.key, s.wait_class) g
 GROUP BY g.target_id, g.bucket_start;

INSERT INTO opscore.ash_summary_chunks (target_id, bucket_start, grouping, bucket_s, groups,
                                        session_key, samples, time_s, db_time_s)
SELECT g.target_id, g.bucket_start, 'session', max(g.bucket_s), count(*),
       array_agg(g.key ORDER BY g.key), array_agg(g.samples ORDER BY g.key),
       array_agg(g.time_s ORDER BY g.key),
       array_agg(CASE WHEN g.db_time_s = g.time_s THEN NULL ELSE g.db_time_s END ORDER BY g.key)
  FROM (SELECT s.target_id, s.bucket_start, max(s.bucket_s) AS bucket_s, k.key,
               sum(s.samples)::int AS samples, sum(s.time_s) AS time_s,
               sum(s.db_time_s) AS db_time_s
          FROM opscore.ash_summary s
          JOIN (SELECT target_id,
                       ROW(pid, backend_start, usename, datname, application_name,
                           backend_type)::text AS grp,
                       min(session_key) AS key
                  FROM opscore.ash_sessions GROUP BY 1, 2) k
            ON k.target_id = s.target_id
           AND k.grp = ROW(s.pid, s.backend_start, s.usename, s.datname, s.application_name,
                           s.backend_type)::text
         WHERE s.grouping = 'session'
         GROUP BY s.target_id, s.bucket_start, k.key) g
 GROUP BY g.target_id, g.bucket_start;

-- 3. every entry a bucket references is last seen no earlier than that bucket
UPDATE opscore.ash_events d SET last_seen = r.last_seen
  FROM (SELECT c.target_id, k.key, max(c.bucket_start) AS last_seen
          FROM opscore.ash_summary_chunks c CROSS JOIN LATERAL unnest(c.event_key) AS k(key)
         GROUP BY 1, 2) r
 WHERE d.target_id = r.target_id AND d.event_key = r.key AND d.last_seen < r.last_seen;
UPDATE opscore.ash_queries d SET last_seen = r.last_seen
  FROM (SELECT c.target_id, k.key, max(c.bucket_start) AS last_seen
          FROM opscore.ash_summary_chunks c CROSS JOIN LATERAL unnest(c.query_key) AS k(key)
         GROUP BY 1, 2) r
 WHERE d.target_id = r.target_id AND d.query_key = r.key AND d.last_seen < r.last_seen;
UPDATE opscore.ash_sessions d SET last_seen = r.last_seen
  FROM (SELECT c.target_id, k.key, max(c.bucket_start) AS last_seen
          FROM opscore.ash_summary_chunks c CROSS JOIN LATERAL unnest(c.session_key) AS k(key)
         GROUP BY 1, 2) r
 WHERE d.target_id = r.target_id AND d.session_key = r.key AND d.last_seen < r.last_seen;

DROP VIEW ash_event_groups;
DROP TABLE opscore.ash_summary;
