"""Backup and recovery: physical (pg_basebackup full/incremental) and logical (pg_dump) backups
into a per-target store, a WAL archive (pg_receivewal), restore with pg_combinebackup and
point-in-time recovery, verification (pg_verifybackup, test restore with amcheck), retention.

Modules: store (directory layout, manifests), catalog (repository reads/writes), physical,
logical, wal, restore, server (throw-away server on a restored directory), verify, retention,
schedule. The service layer is ``ops_core.api.backup`` (with ``backup_wal``, ``backup_policy``,
``backup_remote``).
"""
