"""Deployment webhook subscriptions of one organization, and their delivery log.

Secrets are write-only: stored encrypted (each one sealed by the
:class:`~storage.secretbox.SecretBox`, so they can be counted without the key), used to
sign, never returned (:class:`WebhookRead` counts them). A subscription may name one
deployment of the organization; its messages and delivery log go with it when it is deleted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.deployment_webhooks import repository
from control_api.deployment_webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
)
from control_api.deployments import repository as deployments
from control_api.errors import Conflict, NotFound
from control_api.schemas import Page
from storage.models import DeploymentWebhook
from storage.secretbox import SecretBox

__all__ = ["create", "delete", "get", "list_deliveries", "list_page", "update"]


def _get(session: Session, *, org_id: str, webhook_id: str) -> DeploymentWebhook:
    found = repository.by_id(session, org_id=org_id, webhook_id=webhook_id)
    if found is None:
        raise NotFound("No such deployment webhook.")
    return found


def _read(hook: DeploymentWebhook) -> WebhookRead:
    return WebhookRead(
        id=hook.id,
        name=hook.name,
        url=hook.url,
        deployment_id=hook.deployment_id,
        events=list(hook.events),
        signing_secrets=len(hook.secrets.get("signing_secrets", ())),
        enabled=hook.enabled,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict("A deployment webhook with this name already exists.") from error


def _sealed(box: SecretBox, secrets: list[str]) -> dict[str, list[str]]:
    return {"signing_secrets": [box.seal_value(secret) for secret in secrets]}


def create(session: Session, *, org_id: str, body: WebhookCreate, box: SecretBox) -> WebhookRead:
    """A new subscription; 404 when ``deployment_id`` is not one of the organization's."""
    if body.deployment_id is not None and (
        deployments.by_id(session, org_id=org_id, deployment_id=body.deployment_id) is None
    ):
        raise NotFound("No such deployment.")
    now = datetime.now(UTC)
    hook = DeploymentWebhook(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        url=str(body.url),
        deployment_id=body.deployment_id,
        events=list(body.events),
        secrets=_sealed(box, list(body.signing_secrets)),
        enabled=body.enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(hook)
    _commit(session)
    return _read(hook)


def get(session: Session, *, org_id: str, webhook_id: str) -> WebhookRead:
    """One subscription without its secrets."""
    return _read(_get(session, org_id=org_id, webhook_id=webhook_id))


def list_page(
    session: Session, *, org_id: str, limit: int, cursor: str | None
) -> Page[WebhookRead]:
    """A page of subscriptions, oldest first."""
    rows, next_cursor = repository.page(session, org_id=org_id, limit=limit, cursor=cursor)
    return Page(items=[_read(r) for r in rows], next_cursor=next_cursor)


def update(
    session: Session, *, org_id: str, webhook_id: str, body: WebhookUpdate, box: SecretBox
) -> WebhookRead:
    """Change a subscription; given ``signing_secrets`` replace the stored ones."""
    hook = _get(session, org_id=org_id, webhook_id=webhook_id)
    if body.name is not None:
        hook.name = body.name
    if body.url is not None:
        hook.url = str(body.url)
    if body.events is not None:
        hook.events = list(body.events)
    if body.signing_secrets is not None:
        hook.secrets = _sealed(box, list(body.signing_secrets))
    if body.enabled is not None:
        hook.enabled = body.enabled
    hook.updated_at = datetime.now(UTC)
    _commit(session)
    return _read(hook)


def delete(session: Session, *, org_id: str, webhook_id: str) -> None:
    """Delete a subscription with its pending messages and delivery log."""
    session.delete(_get(session, org_id=org_id, webhook_id=webhook_id))
    session.commit()


def list_deliveries(
    session: Session, *, org_id: str, webhook_id: str, limit: int, cursor: str | None
) -> Page[DeliveryRead]:
    """A page of the subscription's delivery attempts, newest first."""
    _get(session, org_id=org_id, webhook_id=webhook_id)
    rows, next_cursor = repository.deliveries_page(
        session, org_id=org_id, webhook_id=webhook_id, limit=limit, cursor=cursor
    )
    return Page(items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor)
