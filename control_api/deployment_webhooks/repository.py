"""Queries on deployment webhooks, their outbox and delivery log; each filters by ``org_id``.

The session is scoped to the organization as well (:mod:`storage.tenancy`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import DeploymentWebhook, DeploymentWebhookDelivery, DeploymentWebhookOutbox

__all__ = ["by_id", "deliveries_page", "page", "pending", "subscribed"]


def by_id(session: Session, *, org_id: str, webhook_id: str) -> DeploymentWebhook | None:
    """The webhook ``webhook_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(DeploymentWebhook).where(
            DeploymentWebhook.org_id == org_id, DeploymentWebhook.id == webhook_id
        )
    ).first()


def page(
    session: Session, *, org_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[DeploymentWebhook], str | None]:
    """One page of ``org_id``'s webhooks, oldest first."""
    return fetch_page(
        session,
        select(DeploymentWebhook).where(DeploymentWebhook.org_id == org_id),
        sort=DeploymentWebhook.created_at,
        id_column=DeploymentWebhook.id,
        descending=False,
        limit=limit,
        cursor=cursor,
    )


def subscribed(session: Session, *, org_id: str, deployment_id: str) -> Sequence[DeploymentWebhook]:
    """The enabled webhooks that receive ``deployment_id``'s transitions (events unfiltered)."""
    return session.scalars(
        select(DeploymentWebhook).where(
            DeploymentWebhook.org_id == org_id,
            DeploymentWebhook.enabled.is_(True),
            or_(
                DeploymentWebhook.deployment_id.is_(None),
                DeploymentWebhook.deployment_id == deployment_id,
            ),
        )
    ).all()


def pending(session: Session, *, org_id: str) -> Sequence[DeploymentWebhookOutbox]:
    """``org_id``'s undelivered messages in the order their transitions happened."""
    return session.scalars(
        select(DeploymentWebhookOutbox)
        .where(
            DeploymentWebhookOutbox.org_id == org_id,
            DeploymentWebhookOutbox.delivery == "pending",
        )
        .order_by(DeploymentWebhookOutbox.created_at, DeploymentWebhookOutbox.id)
    ).all()


def deliveries_page(
    session: Session, *, org_id: str, webhook_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[DeploymentWebhookDelivery], str | None]:
    """One page of a webhook's delivery attempts, newest first."""
    return fetch_page(
        session,
        select(DeploymentWebhookDelivery).where(
            DeploymentWebhookDelivery.org_id == org_id,
            DeploymentWebhookDelivery.webhook_id == webhook_id,
        ),
        sort=DeploymentWebhookDelivery.at,
        id_column=DeploymentWebhookDelivery.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
