"""Queries on monitors.

The tenant filter is added by :mod:`storage.tenancy`; the explicit ``org_id`` conditions
here are the first wall, not the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import MonitorConfig

__all__ = ["by_id", "compare_and_update", "for_deployment", "page"]


def by_id(session: Session, *, org_id: str, monitor_id: str) -> MonitorConfig | None:
    """The monitor ``monitor_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(MonitorConfig).where(MonitorConfig.org_id == org_id, MonitorConfig.id == monitor_id)
    ).first()


def for_deployment(session: Session, *, org_id: str, deployment_id: str) -> Sequence[MonitorConfig]:
    """The monitors of one deployment of ``org_id``, oldest first."""
    return session.scalars(
        select(MonitorConfig)
        .where(MonitorConfig.org_id == org_id, MonitorConfig.deployment_id == deployment_id)
        .order_by(MonitorConfig.created_at, MonitorConfig.id)
    ).all()


def page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, deployment_id: str | None
) -> tuple[Sequence[MonitorConfig], str | None]:
    """One page of ``org_id``'s monitors, oldest first."""
    statement = select(MonitorConfig).where(MonitorConfig.org_id == org_id)
    if deployment_id:
        statement = statement.where(MonitorConfig.deployment_id == deployment_id)
    return fetch_page(
        session,
        statement,
        sort=MonitorConfig.created_at,
        id_column=MonitorConfig.id,
        descending=False,
        limit=limit,
        cursor=cursor,
    )


def compare_and_update(
    session: Session, *, org_id: str, monitor_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` if the monitor is still at ``version`` (bumping it)."""
    result = session.execute(
        update(MonitorConfig)
        .where(
            MonitorConfig.org_id == org_id,
            MonitorConfig.id == monitor_id,
            MonitorConfig.version == version,
        )
        .values(**values, version=version + 1, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
