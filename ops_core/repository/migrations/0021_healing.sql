-- opscore repository: self-healing's corruption checks (issue 16).
--
-- One row per check of a target's B-tree indexes with amcheck's bt_index_check (or why it could
-- not run: amcheck not installed), with the result of each index checked. Index health, the
-- other self-healing checks and every action taken are read live or from the action journal.

CREATE TABLE opscore.corruption_checks (
    check_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id    int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    method       text NOT NULL,            -- 'amcheck bt_index_check', or why nothing ran
    available    boolean NOT NULL,         -- false: the method could not run on this target
    checked      int NOT NULL,
    skipped      int NOT NULL,             -- over the byte budget of the check
    corrupt      int NOT NULL,
    results      jsonb NOT NULL DEFAULT '[]'  -- [{schema, index, table, bytes, ok, error}]
);

CREATE INDEX corruption_checks_target_time ON opscore.corruption_checks (target_id, started_at DESC);
