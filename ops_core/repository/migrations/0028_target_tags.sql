-- opscore repository: target tags (issue 21).
--
-- tags: key -> value labels of a target (env=prod, region=eu, team=payments); `opscore deploy
--   --shard-tag KEY` puts the targets sharing a value of KEY in one shard (one work queue).
ALTER TABLE opscore.targets
    ADD COLUMN tags jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(tags) = 'object');
COMMENT ON COLUMN opscore.targets.tags IS 'Labels of the target, key -> text value (sharding by tag)';
