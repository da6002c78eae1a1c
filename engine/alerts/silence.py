"""Silences: an alert matching every matcher of a silence in force now is not notified.

A silence is in force from ``starts_at`` (inclusive) to ``ends_at`` (exclusive). One scoped
to a deployment's rollout (``rollout_of``) is in force, within those times, only while the
deployment is rolling out - its state is in :data:`ROLLOUT_STATES` - so it ends by itself
when the rollout ends: promoted to active (100 % of the traffic), rolled back or failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from engine.alerts.matchers import Matcher, matches_all
from storage.models import AlertSilence, Deployment

__all__ = ["ROLLOUT_STATES", "Silence", "in_force", "silenced_by"]

ROLLOUT_STATES = ("pending",)
"""Deployment states of a rollout in progress: pending, canaries at every traffic step
below 100 % included (``control_api.deployments``); active, superseded, rolled_back and
failed end it."""


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


def in_force(now: datetime) -> list[Any]:
    """SQL conditions on :class:`~storage.models.AlertSilence` rows in force at ``now``."""
    rolling_out = select(Deployment.id).where(Deployment.state.in_(ROLLOUT_STATES))
    return [
        AlertSilence.starts_at <= now,
        AlertSilence.ends_at > now,
        or_(AlertSilence.rollout_of.is_(None), AlertSilence.rollout_of.in_(rolling_out)),
    ]


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], now: datetime) -> list[str]:
    """The ids of the silences active at ``now`` that mute an alert with ``labels``."""
    return [s.id for s in silences if s.active(now) and matches_all(s.matchers, labels)]
