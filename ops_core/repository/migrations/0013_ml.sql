-- Workload ML: trained models (metadata; the fitted objects are joblib files under
-- OPSCORE_HOME/models) and the anomalies found, each with the metrics that moved and the ADDM
-- analysis of its interval.
CREATE TABLE opscore.ml_models (
    model_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id     int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    kind          text NOT NULL,                    -- anomaly (the one kind trained today)
    version       int NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'previous', 'retired')),
    trained_at    timestamptz NOT NULL DEFAULT now(),
    data_begin    timestamptz,
    data_end      timestamptz,
    points        int NOT NULL,
    enough_history boolean NOT NULL,
    methods       jsonb NOT NULL DEFAULT '{}',      -- metric -> method
    validation    jsonb NOT NULL DEFAULT '{}',      -- validation metrics
    notes         jsonb NOT NULL DEFAULT '[]',
    path          text,                             -- the joblib file
    UNIQUE (target_id, kind, version)
);
CREATE INDEX ON opscore.ml_models (target_id, kind, status);

CREATE TABLE opscore.ml_anomalies (
    anomaly_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id         int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    model_id          bigint REFERENCES opscore.ml_models ON DELETE SET NULL,
    detected_at       timestamptz NOT NULL DEFAULT now(),
    begin_at          timestamptz NOT NULL,
    end_at            timestamptz NOT NULL,
    score             double precision NOT NULL,
    severity          text NOT NULL CHECK (severity IN ('alert', 'warning')),
    detector          text NOT NULL,
    metrics           jsonb NOT NULL,               -- [{metric, value, expected, low, high, z}]
    begin_snapshot_id bigint,
    end_snapshot_id   bigint,
    addm_analysis_id  bigint REFERENCES opscore.addm_analyses ON DELETE SET NULL,
    UNIQUE (target_id, begin_at, detector)
);
CREATE INDEX ON opscore.ml_anomalies (target_id, begin_at);
