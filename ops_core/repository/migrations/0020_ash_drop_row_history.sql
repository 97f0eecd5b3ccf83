-- opscore repository: drop opscore.ash_history (issue 20), the row-per-sample ASH history of
-- 0003 that history chunks (0006) replaced. Since 0006 nothing writes it: retention converted
-- the rows it held into history chunks and dropped its partitions (the 30-day history window
-- has long passed for any of them), and no reader is left. A repository that still holds rows
-- there is refused (nothing changed) rather than losing them.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM opscore.ash_history) THEN
        RAISE EXCEPTION 'opscore.ash_history still holds ASH history written before migration 0006'
            USING HINT = 'Run `opscore ash purge` with the opscore release you upgrade from (it '
                         'converts those rows into history chunks), then upgrade again.';
    END IF;
END $$;

-- removing a target removes its samples and chunks (as in 0006, without ash_history)
CREATE OR REPLACE FUNCTION opscore.ash_forget_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM opscore.ash_samples WHERE target_id = OLD.target_id;
    DELETE FROM opscore.ash_chunks WHERE target_id = OLD.target_id;
    DELETE FROM opscore.ash_history_chunks WHERE target_id = OLD.target_id;
    RETURN OLD;
END $$;

DROP TABLE opscore.ash_history;
