"""Routes of ``/v1/users``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page
from control_api.users import service
from control_api.users.schemas import RoleName, UserCreate, UserRead, UserUpdate
from control_api.users.service import UserSort

__all__ = ["router"]

router = APIRouter(prefix="/v1/users", tags=["users"])
Reader = Annotated[Principal, Depends(require(Permission.USERS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 409, 422, 429))
def create_user(
    body: UserCreate, principal: Manager, ctx: ContextDep, session: SessionDep
) -> UserRead:
    """Create a user in the caller's organization with a role (admin and owner)."""
    return service.create(
        session,
        principal=principal,
        hasher=ctx.hasher,
        min_password_length=ctx.settings.password_min_length,
        body=body,
    )


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_users(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    role: RoleName | None = None,
    sort: UserSort = "created_at",
) -> Page[UserRead]:
    """Members of the caller's organization, a page at a time."""
    return service.list_page(
        session, org_id=principal.org_id, limit=limit, cursor=cursor, role=role, sort=sort
    )


@router.get("/{user_id}", responses=responses(401, 403, 404, 429))
def get_user(user_id: str, principal: Reader, session: SessionDep) -> UserRead:
    """One member of the caller's organization."""
    return service.get(session, org_id=principal.org_id, user_id=user_id)


@router.patch("/{user_id}", responses=responses(401, 403, 404, 409, 422, 429))
def update_user(
    user_id: str, body: UserUpdate, principal: Manager, session: SessionDep
) -> UserRead:
    """Change a member's role."""
    return service.update_role(session, principal=principal, user_id=user_id, body=body)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409, 429),
)
def delete_user(user_id: str, principal: Manager, session: SessionDep) -> None:
    """Remove a member from the caller's organization; their sessions end."""
    service.remove(session, principal=principal, user_id=user_id)
