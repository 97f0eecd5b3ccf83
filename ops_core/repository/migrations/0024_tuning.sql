-- opscore repository: self-tuning (issue 16).
--
-- tuning_overrides: parameters a DBA pinned on a target (self-tuning reports them, never
--   changes them).
-- tuning_trials: each parameter change self-tuning applied (or reported), with the value before
--   and its scope, the snapshot it is measured against, and the verdict once measured: kept, or
--   rolled back because the same statements got slower per call.

CREATE TABLE opscore.tuning_overrides (
    target_id   int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    parameter   text NOT NULL,
    value       text NOT NULL,
    pinned_by   text NOT NULL,
    pinned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, parameter)
);

CREATE TABLE opscore.tuning_trials (
    trial_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_id           int NOT NULL REFERENCES opscore.targets ON DELETE CASCADE,
    parameter           text NOT NULL,
    scope               text NOT NULL CHECK (scope IN ('database', 'system')),
    database            text,
    old_value           text,             -- NULL: nothing was set at this scope (RESET is the way back)
    new_value           text NOT NULL,
    reason              text NOT NULL,
    action_id           bigint,           -- the journal entry of the change
    applied_at          timestamptz NOT NULL DEFAULT now(),
    status              text NOT NULL CHECK (status IN
                            ('measuring', 'kept', 'rolled_back', 'reported', 'refused', 'failed')),
    before_ms_per_call  float8,
    after_ms_per_call   float8,
    statements          int,
    evaluated_at        timestamptz,
    rollback_action_id  bigint,
    note                text NOT NULL DEFAULT ''
);

CREATE INDEX tuning_trials_target ON opscore.tuning_trials (target_id, applied_at DESC);
