"""What a ClickHouse migration is: a number, a name, and its forwards/backwards SQL."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_TTL_DAYS", "IfColumn", "Migration", "MigrationParams", "Statement"]

MAX_TTL_DAYS = 7300
"""Longest TTL: ``toDateTime(t) + INTERVAL n DAY`` wraps past 2106 (DateTime's end) into the
past, which would expire every row at once; 20 years from any event time stays in range."""


@dataclass(frozen=True)
class MigrationParams:
    """Values from the settings that the DDL needs; integers only, never user input."""

    ttl_days: int
    dedup_window: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.ttl_days <= MAX_TTL_DAYS:
            raise ValueError(f"ttl_days must be within 1..{MAX_TTL_DAYS}, got {self.ttl_days}")


@dataclass(frozen=True)
class IfColumn:
    """A statement run only while ``table`` has ``column``.

    For a step that cannot repeat once a later step of the same migration has run, such as
    rewriting a column's values from another column that the migration then drops.
    """

    table: str
    column: str
    sql: str


Statement = str | IfColumn
"""One step of a migration: SQL, or SQL under a condition."""


@dataclass(frozen=True)
class Migration:
    """One numbered schema change.

    ``forwards`` statements are idempotent (``IF NOT EXISTS``) so that a migration cut
    short by a crash can simply run again (or guarded by :class:`IfColumn`). ``backwards``
    is ``None`` when reverting is not safe. Statements may contain ``{ttl_days}`` and
    ``{dedup_window}``.
    """

    version: int
    name: str
    forwards: tuple[Statement, ...]
    backwards: tuple[Statement, ...] | None

    def render(self, statements: tuple[Statement, ...], params: MigrationParams) -> list[Statement]:
        """Return ``statements`` with the settings' values filled in."""

        def fill(sql: str) -> str:
            return sql.format(ttl_days=int(params.ttl_days), dedup_window=int(params.dedup_window))

        return [
            IfColumn(step.table, step.column, fill(step.sql))
            if isinstance(step, IfColumn)
            else fill(step)
            for step in statements
        ]
