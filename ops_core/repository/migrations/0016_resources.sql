-- opscore repository: quotas per database / schema / tablespace / role, measured on the target
-- by the quotas flow, their latest state, and a record of every change of state (breach,
-- enforcement, reversal). PostgreSQL cannot cap the size of a database or schema: a size quota
-- is measured and alerted; its "enforcement" only stops new objects (REVOKE CREATE).
CREATE TABLE opscore.quotas (
    quota_id        int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id       int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
    scope           text NOT NULL CHECK (scope IN ('database', 'schema', 'tablespace', 'role')),
    object          text NOT NULL,
    metric          text NOT NULL CHECK (metric IN ('size_bytes', 'connections')),
    soft_limit      double precision CHECK (soft_limit >= 0),
    hard_limit      double precision CHECK (hard_limit >= 0),
    enforce         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- the latest evaluation
    status          text NOT NULL DEFAULT 'not evaluated'
                    CHECK (status IN ('not evaluated', 'ok', 'soft', 'hard', 'not available')),
    measured        double precision,
    measured_at     timestamptz,
    reason          text,
    -- enforcement in force: the journaled action, and the state to put back (JSON)
    enforced_action_id bigint,
    enforced_at     timestamptz,
    enforced_before jsonb,
    UNIQUE (target_id, name),
    CHECK (soft_limit IS NOT NULL OR hard_limit IS NOT NULL),
    CHECK (soft_limit IS NULL OR hard_limit IS NULL OR soft_limit <= hard_limit)
);

CREATE TABLE opscore.quota_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quota_id   int NOT NULL REFERENCES opscore.quotas ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    event      text NOT NULL,        -- soft, hard, ok, enforced, reverted, enforce failed ...
    measured   double precision,
    action_id  bigint,
    message    text NOT NULL DEFAULT ''
);
CREATE INDEX ON opscore.quota_events (quota_id, at);
