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

-- diagnostics: incidents (opened from critical alerts, ADDM findings, healing actions or by
-- hand) with a lifecycle, and diagnostic dump bundles (a zip under OPSCORE_HOME/dumps)
CREATE TABLE opscore.incidents (
    incident_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id    int REFERENCES opscore.targets ON DELETE CASCADE,
    source       text NOT NULL CHECK (source IN ('alert', 'addm', 'healing', 'manual')),
    source_ref   text,                      -- alert id, ADDM analysis/finding, action id
    severity     text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    title        text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    opened_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text
);
-- one incident per source object
CREATE UNIQUE INDEX ON opscore.incidents (source, source_ref) WHERE source_ref IS NOT NULL;

CREATE TABLE opscore.diag_dumps (
    dump_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id    int REFERENCES opscore.targets ON DELETE CASCADE,
    incident_id  bigint REFERENCES opscore.incidents ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL CHECK (status IN ('creating', 'done', 'failed')),
    path         text,
    size_bytes   bigint,
    begin_at     timestamptz NOT NULL,
    end_at       timestamptz NOT NULL,
    sections     jsonb NOT NULL DEFAULT '{}'::jsonb,   -- name -> ok / the reason it is missing
    error        text
);

-- dashboards: panels of charts over the repository (built-in ones are rows too)
CREATE TABLE opscore.dashboards (
    dashboard_id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
    title        text NOT NULL,
    description  text NOT NULL DEFAULT '',
    target       text,                       -- NULL: the target picked when it is shown
    panels       jsonb NOT NULL DEFAULT '[]'::jsonb,
    builtin      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- a target reached through PgBouncer: the DSN of its admin console (no password: pgpass or
-- the environment), for SHOW POOLS / SHOW STATS
CREATE TABLE opscore.target_poolers (
    target_id    int PRIMARY KEY REFERENCES opscore.targets ON DELETE CASCADE,
    kind         text NOT NULL DEFAULT 'pgbouncer' CHECK (kind IN ('pgbouncer')),
    dsn          text NOT NULL CHECK (dsn !~* 'password'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
