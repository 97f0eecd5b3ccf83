-- opscore repository: alert rules, their evaluation state, alerts (firing -> acknowledged ->
-- resolved) and a record of every notification delivery. No secret is stored here: a channel
-- names the environment variable that holds a webhook token, SMTP credentials come from
-- settings.
CREATE TABLE opscore.alert_rules (
    rule_id      int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
    target_id    int REFERENCES opscore.targets ON DELETE CASCADE,   -- NULL: every target
    kind         text NOT NULL CHECK (kind IN ('threshold', 'rate', 'absence', 'addm', 'anomaly')),
    metric       text NOT NULL,
    op           text NOT NULL DEFAULT '>' CHECK (op IN ('>', '>=', '<', '<=')),
    value        double precision NOT NULL,
    for_s        int NOT NULL DEFAULT 0 CHECK (for_s >= 0),        -- true this long before firing
    clear_for_s  int NOT NULL DEFAULT 0 CHECK (clear_for_s >= 0),  -- false this long before resolving
    severity     text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    enabled      boolean NOT NULL DEFAULT true,
    channels     jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (channels::text !~* '"(token|password|secret)"'),
    description  text NOT NULL DEFAULT '',
    builtin      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- per rule and target: since when the condition holds (pending) or has cleared (damping), and
-- the previous reading (rate rules)
CREATE TABLE opscore.alert_state (
    rule_id        int NOT NULL REFERENCES opscore.alert_rules ON DELETE CASCADE,
    target_id      int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    pending_since  timestamptz,
    clear_since    timestamptz,
    last_value     double precision,
    last_at        timestamptz,
    last_status    text,
    last_message   text,
    evaluated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, target_id)
);

CREATE TABLE opscore.alerts (
    alert_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id          int NOT NULL REFERENCES opscore.alert_rules ON DELETE CASCADE,
    target_id        int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    status           text NOT NULL CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    severity         text NOT NULL,
    summary          text NOT NULL,
    value            double precision,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    fired_at         timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    flaps            int NOT NULL DEFAULT 0,     -- cleared and came back before resolving
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_by      text
);
-- dedupe: at most one open alert per rule and target
CREATE UNIQUE INDEX alerts_one_open ON opscore.alerts (rule_id, target_id)
    WHERE status <> 'resolved';
CREATE INDEX alerts_fired ON opscore.alerts (fired_at);

CREATE TABLE opscore.alert_notifications (
    notification_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint NOT NULL REFERENCES opscore.alerts ON DELETE CASCADE,
    event            text NOT NULL CHECK (event IN ('firing', 'resolved')),
    channel          text NOT NULL CHECK (channel IN ('webhook', 'email')),
    destination      text NOT NULL,
    attempts         int NOT NULL,
    ok               boolean NOT NULL,
    response         text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX alert_notifications_alert ON opscore.alert_notifications (alert_id);
