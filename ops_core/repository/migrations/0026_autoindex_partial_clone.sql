-- opscore repository: auto-indexing's INCLUDE and partial indexes, and costing on a clone
-- (issue 16).
--
-- autoindex_indexes.include: the INCLUDE columns of an index it recommended or built (empty:
--   none); predicate: a partial index's predicate ({"column", "value" (null: IS NULL),
--   "freq", "source"}; null: not partial). Both are part of what makes two indexes the same
--   one (a regressed index is never proposed again with the same key, INCLUDE and predicate).
-- autoindex_config.clone: the clone (opscore's restored copy of the target) candidates are
--   costed on when the target has no hypopg: built for real there in a rolled-back
--   transaction and planned. NULL: an estimate from the plans.

ALTER TABLE opscore.autoindex_indexes
    ADD COLUMN include text[] NOT NULL DEFAULT '{}',
    ADD COLUMN predicate jsonb;

ALTER TABLE opscore.autoindex_config ADD COLUMN clone text;
