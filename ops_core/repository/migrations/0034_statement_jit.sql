-- opscore repository: JIT compilation per statement (pg_stat_statements 1.10+, PostgreSQL 15+).
--
-- jit_functions: functions JIT-compiled; jit_time: ms spent compiling them (generation,
-- inlining, optimization, emission and, from 17, deforming), part of the execution time.
-- A server whose jit_above_cost is low for its statements compiles short OLTP statements on
-- every call, which can cost more than running them: ADDM names it from these. NULL before
-- PostgreSQL 15 and in the snapshots taken before this migration.
ALTER TABLE opscore.snap_statements
    ADD COLUMN IF NOT EXISTS jit_functions bigint[],
    ADD COLUMN IF NOT EXISTS jit_time double precision[];
ALTER TABLE opscore.snap_statements_day
    ADD COLUMN IF NOT EXISTS jit_functions bigint[],
    ADD COLUMN IF NOT EXISTS jit_time double precision[];
