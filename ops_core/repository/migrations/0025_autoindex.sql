-- opscore repository: auto-indexing (issue 16).
--
-- autoindex_config: per target, the storage budget of the indexes auto-indexing may add, how
--   many it builds per cycle, the maintenance window (UTC hours; NULL: any time), the
--   validation period and the days after which an unused index it created is dropped.
-- autoindex_indexes: every index auto-indexing recommended, created, kept or dropped, with
--   the evidence (what-if costs, statements it serves, write overhead) and the verification
--   (statement times before and after). Only indexes in this table with created = true are ever
--   dropped by opscore. A 'regressed' row is never proposed again for the same table and
--   columns.

CREATE TABLE opscore.autoindex_config (
    target_id           int PRIMARY KEY REFERENCES opscore.targets ON DELETE CASCADE,
    budget_mb           float8 NOT NULL DEFAULT 1024 CHECK (budget_mb > 0),
    max_builds          int NOT NULL DEFAULT 2 CHECK (max_builds BETWEEN 1 AND 20),
    window_start_hour   int CHECK (window_start_hour BETWEEN 0 AND 23),
    window_end_hour     int CHECK (window_end_hour BETWEEN 0 AND 23),
    validation_hours    float8 NOT NULL DEFAULT 24 CHECK (validation_hours >= 0),
    unused_days         float8 NOT NULL DEFAULT 14 CHECK (unused_days >= 0),
    min_gain_pct        float8 NOT NULL DEFAULT 10 CHECK (min_gain_pct >= 0),
    updated_by          text NOT NULL DEFAULT 'opscore',
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE opscore.autoindex_indexes (
    autoindex_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id           int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    schema_name         text NOT NULL,
    table_name          text NOT NULL,
    index_name          text NOT NULL,
    columns             text[] NOT NULL,
    ddl                 text NOT NULL,
    status              text NOT NULL CHECK (status IN
                            ('recommended', 'verifying', 'kept', 'regressed', 'unused',
                             'failed', 'refused')),
    created             boolean NOT NULL DEFAULT false,  -- opscore built it (it may drop it)
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz,
    last_used_at        timestamptz,
    idx_scan            bigint,
    dropped_at          timestamptz,
    action_id           bigint,           -- journal: the CREATE (or its report)
    drop_action_id      bigint,           -- journal: the DROP
    est_saved_ms        float8,
    est_write_ms        float8,
    est_bytes           float8,
    evidence            jsonb NOT NULL DEFAULT '{}',
    verification        jsonb NOT NULL DEFAULT '{}',
    note                text NOT NULL DEFAULT ''
);

CREATE INDEX autoindex_indexes_target ON opscore.autoindex_indexes (target_id, recorded_at DESC);
