-- opscore repository: active session history (ASH).
-- Raw 1 Hz samples (short retention) and a downsampled history (1 sample in 10, longer
-- retention) share one column layout; both are range-partitioned by UTC day so retention is a
-- partition drop. Partitions are created on demand by the writer (ops_core.repository.ash).
-- weight_s is the number of seconds a row stands for: the sampling interval for raw rows,
-- the sampled seconds of its group of 10 for history rows; DB time = sum(weight_s).

CREATE TABLE opscore.ash_samples (
    -- fixed-width columns first, widest first: no alignment padding between them
    sample_time      timestamptz NOT NULL,
    backend_start    timestamptz,
    query_start      timestamptz,
    xact_start       timestamptz,
    state_change     timestamptz,
    query_id         bigint,
    text_hash        bigint,
    target_id        int NOT NULL,
    pid              int NOT NULL,
    leader_pid       int,
    xid_age          int,
    xmin_age         int,
    weight_s         real NOT NULL,
    backend_type     text,
    usename          text,
    datname          text,
    application_name text,
    state            text,
    wait_event_type  text,
    wait_event       text,
    client_addr      inet,
    blocking_pids    int[],
    PRIMARY KEY (target_id, sample_time, pid)
) PARTITION BY RANGE (sample_time);
COMMENT ON TABLE opscore.ash_samples IS
    'ASH raw samples of pg_stat_activity (non-idle sessions), partitioned by UTC day';

CREATE TABLE opscore.ash_history (LIKE opscore.ash_samples INCLUDING DEFAULTS,
    PRIMARY KEY (target_id, sample_time, pid)
) PARTITION BY RANGE (sample_time);
COMMENT ON TABLE opscore.ash_history IS
    'ASH history: every 10th raw sample, weight_s = seconds it represents; partitioned by UTC day';

-- distinct query texts (truncated), referenced by samples through text_hash
CREATE TABLE opscore.ash_query_texts (
    target_id   int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    text_hash   bigint NOT NULL,
    query_text  text NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (target_id, text_hash)
);

-- DB time per target and time bucket (5 minutes) in three groupings, so long-range reports read this instead
-- of the samples: 'event' (wait_class, wait_event_type, wait_event), 'sql' (query_id,
-- wait_class) and 'session' (pid, backend_start, usename, datname, application_name,
-- backend_type); the columns outside a row's grouping are NULL. Rebuilt per bucket from the
-- samples by ops_core.repository.ash.summarize.
CREATE TABLE opscore.ash_summary (
    target_id        int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    bucket_start     timestamptz NOT NULL,
    bucket_s         int NOT NULL,
    grouping         text NOT NULL CHECK (grouping IN ('event', 'sql', 'session')),
    wait_class       text,
    wait_event_type  text,
    wait_event       text,
    query_id         bigint,
    text_hash        bigint,
    pid              int,
    backend_start    timestamptz,
    usename          text,
    datname          text,
    application_name text,
    backend_type     text,
    samples          int NOT NULL,
    time_s           real NOT NULL,
    db_time_s        real NOT NULL
);
CREATE INDEX ash_summary_target_bucket ON opscore.ash_summary (target_id, bucket_start);

-- samples carry no foreign key (it would slow COPY ingest): removing a target removes its
-- samples through this trigger instead
CREATE FUNCTION opscore.ash_forget_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM opscore.ash_samples WHERE target_id = OLD.target_id;
    DELETE FROM opscore.ash_history WHERE target_id = OLD.target_id;
    RETURN OLD;
END $$;
CREATE TRIGGER ash_forget_target AFTER DELETE ON opscore.targets
    FOR EACH ROW EXECUTE FUNCTION opscore.ash_forget_target();

-- sampler health: the last sample taken per target, even when no session was active
CREATE TABLE opscore.ash_sampler_status (
    target_id        int PRIMARY KEY REFERENCES opscore.targets ON DELETE CASCADE,
    last_sample_time timestamptz,
    last_flush_at    timestamptz NOT NULL,
    errors           bigint NOT NULL DEFAULT 0,
    last_error       text
);
