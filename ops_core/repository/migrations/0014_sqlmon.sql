-- opscore repository: SQL Monitor executions (issue 13).
--
-- One row per monitored execution of a statement: a (pid, backend_start, query_start) of a
-- target that ran at least the monitor threshold (default 5 s) or was asked for. Rows come from
-- the live monitor (pg_stat_activity polled by `opscore sql monitor`) and from the ASH samples
-- already in the repository (every sampled execution over the threshold), so "what ran at 03:12
-- and why was it slow" is answered after the execution finished. Kept for the retention
-- (sqlmon_retention_days); removed by purge.
CREATE TABLE opscore.sqlmon_executions (
    exec_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id        int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    pid              int NOT NULL,
    backend_start    timestamptz NOT NULL,        -- '-infinity' when unknown
    query_start      timestamptz NOT NULL,
    query_id         bigint,
    query            text,
    usename          text,
    datname          text,
    application_name text,
    client_addr      text,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    elapsed_s        float8 NOT NULL CHECK (elapsed_s >= 0),
    status           text NOT NULL CHECK (status IN ('running', 'done')),
    state            text,
    samples          int NOT NULL DEFAULT 0,      -- ASH samples of this execution
    db_time_s        float8 NOT NULL DEFAULT 0,   -- sampled time on CPU or in non-idle waits
    waits            jsonb NOT NULL DEFAULT '{}', -- wait class -> sampled seconds
    blocking_pids    int[],
    progress         jsonb,                       -- last pg_stat_progress_* row seen
    source           text NOT NULL,               -- live / ash
    UNIQUE (target_id, pid, backend_start, query_start)
);
CREATE INDEX sqlmon_executions_time ON opscore.sqlmon_executions (target_id, query_start);
