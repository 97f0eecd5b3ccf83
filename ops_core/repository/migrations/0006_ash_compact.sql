-- opscore repository: compressed ASH chunks (issue 3: raw ASH was ~212 B per session-sample).
--
-- Three tiers, all range-partitioned by UTC day so retention stays a partition drop:
--   hot      opscore.ash_samples (0003, unchanged): one row per session per sample, written by
--            the sampler with binary COPY; holds the buckets not yet compacted (normally only
--            the current 5-minute bucket).
--   raw      opscore.ash_chunks: one row per (target, 5-minute bucket) holding parallel arrays,
--            one element per session-sample; TOAST compresses the arrays (pglz on every
--            supported server: lz4 is not built into every PostgreSQL).
--   history  opscore.ash_history_chunks: the same layout, 30-minute chunks of every 10th raw
--            sample (weight_s = the seconds it stands for), made by retention from raw chunks.
-- Rows written to opscore.ash_history before this migration stay there and are read as history
-- until retention converts them to history chunks (ops_core.repository.ash_retention).
--
-- Encoding of a chunk (ops_core.repository.ash_chunks writes it, ash_tiers reads it back):
--   t_off          µs after chunk_start (int4: a chunk is at most 2,147 s long)
--   weight_s       the seconds the sample stands for
--   session_key    -> ash_sessions (pid, leader_pid, backend_type, usename, datname,
--                     application_name, client_addr, backend_start) of the target
--   event_key      -> ash_events (state, wait_event_type, wait_event) of the target
--   query_key      -> ash_queries (query_id, text_hash) of the target
--   query_start, xact_start, state_change
--                  µs BEFORE the sample time as int8: exact to the microsecond and no overflow
--                  for a transaction or backend open for years (int4 ms would wrap at 24.8 days)
--   xid_age, xmin_age
--   blocking_pids  exact, NULL and '{}' kept apart: blk_n = cardinality (NULL for a NULL
--                  list), blk_at = 1-based position of the row's first pid in blk_pids, which
--                  holds every row's list flattened in row order
-- Elements are in (sample_time, pid) order; NULL values are NULL array elements.

CREATE TABLE opscore.ash_chunks (
    target_id     int NOT NULL,
    chunk_start   timestamptz NOT NULL,
    chunk_end     timestamptz NOT NULL,     -- exclusive; chunk_end - chunk_start is fixed per table
    samples       int NOT NULL,             -- session-samples (array length)
    t_off         int[] NOT NULL,
    weight_s      real[] NOT NULL,
    session_key   int[] NOT NULL,
    event_key     int[] NOT NULL,
    query_key     int[] NOT NULL,
    query_start   bigint[] NOT NULL,
    xact_start    bigint[] NOT NULL,
    state_change  bigint[] NOT NULL,
    xid_age       int[] NOT NULL,
    xmin_age      int[] NOT NULL,
    blk_at        int[] NOT NULL,
    blk_n         int[] NOT NULL,
    blk_pids      int[] NOT NULL,
    PRIMARY KEY (target_id, chunk_start)
) PARTITION BY RANGE (chunk_start);
COMMENT ON TABLE opscore.ash_chunks IS
    'ASH raw samples compacted per target and 5-minute bucket (parallel arrays), partitioned by UTC day';

CREATE TABLE opscore.ash_history_chunks (LIKE opscore.ash_chunks,
    PRIMARY KEY (target_id, chunk_start)
) PARTITION BY RANGE (chunk_start);
COMMENT ON TABLE opscore.ash_history_chunks IS
    'ASH history (every 10th raw sample, weighted) per target and 30-minute chunk, partitioned by UTC day';

-- dictionaries, one key space per target (keys stay small, so their arrays compress well);
-- last_seen (the newest sample referencing an entry) lets retention trim them
CREATE TABLE opscore.ash_sessions (
    target_id        int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    session_key      int NOT NULL,
    pid              int NOT NULL,
    leader_pid       int,
    backend_type     text,
    usename          text,
    datname          text,
    application_name text,
    client_addr      inet,
    backend_start    timestamptz,
    last_seen        timestamptz NOT NULL,
    PRIMARY KEY (target_id, session_key)
);
CREATE INDEX ash_sessions_pid ON opscore.ash_sessions (target_id, pid);

CREATE TABLE opscore.ash_events (
    target_id        int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    event_key        int NOT NULL,
    state            text,
    wait_event_type  text,
    wait_event       text,
    last_seen        timestamptz NOT NULL,
    PRIMARY KEY (target_id, event_key)
);

CREATE TABLE opscore.ash_queries (
    target_id   int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    query_key   int NOT NULL,
    query_id    bigint,
    text_hash   bigint,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (target_id, query_key)
);

-- chunks carry no foreign key (dropping a partition of a table with one locks opscore.targets):
-- removing a target removes its chunks here, its dictionaries by their foreign keys
CREATE OR REPLACE FUNCTION opscore.ash_forget_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM opscore.ash_samples WHERE target_id = OLD.target_id;
    DELETE FROM opscore.ash_history WHERE target_id = OLD.target_id;
    DELETE FROM opscore.ash_chunks WHERE target_id = OLD.target_id;
    DELETE FROM opscore.ash_history_chunks WHERE target_id = OLD.target_id;
    RETURN OLD;
END $$;
