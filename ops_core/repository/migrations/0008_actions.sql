-- opscore repository: the action policy and the action journal (issue 20).
--
-- Every change opscore makes to a monitored server (a restore point, terminating a session,
-- CREATE/DROP INDEX, ALTER SYSTEM, ANALYZE/VACUUM/REINDEX, ...) goes through
-- ops_core.targets.actions, which reads the policy of (target, feature) and writes one journal
-- row per request, whatever the outcome: who asked, what, why, the evidence, the exact SQL,
-- the state before and after, the outcome and the way back.
--
-- opscore.action_policies: per target and feature the mode, when it differs from the default
--   of the feature (ops_core.targets.actions.FEATURES):
--   'off'          refused, journaled as refused
--   'report_only'  journaled as reported (what would run), nothing executed
--   'implement'    executed, journaled with its outcome

CREATE TABLE opscore.action_policies (
    target_id   int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    feature     text NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('off', 'report_only', 'implement')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL,
    PRIMARY KEY (target_id, feature)
);

CREATE TABLE opscore.action_journal (
    action_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id     int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    feature       text NOT NULL,
    mode          text NOT NULL CHECK (mode IN ('off', 'report_only', 'implement')),
    requested_by  text NOT NULL,                -- who: a user, a flow, an autonomous feature
    what          text NOT NULL,                -- a one-line description
    why           text NOT NULL,                -- the reason given by the caller
    evidence      jsonb NOT NULL DEFAULT '{}',  -- what the reason rests on
    sql           text NOT NULL,                -- the statement as it runs (values bound apart)
    params        jsonb NOT NULL DEFAULT '[]',
    undo_sql      text,                         -- the way back, when there is one
    before        jsonb,                        -- state read before the change
    after         jsonb,                        -- state read after it (or the result)
    outcome       text NOT NULL CHECK (outcome IN
                      ('started', 'done', 'failed', 'refused', 'reported')),
    error         text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE INDEX action_journal_target_time ON opscore.action_journal (target_id, started_at DESC);
