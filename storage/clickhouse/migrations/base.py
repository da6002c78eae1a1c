"""What a ClickHouse migration is: a number, a name, and its forwards/backwards SQL."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Migration", "MigrationParams"]


@dataclass(frozen=True)
class MigrationParams:
    """Values from the settings that the DDL needs; integers only, never user input."""

    ttl_days: int
    dedup_window: int = 10_000


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
