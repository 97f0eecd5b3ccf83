"""opscore: operations intelligence for PostgreSQL (AWR, ASH, ADDM, backup/PITR)."""

__version__ = "0.1.0"
