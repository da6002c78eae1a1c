"""Routes of ``/v1/api-keys`` (admin and owner): each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from control_api.api_keys import service
from control_api.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from control_api.deps import Principal, SessionDep, require
from control_api.errors import responses
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["router"]

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
Manager = Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))]


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 422, 429))
def create_api_key(body: ApiKeyCreate, principal: Manager, session: SessionDep) -> ApiKeyCreated:
    """Create a key; its secret is in this response only."""
    return service.create(session, org_id=principal.org_id, user_id=principal.id, body=body)


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_api_keys(
    principal: Manager,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    include_revoked: bool = False,
) -> Page[ApiKeyRead]:
    """The organization's keys, newest first, without their secrets."""
    return service.list_page(
        session,
        org_id=principal.org_id,
        limit=limit,
        cursor=cursor,
        include_revoked=include_revoked,
    )


@router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 404, 429)
)
def revoke_api_key(key_id: str, principal: Manager, session: SessionDep) -> None:
    """Revoke a key: its tokens stop working at once."""
    service.revoke(session, org_id=principal.org_id, key_id=key_id)
