-- opscore repository: SQL Tuning Advisor tasks and SQL profiles (issue 13).
--
-- sqltune_tasks: one task per request (a SQL text, a queryid of the repository, or the top N
--   statements by DB time of a range); its statements and, once executed, its
--   recommendations with their rationale, the method that measured them (hypopg / clone /
--   target), the measured medians and the ratio (null with why_not when not measured).
-- sql_profiles: a verified set of planner settings for one statement fingerprint (PostgreSQL
--   has no stored outlines: a profile is applied as SET LOCAL, ALTER ROLE/DATABASE ... SET or
--   pg_hint_plan hints, which opscore exports).
CREATE TABLE opscore.sqltune_tasks (
    task_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id    int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    name         text,
    scope        jsonb NOT NULL,               -- how the statements were chosen
    database     text,
    clone        text,                         -- the clone used for verification, if any
    status       text NOT NULL CHECK (status IN ('created', 'running', 'done', 'failed')),
    progress     text,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);

CREATE TABLE opscore.sqltune_statements (
    task_id    bigint NOT NULL REFERENCES opscore.sqltune_tasks ON DELETE CASCADE,
    seq        int NOT NULL,
    query_id   bigint,
    database   text,
    sql        text NOT NULL,
    findings   jsonb,                          -- the analysis notes of this statement
    PRIMARY KEY (task_id, seq)
);

CREATE TABLE opscore.sqltune_recommendations (
    rec_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id          bigint NOT NULL REFERENCES opscore.sqltune_tasks ON DELETE CASCADE,
    seq              int NOT NULL,             -- the statement it is for
    type             text NOT NULL,            -- index / statistics / rewrite / setting / note
    sql              text,                     -- the action (DDL, ANALYZE, rewritten SQL, SET)
    rationale        text NOT NULL,
    method           text,                     -- hypopg / clone / target / null
    before_ms        float8,
    after_ms         float8,
    cost_before      float8,
    cost_after       float8,
    measured_speedup float8,
    why_not          text,                     -- why there is no measured speed-up
    evidence         jsonb NOT NULL DEFAULT '{}',
    action_id        bigint,                   -- the journal row when accepted
    profile_id       bigint                    -- the profile made from it
);

CREATE TABLE opscore.sql_profiles (
    profile_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id    int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    name         text NOT NULL,
    query_id     bigint,
    database     text,
    sql          text NOT NULL,
    settings     jsonb NOT NULL,               -- planner setting -> value
    before_ms    float8,
    after_ms     float8,
    measured_speedup float8,
    rec_id       bigint,
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, name)
);
