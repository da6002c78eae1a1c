"""Apply and revert ClickHouse migrations, recording them in ``schema_migrations``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from storage.clickhouse.client import MetricsClient
from storage.clickhouse.migrations.base import IfColumn, Migration, MigrationParams, Statement
from storage.errors import MigrationError

__all__ = ["applied_versions", "apply_ttl", "migrate", "rollback"]

_CREATE_LOG = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied UInt8,
    seq UInt64,
    at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY (version, seq)
"""

_APPLIED = """
SELECT version FROM schema_migrations
GROUP BY version HAVING argMax(applied, seq) = 1
ORDER BY version
"""

_RECORD = """
INSERT INTO schema_migrations (version, name, applied, seq)
SELECT {version:UInt32}, {name:String}, {applied:UInt8},
       (SELECT count() FROM schema_migrations) + 1
"""


def _checked(migrations: Sequence[Migration] | None) -> list[Migration]:
    if migrations is None:
        from storage.clickhouse.migrations import MIGRATIONS

        migrations = MIGRATIONS
    ordered = sorted(migrations, key=lambda m: m.version)
    if [m.version for m in ordered] != list(range(1, len(ordered) + 1)):
        raise MigrationError(
            f"migration versions must run 1..n without gaps: {[m.version for m in ordered]}"
        )
    return ordered


def applied_versions(client: MetricsClient) -> list[int]:
    """Versions currently applied, ascending (creates the log table if missing)."""
    client.command(_CREATE_LOG)
    return [int(row[0]) for row in client.query_rows(_APPLIED)]


def _record(client: MetricsClient, migration: Migration, *, applied: bool) -> None:
    client.command(
        _RECORD,
        {"version": migration.version, "name": migration.name, "applied": int(applied)},
    )


def _run(client: MetricsClient, step: Statement) -> None:
    if isinstance(step, IfColumn):
        present = client.query_rows(
            "SELECT count() FROM system.columns WHERE database = currentDatabase() "
            "AND table = {table:String} AND name = {column:String}",
            {"table": step.table, "column": step.column},
        )
        if present[0][0]:
            client.command(step.sql)
        return
    client.command(step)


def migrate(
    client: MetricsClient,
    params: MigrationParams,
    *,
    migrations: Sequence[Migration] | None = None,
    target: int | None = None,
) -> list[int]:
    """Apply every missing migration up to ``target`` (default: all); return those applied.

    Idempotent: a second run applies nothing. A migration is recorded only after all its
    statements succeeded; its statements are idempotent, so a run cut short repeats safely.
    """
    ordered = _checked(migrations)
    done = set(applied_versions(client))
    applied: list[int] = []
    for migration in ordered:
        if migration.version in done or (target is not None and migration.version > target):
            continue
        for step in migration.render(migration.forwards, params):
            _run(client, step)
        _record(client, migration, applied=True)
        applied.append(migration.version)
    return applied


_TTL = re.compile(r"\bTTL (?P<base>.+?) \+ toIntervalDay\((?P<days>\d+)\)")


def apply_ttl(client: MetricsClient, params: MigrationParams) -> list[str]:
    """Bring every table's TTL to ``params.ttl_days``; return the tables changed.

    A table's TTL is fixed when it is created; this re-applies the setting, so that changing
    ``DRIFTLINE_METRICS_TTL_DAYS`` and running ``driftline migrate`` again takes effect.
    Rows are re-checked at the next merges (``materialize_ttl_after_modify = 0``: no
    immediate rewrite of every part). Idempotent: tables already at the value are left alone.
    """
    changed: list[str] = []
    rows = client.query_rows(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
    )
    for name, create in rows:
        match = _TTL.search(str(create))
        if match is None or int(match.group("days")) == params.ttl_days:
            continue
        client.command(
            f"ALTER TABLE {name} MODIFY TTL {match.group('base')} "
            f"+ INTERVAL {int(params.ttl_days)} DAY "
            "SETTINGS materialize_ttl_after_modify = 0"
        )
        changed.append(str(name))
    return changed


def rollback(
    client: MetricsClient,
    params: MigrationParams,
    *,
    to_version: int,
    migrations: Sequence[Migration] | None = None,
) -> list[int]:
    """Revert applied migrations above ``to_version``, newest first; return those reverted.

    Raises :class:`MigrationError` before touching anything if one of them has no safe
    backwards operation.
    """
    ordered = _checked(migrations)
    done = set(applied_versions(client))
    todo = [m for m in reversed(ordered) if m.version in done and m.version > to_version]
    unsafe = [m.version for m in todo if m.backwards is None]
    if unsafe:
        raise MigrationError(f"migrations {unsafe} cannot be reverted safely")
    for migration in todo:
        assert migration.backwards is not None  # checked above
        for step in migration.render(migration.backwards, params):
            _run(client, step)
        _record(client, migration, applied=False)
    return [m.version for m in todo]
