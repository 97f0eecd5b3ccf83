-- Limits the capacity forecasts need: per snapshot, every database's transaction-ID and
-- multixact age (with the autovacuum freeze and failsafe ages in force), and the sequences of
-- the captured databases with their bounds. Gauges: stored as read, no deltas.
CREATE TABLE opscore.snap_wraparound (
    snapshot_id         bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    datname             text NOT NULL,
    xid_age             bigint,
    mxid_age            bigint,
    freeze_max_age      bigint,
    mxid_freeze_max_age bigint,
    failsafe_age        bigint,
    mxid_failsafe_age   bigint,
    autovacuum          boolean,
    PRIMARY KEY (snapshot_id, datname)
);

CREATE TABLE opscore.snap_sequences (
    snapshot_id  bigint NOT NULL REFERENCES opscore.snapshots ON DELETE CASCADE,
    datname      text NOT NULL,
    schemaname   text NOT NULL,
    sequencename text NOT NULL,
    data_type    text,
    last_value   bigint,          -- NULL: never called, or no privilege to read it
    min_value    bigint,
    max_value    bigint,
    increment_by bigint,
    cycle        boolean,
    PRIMARY KEY (snapshot_id, datname, schemaname, sequencename)
);

-- Anomalies of one database of a cluster (the load of the other databases left out: a
-- cluster shared by several applications); NULL: the whole cluster, as before.
ALTER TABLE opscore.ml_anomalies ADD COLUMN datname text;
ALTER TABLE opscore.ml_anomalies DROP CONSTRAINT ml_anomalies_target_id_begin_at_detector_key;
CREATE UNIQUE INDEX ml_anomalies_scope_key
    ON opscore.ml_anomalies (target_id, (coalesce(datname, '')), begin_at, detector);

-- Alert rules of kind forecast: the capacity forecasts' days until a limit.
ALTER TABLE opscore.alert_rules DROP CONSTRAINT alert_rules_kind_check;
ALTER TABLE opscore.alert_rules ADD CONSTRAINT alert_rules_kind_check
    CHECK (kind IN ('threshold', 'rate', 'absence', 'addm', 'anomaly', 'forecast'));
