"""Queries on deployments and their audit trail.

The tenant filter is added by :mod:`storage.tenancy`; the explicit ``org_id`` conditions
here are the first wall, not the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import Deployment, DeploymentEvent

__all__ = ["active_in_slot", "by_id", "compare_and_update", "events", "page", "slot_position"]


def by_id(session: Session, *, org_id: str, deployment_id: str) -> Deployment | None:
    """The deployment ``deployment_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(Deployment).where(Deployment.org_id == org_id, Deployment.id == deployment_id)
    ).first()


def active_in_slot(
    session: Session, *, org_id: str, name: str, environment: str
) -> Sequence[Deployment]:
    """The active deployments of a slot (one, unless the data was written by hand)."""
    return session.scalars(
        select(Deployment).where(
            Deployment.org_id == org_id,
            Deployment.name == name,
            Deployment.environment == environment,
            Deployment.state == "active",
        )
    ).all()


def slot_position(session: Session, *, org_id: str, deployment: Deployment) -> int:
    """How many deployments of the same slot (name, environment) were created before it."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Deployment)
            .where(
                Deployment.org_id == org_id,
                Deployment.name == deployment.name,
                Deployment.environment == deployment.environment,
                Deployment.created_at < deployment.created_at,
            )
        )
        or 0
    )


def page(
    session: Session,
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    environment: str | None,
    state: str | None,
) -> tuple[Sequence[Deployment], str | None]:
    """One page of ``org_id``'s deployments, newest first."""
    statement = select(Deployment).where(Deployment.org_id == org_id)
    if environment:
        statement = statement.where(Deployment.environment == environment)
    if state:
        statement = statement.where(Deployment.state == state)
    return fetch_page(
        session,
        statement,
        sort=Deployment.created_at,
        id_column=Deployment.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def compare_and_update(
    session: Session, *, org_id: str, deployment_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` if the deployment is still at ``version`` (bumping it)."""
    result = session.execute(
        update(Deployment)
        .where(
            Deployment.org_id == org_id,
            Deployment.id == deployment_id,
            Deployment.version == version,
        )
        .values(**values, version=version + 1, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def events(session: Session, *, org_id: str, deployment_id: str) -> Sequence[DeploymentEvent]:
    """The deployment's audit trail, oldest first."""
    return session.scalars(
        select(DeploymentEvent)
        .where(DeploymentEvent.org_id == org_id, DeploymentEvent.deployment_id == deployment_id)
        .order_by(DeploymentEvent.created_at, DeploymentEvent.id)
    ).all()
