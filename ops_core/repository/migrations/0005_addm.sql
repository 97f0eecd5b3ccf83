-- opscore repository: ADDM analyses, their findings and recommendations.
-- Snapshot ids are kept as plain numbers (no foreign key): an analysis outlives the purge of
-- the snapshots it was made from.

CREATE TABLE opscore.addm_analyses (
    analysis_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id          int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    begin_snapshot_id  bigint NOT NULL,
    end_snapshot_id    bigint NOT NULL,
    begin_at           timestamptz NOT NULL,
    end_at             timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    database           text,           -- NULL: the whole server
    db_time_s          double precision NOT NULL,
    db_time_source     text NOT NULL CHECK (db_time_source IN ('ash', 'pg_stat_statements')),
    ash_db_time_s      double precision,
    pgss_time_s        double precision NOT NULL,
    ash_samples        int NOT NULL,
    min_impact_pct     double precision NOT NULL,
    breakdown          jsonb NOT NULL,
    notes              jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX addm_analyses_target ON opscore.addm_analyses (target_id, created_at);

CREATE TABLE opscore.addm_findings (
    analysis_id        bigint NOT NULL REFERENCES opscore.addm_analyses ON DELETE CASCADE,
    rank               int NOT NULL,
    type               text NOT NULL,
    title              text NOT NULL,
    impact_db_time_s   double precision NOT NULL,
    impact_pct         double precision NOT NULL,
    risk_pct           double precision,
    basis              text NOT NULL,
    evidence           jsonb NOT NULL,
    objects            text[] NOT NULL,
    statements         jsonb NOT NULL,
    sessions           int[] NOT NULL,
    PRIMARY KEY (analysis_id, rank)
);

CREATE TABLE opscore.addm_recommendations (
    analysis_id        bigint NOT NULL,
    rank               int NOT NULL,      -- the finding's rank
    seq                int NOT NULL,
    action_type        text NOT NULL,
    action             text NOT NULL,
    rationale          text NOT NULL,
    benefit_db_time_s  double precision,
    benefit_pct        double precision,
    PRIMARY KEY (analysis_id, rank, seq),
    FOREIGN KEY (analysis_id, rank) REFERENCES opscore.addm_findings ON DELETE CASCADE
);
