-- HTTP API tokens: only a SHA-256 hash of each token is stored (the token itself is shown once,
-- when created); a role (read < operate < admin) says what the token may do; revoking keeps
-- the row (who had access, until when).
CREATE TABLE opscore.api_tokens (
    token_id     int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    role         text NOT NULL CHECK (role IN ('read', 'operate', 'admin')),
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    prefix       text NOT NULL,                 -- the first characters, to recognise a token
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
