"""The SQL Tuning Advisor's analyses: SQL structure (pglast), statistics, access paths
(what-if indexes, :mod:`ops_core.analysis.whatif`) and plan alternatives (planner settings
tried as SET LOCAL), each recommendation with its rationale and, where it can be, a measured
benefit."""
