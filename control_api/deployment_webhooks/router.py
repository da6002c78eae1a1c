"""Routes of ``/v1/deployment-webhooks``: each a permission check and one service call.

Admins and up manage subscriptions and read their delivery log (like alert channels);
whoever reads deployments reads the subscriptions, never their secrets.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from control_api.deployment_webhooks import service
from control_api.deployment_webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
)
from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["router"]

router = APIRouter(prefix="/v1/deployment-webhooks", tags=["deployments"])
Reader = Annotated[Principal, Depends(require(Permission.DEPLOYMENTS_READ))]
Admin = Annotated[Principal, Depends(require(Permission.WEBHOOKS_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX)]
Cursor = Annotated[str | None, Query(max_length=512)]
_ONE = responses(401, 403, 404, 429)
_WRITE = responses(401, 403, 404, 409, 422, 429)


@router.post("", status_code=status.HTTP_201_CREATED, responses=_WRITE)
def create_webhook(
    body: WebhookCreate, principal: Admin, session: SessionDep, ctx: ContextDep
) -> WebhookRead:
    """Subscribe a URL to deployment transitions; the signing secrets are write-only."""
    return service.create(session, org_id=principal.org_id, body=body, box=ctx.secret_box)


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_webhooks(
    principal: Reader, session: SessionDep, limit: Limit = LIMIT_DEFAULT, cursor: Cursor = None
) -> Page[WebhookRead]:
    """The organization's deployment webhooks, oldest first."""
    return service.list_page(session, org_id=principal.org_id, limit=limit, cursor=cursor)


@router.get("/{webhook_id}", responses=_ONE)
def get_webhook(webhook_id: str, principal: Reader, session: SessionDep) -> WebhookRead:
    """One deployment webhook, without its secrets."""
    return service.get(session, org_id=principal.org_id, webhook_id=webhook_id)


@router.patch("/{webhook_id}", responses=_WRITE)
def update_webhook(
    webhook_id: str, body: WebhookUpdate, principal: Admin, session: SessionDep, ctx: ContextDep
) -> WebhookRead:
    """Change a deployment webhook (rotate its secrets by giving new and old)."""
    return service.update(
        session, org_id=principal.org_id, webhook_id=webhook_id, body=body, box=ctx.secret_box
    )


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ONE)
def delete_webhook(webhook_id: str, principal: Admin, session: SessionDep) -> None:
    """Delete a deployment webhook and its pending messages."""
    service.delete(session, org_id=principal.org_id, webhook_id=webhook_id)


@router.get("/{webhook_id}/deliveries", responses=responses(400, 401, 403, 404, 422, 429))
def list_deliveries(
    webhook_id: str,
    principal: Admin,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> Page[DeliveryRead]:
    """The delivery log: every attempt with its outcome and status code, newest first."""
    return service.list_deliveries(
        session, org_id=principal.org_id, webhook_id=webhook_id, limit=limit, cursor=cursor
    )
