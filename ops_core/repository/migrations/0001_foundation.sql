-- opscore repository, foundation: targets registry.
CREATE TABLE opscore.targets (
    target_id       serial PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    -- libpq DSN without any password; credentials come from password_source
    dsn             text NOT NULL CHECK (dsn !~* 'password\s*='),
    -- where the password comes from: none | pgpass:<file> | env:<VAR> | service
    password_source text NOT NULL DEFAULT 'none',
    embedded        boolean NOT NULL DEFAULT false,
    options         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE opscore.targets IS 'Monitored PostgreSQL servers (DSNs never hold passwords)';
