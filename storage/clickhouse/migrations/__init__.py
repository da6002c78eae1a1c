"""Numbered ClickHouse migrations and the runner that applies them.

The applied versions are kept in ``schema_migrations`` (an append-only log: the last row of
a version says whether it is applied), so :func:`migrate` applies only what is missing and
running it twice changes nothing.
"""

from __future__ import annotations

from storage.clickhouse.migrations import (
    m0001_metrics_tables,
    m0002_rollups,
    m0003_minute_rollups,
    m0004_lean_rollups,
    m0005_feature_stats,
    m0006_minute_for_short_windows,
)
from storage.clickhouse.migrations.base import Migration, MigrationParams
from storage.clickhouse.migrations.runner import applied_versions, apply_ttl, migrate, rollback

MIGRATIONS: tuple[Migration, ...] = (
    m0001_metrics_tables.MIGRATION,
    m0002_rollups.MIGRATION,
    m0003_minute_rollups.MIGRATION,
    m0004_lean_rollups.MIGRATION,
    m0005_feature_stats.MIGRATION,
    m0006_minute_for_short_windows.MIGRATION,
)

__all__ = [
    "MIGRATIONS",
    "Migration",
    "MigrationParams",
    "applied_versions",
    "apply_ttl",
    "migrate",
    "rollback",
]
