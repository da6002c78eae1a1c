"""Silences: an alert matching every matcher of a silence active now is not notified."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.alerts.matchers import Matcher, matches_all

__all__ = ["Silence", "silenced_by"]


@dataclass(frozen=True)
class Silence:
    """Active from ``starts_at`` (inclusive) to ``ends_at`` (exclusive)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime

    def active(self, now: datetime) -> bool:
        """Whether the silence is in force at ``now``."""
        return self.starts_at <= now < self.ends_at


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], now: datetime) -> list[str]:
    """The ids of the silences active at ``now`` that mute an alert with ``labels``."""
    return [s.id for s in silences if s.active(now) and matches_all(s.matchers, labels)]
