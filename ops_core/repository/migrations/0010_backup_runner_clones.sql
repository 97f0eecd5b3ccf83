-- opscore repository, backup: who runs a backup (so a killed run is found and cleaned up by
-- the next command), the kinds of check a WAL archive verification records, and clones
-- (restored servers that opscore started and owns).
ALTER TABLE opscore.backups ADD COLUMN runner jsonb;
COMMENT ON COLUMN opscore.backups.runner IS
    'While running: {"host", "pid", "start" (process start time), "pgid" of the child program}';

ALTER TABLE opscore.backup_checks DROP CONSTRAINT backup_checks_kind_check;
ALTER TABLE opscore.backup_checks ADD CONSTRAINT backup_checks_kind_check
    CHECK (kind IN ('verifybackup', 'test_restore', 'pg_restore_list', 'wal_archive'));

CREATE TABLE opscore.clones (
    clone       text PRIMARY KEY CHECK (clone ~ '^[a-z][a-z0-9_]{0,62}$'),
    target_id   int REFERENCES opscore.targets ON DELETE SET NULL,
    backup_id   text,
    recovery_target text,
    data_dir    text NOT NULL,
    socket_dir  text NOT NULL,
    port        int NOT NULL,
    major       int NOT NULL,
    os_user     text,
    status      text NOT NULL CHECK (status IN ('running', 'stopped')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE opscore.clones IS
    'Servers restored from opscore''s backups and started by opscore (what-if experiments)';

-- a copy of the store in an object store (fsspec URL and non-secret options) per target, and
-- upload records among the checks of a backup
ALTER TABLE opscore.backup_config ADD COLUMN remote jsonb;
ALTER TABLE opscore.backup_checks DROP CONSTRAINT backup_checks_kind_check;
ALTER TABLE opscore.backup_checks ADD CONSTRAINT backup_checks_kind_check
    CHECK (kind IN ('verifybackup', 'test_restore', 'pg_restore_list', 'wal_archive', 'upload'));
