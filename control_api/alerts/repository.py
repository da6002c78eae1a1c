"""Queries of the alerting resources; each filters by ``org_id`` (and the session is scoped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import (
    AlertChannel,
    AlertDelivery,
    AlertOutbox,
    AlertRouting,
    AlertRule,
    AlertSilence,
    AlertState,
)

__all__ = [
    "alerts_page",
    "by_id",
    "deliveries_page",
    "delivery",
    "message_rows",
    "page",
    "routing",
]

M = TypeVar("M", AlertRule, AlertChannel, AlertSilence, AlertState)


def by_id(session: Session, model: type[M], *, org_id: str, object_id: str) -> M | None:
    """The ``model`` row ``object_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(model).where(model.org_id == org_id, model.id == object_id)
    ).first()


def page(
    session: Session,
    model: type[AlertRule] | type[AlertChannel] | type[AlertSilence],
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    filters: Sequence[Any] = (),
) -> tuple[Sequence[Any], str | None]:
    """One page of ``org_id``'s rows of ``model``, oldest first."""
    statement = select(model).where(model.org_id == org_id, *filters)
    return fetch_page(
        session,
        statement,
        sort=model.created_at,
        id_column=model.id,
        descending=False,
        limit=limit,
        cursor=cursor,
    )


def alerts_page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, filters: Sequence[Any]
) -> tuple[Sequence[AlertState], str | None]:
    """One page of ``org_id``'s alerts, most recently changed first."""
    statement = select(AlertState).where(AlertState.org_id == org_id, *filters)
    return fetch_page(
        session,
        statement,
        sort=AlertState.updated_at,
        id_column=AlertState.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def deliveries_page(
    session: Session, *, org_id: str, channel_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[AlertDelivery], str | None]:
    """One page of a channel's delivery attempts, newest first."""
    statement = select(AlertDelivery).where(
        AlertDelivery.org_id == org_id, AlertDelivery.channel_id == channel_id
    )
    return fetch_page(
        session,
        statement,
        sort=AlertDelivery.at,
        id_column=AlertDelivery.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def delivery(
    session: Session, *, org_id: str, channel_id: str, delivery_id: str
) -> AlertDelivery | None:
    """One attempt of the channel's delivery log, or ``None``."""
    return session.scalars(
        select(AlertDelivery).where(
            AlertDelivery.org_id == org_id,
            AlertDelivery.channel_id == channel_id,
            AlertDelivery.id == delivery_id,
        )
    ).first()


def message_rows(
    session: Session, *, org_id: str, channel_id: str, notification_id: str
) -> Sequence[AlertOutbox]:
    """The outbox rows that make up the message ``notification_id`` of the channel."""
    return session.scalars(
        select(AlertOutbox).where(
            AlertOutbox.org_id == org_id,
            AlertOutbox.channel_id == channel_id,
            AlertOutbox.notification_id == notification_id,
        )
    ).all()


def routing(session: Session, *, org_id: str) -> AlertRouting | None:
    """The stored routing tree of ``org_id``."""
    return session.scalars(select(AlertRouting).where(AlertRouting.org_id == org_id)).first()
