-- opscore repository: AWR snapshots. Counters are stored as per-interval deltas (zero -> NULL,
-- which costs nothing in a row); the cumulative values needed for the next delta are kept once
-- per target and source in snapshot_state, so reading a range never re-derives anything.
CREATE TABLE opscore.snapshots (
    snapshot_id        bigserial PRIMARY KEY,
    target_id          int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    captured_at        timestamptz NOT NULL,     -- now() of the target's capture transaction
    status             text NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
    error              text,                     -- why a failed capture failed
    prev_snapshot_id   bigint,                   -- the snapshot the deltas are taken against
    interval_s         double precision,         -- seconds since prev_snapshot_id
    server_version_num int,
    postmaster_start   timestamptz,
    with_sizes         boolean NOT NULL DEFAULT false,
    own_datname        text,                     -- repository database on this server, if any
    sources            jsonb NOT NULL DEFAULT '{}',   -- source -> ok | not available ... | error
    resets             jsonb NOT NULL DEFAULT '[]',   -- [{source, reason}]: new baselines
    target_ms          double precision,         -- time spent in queries on the target
    total_ms           double precision,         -- whole capture, repository write included
    statements         int,                      -- statements stored for this interval
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, captured_at)
);
CREATE INDEX ON opscore.snapshots (target_id, snapshot_id);
CREATE INDEX ON opscore.snapshots (captured_at);

-- cumulative state for the next delta: one row per target and source
CREATE TABLE opscore.snapshot_state (
    target_id   int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    source      text NOT NULL,
    snapshot_id bigint NOT NULL,
    state       json NOT NULL,
    PRIMARY KEY (target_id, source)
);

-- statement texts, once per (target, queryid, dbid, userid, toplevel)
CREATE TABLE opscore.statements (
    stmt_id     serial PRIMARY KEY,
    target_id   int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    queryid     bigint NOT NULL,
    dbid        oid NOT NULL,
    userid      oid NOT NULL,
    toplevel    boolean NOT NULL,
    datname     text,
    username    text,
    own         boolean NOT NULL DEFAULT false,   -- opscore's own SQL or repository database
    query       text,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, queryid, dbid, userid, toplevel)
);

-- per-statement deltas of one snapshot: ONE row per snapshot, one array per column (element i
-- of every array belongs to statement stmt_id[i]). A row per statement would cost ~50 bytes of
-- tuple overhead each; arrays are compressed by TOAST. Read with unnest(...).
CREATE TABLE opscore.snap_statements (
    snapshot_id bigint PRIMARY KEY REFERENCES opscore.snapshots ON DELETE CASCADE,
    stmt_id int[] NOT NULL, plans bigint[], total_plan_time double precision[], calls bigint[],
    total_exec_time double precision[], rows bigint[], shared_blks_hit bigint[],
    shared_blks_read bigint[], shared_blks_dirtied bigint[], shared_blks_written bigint[],
    local_blks_hit bigint[], local_blks_read bigint[], local_blks_dirtied bigint[],
    local_blks_written bigint[], temp_blks_read bigint[], temp_blks_written bigint[],
    shared_blk_read_time double precision[], shared_blk_write_time double precision[],
    temp_blk_read_time double precision[], temp_blk_write_time double precision[],
    wal_records bigint[], wal_fpi bigint[], wal_bytes numeric[]
);

CREATE TABLE opscore.snap_databases (
    snapshot_id bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    datid oid NOT NULL, datname text, own boolean NOT NULL DEFAULT false,
    numbackends bigint, size_bytes bigint,
    xact_commit bigint, xact_rollback bigint, blks_read bigint, blks_hit bigint,
    tup_returned bigint, tup_fetched bigint, tup_inserted bigint, tup_updated bigint,
    tup_deleted bigint, conflicts bigint, temp_files bigint, temp_bytes bigint,
    deadlocks bigint, checksum_failures bigint,
    blk_read_time double precision, blk_write_time double precision,
    session_time double precision, active_time double precision,
    idle_in_transaction_time double precision,
    sessions bigint, sessions_abandoned bigint, sessions_fatal bigint, sessions_killed bigint,
    stats_reset timestamptz
);
CREATE INDEX ON opscore.snap_databases (snapshot_id);

-- object statistics: one row per snapshot and database, one array per column
CREATE TABLE opscore.snap_tables (
    snapshot_id bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    datname text NOT NULL,
    relid oid[], schemaname text[], relname text[], seq_scan bigint[], seq_tup_read bigint[],
    idx_scan bigint[], idx_tup_fetch bigint[], n_tup_ins bigint[], n_tup_upd bigint[],
    n_tup_del bigint[], n_tup_hot_upd bigint[], n_tup_newpage_upd bigint[],
    vacuum_count bigint[], autovacuum_count bigint[], analyze_count bigint[],
    autoanalyze_count bigint[], heap_blks_read bigint[], heap_blks_hit bigint[],
    idx_blks_read bigint[], idx_blks_hit bigint[], toast_blks_read bigint[],
    toast_blks_hit bigint[], tidx_blks_read bigint[], tidx_blks_hit bigint[],
    n_live_tup bigint[], n_dead_tup bigint[], n_mod_since_analyze bigint[],
    n_ins_since_vacuum bigint[], last_vacuum timestamptz[], last_autovacuum timestamptz[],
    last_analyze timestamptz[], last_autoanalyze timestamptz[], table_bytes bigint[],
    total_bytes bigint[],
    PRIMARY KEY (snapshot_id, datname)
);

CREATE TABLE opscore.snap_indexes (
    snapshot_id bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    datname text NOT NULL,
    indexrelid oid[], relid oid[], schemaname text[], relname text[], indexrelname text[],
    idx_scan bigint[], idx_tup_read bigint[], idx_tup_fetch bigint[], idx_blks_read bigint[],
    idx_blks_hit bigint[], index_bytes bigint[],
    PRIMARY KEY (snapshot_id, datname)
);

-- daily rollups of the columnar tables: the same arrays summed over one complete UTC day
-- (intervals[i] = how many snapshot intervals key i appeared in); a cache built by reads,
-- valid while (first_snapshot_id, last_snapshot_id, snapshots) match the day's snapshots
CREATE TABLE opscore.snap_statements_day (
    target_id int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    day date NOT NULL,
    first_snapshot_id bigint NOT NULL, last_snapshot_id bigint NOT NULL, snapshots int NOT NULL,
    intervals int[], stmt_id int[], plans bigint[], total_plan_time double precision[],
    calls bigint[], total_exec_time double precision[], rows bigint[],
    shared_blks_hit bigint[], shared_blks_read bigint[], shared_blks_dirtied bigint[],
    shared_blks_written bigint[], local_blks_hit bigint[], local_blks_read bigint[],
    local_blks_dirtied bigint[], local_blks_written bigint[], temp_blks_read bigint[],
    temp_blks_written bigint[], shared_blk_read_time double precision[],
    shared_blk_write_time double precision[], temp_blk_read_time double precision[],
    temp_blk_write_time double precision[], wal_records bigint[], wal_fpi bigint[],
    wal_bytes numeric[],
    PRIMARY KEY (target_id, day)
);

CREATE TABLE opscore.snap_tables_day (
    target_id int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    day date NOT NULL,
    datname text NOT NULL,
    first_snapshot_id bigint NOT NULL, last_snapshot_id bigint NOT NULL, snapshots int NOT NULL,
    intervals int[], relid oid[], seq_scan bigint[], seq_tup_read bigint[], idx_scan bigint[],
    idx_tup_fetch bigint[], n_tup_ins bigint[], n_tup_upd bigint[], n_tup_del bigint[],
    n_tup_hot_upd bigint[], n_tup_newpage_upd bigint[], vacuum_count bigint[],
    autovacuum_count bigint[], analyze_count bigint[], autoanalyze_count bigint[],
    heap_blks_read bigint[], heap_blks_hit bigint[], idx_blks_read bigint[],
    idx_blks_hit bigint[], toast_blks_read bigint[], toast_blks_hit bigint[],
    tidx_blks_read bigint[], tidx_blks_hit bigint[], schemaname text[], relname text[],
    n_live_tup bigint[], n_dead_tup bigint[], n_mod_since_analyze bigint[],
    n_ins_since_vacuum bigint[], last_vacuum timestamptz[], last_autovacuum timestamptz[],
    last_analyze timestamptz[], last_autoanalyze timestamptz[], table_bytes bigint[],
    total_bytes bigint[],
    PRIMARY KEY (target_id, day, datname)
);

CREATE TABLE opscore.snap_indexes_day (
    target_id int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    day date NOT NULL,
    datname text NOT NULL,
    first_snapshot_id bigint NOT NULL, last_snapshot_id bigint NOT NULL, snapshots int NOT NULL,
    intervals int[], indexrelid oid[], idx_scan bigint[], idx_tup_read bigint[],
    idx_tup_fetch bigint[], idx_blks_read bigint[], idx_blks_hit bigint[], relid oid[],
    schemaname text[], relname text[], indexrelname text[], index_bytes bigint[],
    PRIMARY KEY (target_id, day, datname)
);

CREATE TABLE opscore.snap_io (
    snapshot_id bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    backend_type text NOT NULL, object text NOT NULL, context text NOT NULL,
    reads bigint, read_bytes bigint, read_time double precision,
    writes bigint, write_bytes bigint, write_time double precision,
    writebacks bigint, writeback_time double precision,
    extends bigint, extend_bytes bigint, extend_time double precision,
    hits bigint, evictions bigint, reuses bigint, fsyncs bigint, fsync_time double precision,
    stats_reset timestamptz
);
CREATE INDEX ON opscore.snap_io (snapshot_id);

-- one-row and small sources (wal, checkpointer, archiver, replication, slots, settings, host):
-- deltas of counters and values of gauges as JSON
CREATE TABLE opscore.snap_cluster (
    snapshot_id bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    source      text NOT NULL,
    data        jsonb NOT NULL,
    PRIMARY KEY (snapshot_id, source)
);

CREATE TABLE opscore.baselines (
    baseline_id       serial PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    target_id         int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    begin_snapshot_id bigint NOT NULL,
    end_snapshot_id   bigint NOT NULL CHECK (end_snapshot_id > begin_snapshot_id),
    created_at        timestamptz NOT NULL DEFAULT now()
);
