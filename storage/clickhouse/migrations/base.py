"""What a ClickHouse migration is: a number, a name, and its forwards/backwards SQL."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_TTL_DAYS", "Migration", "MigrationParams"]

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
class Migration:
    """One numbered schema change.

    ``forwards`` statements are idempotent (``IF NOT EXISTS``) so that a migration cut
    short by a crash can simply run again. ``backwards`` is ``None`` when reverting is
    not safe. Statements may contain ``{ttl_days}`` and ``{dedup_window}``.
    """

    version: int
    name: str
    forwards: tuple[str, ...]
    backwards: tuple[str, ...] | None

    def render(self, statements: tuple[str, ...], params: MigrationParams) -> list[str]:
        """Return ``statements`` with the settings' values filled in."""
        return [
            sql.format(ttl_days=int(params.ttl_days), dedup_window=int(params.dedup_window))
            for sql in statements
        ]
