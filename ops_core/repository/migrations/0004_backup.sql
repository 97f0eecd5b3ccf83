-- opscore repository, backup and recovery: the backup catalog, restore points, per-target
-- backup configuration (store, schedule, retention) and the history of verifications.
CREATE TABLE opscore.backups (
    backup_id          text PRIMARY KEY CHECK (backup_id ~ '^[0-9]{8}T[0-9]{6}-[FIL][0-9a-f]{4}$'),
    target_id          int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    kind               text NOT NULL CHECK (kind IN ('full', 'incremental', 'logical')),
    status             text NOT NULL
                       CHECK (status IN ('running', 'done', 'failed', 'verified', 'corrupt')),
    -- the backup an incremental was taken against (its manifest); NULL for full and logical
    parent_id          text REFERENCES opscore.backups (backup_id),
    path               text NOT NULL,
    database           text,
    server_version_num int,
    system_identifier  text,
    timeline           int,
    start_lsn          pg_lsn,
    stop_lsn           pg_lsn,
    start_wal          text,
    stop_wal           text,
    wal_segment_size   bigint,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz,
    duration_s         double precision,
    size_bytes         bigint,
    error              text,
    verified_at        timestamptz,
    CHECK ((kind = 'incremental') = (parent_id IS NOT NULL)),
    CHECK ((kind = 'logical') = (database IS NOT NULL))
);
CREATE INDEX backups_target_idx ON opscore.backups (target_id, started_at);
COMMENT ON TABLE opscore.backups IS
    'Backups in each target''s store; a manifest JSON beside each backup mirrors its row';

CREATE TABLE opscore.backup_checks (
    check_id    bigserial PRIMARY KEY,
    backup_id   text NOT NULL REFERENCES opscore.backups ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('verifybackup', 'test_restore', 'pg_restore_list')),
    ok          boolean NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    duration_s  double precision
);
CREATE INDEX backup_checks_backup_idx ON opscore.backup_checks (backup_id, checked_at);

CREATE TABLE opscore.restore_points (
    restore_point_id serial PRIMARY KEY,
    target_id        int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    lsn              pg_lsn NOT NULL,
    timeline         int,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, name)
);

CREATE TABLE opscore.backup_config (
    target_id   int PRIMARY KEY REFERENCES opscore.targets ON DELETE CASCADE,
    store_path  text,
    -- {"full": "0 2 * * 0", "incremental": "0 2 * * 1-6", "verify": ..., "retention": ...}
    schedule    jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- {"redundancy": 2, "recovery_window_days": 7}
    retention   jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
