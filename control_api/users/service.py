"""Members of the caller's organization.

Nobody grants or touches a role above their own, and the last owner can be neither demoted
nor removed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.auth.passwords import PasswordHasher
from control_api.auth.schemas import Me
from control_api.auth.service import check_password_policy
from control_api.deps import Principal
from control_api.errors import Conflict, NotFound, PermissionDenied
from control_api.pagination import fetch_page
from control_api.rbac import Role
from control_api.schemas import Page
from control_api.users.schemas import UserCreate, UserRead, UserUpdate
from storage.models import AuthSession, Membership, User
from storage.tenancy import unscoped

__all__ = ["create", "describe", "get", "list_page", "remove", "update_role"]

UserSort = Literal["created_at", "-created_at"]


def _read(membership: Membership, user: User) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,  # type: ignore[arg-type]  # a RoleName, checked on write
        created_at=membership.created_at,
    )


def _membership(session: Session, *, user_id: str) -> Membership:
    membership = session.scalars(select(Membership).where(Membership.user_id == user_id)).first()
    if membership is None:
        raise NotFound("No such user.")
    return membership


def _check_rank(principal: Principal, *roles: Role) -> None:
    assert principal.role is not None  # members only: API keys never hold users:manage
    if any(role > principal.role for role in roles):
        raise PermissionDenied("You cannot manage a role above your own.")


def _check_not_last_owner(session: Session, membership: Membership) -> None:
    if membership.role != Role.OWNER.label:
        return
    owners = session.scalar(
        select(func.count()).select_from(Membership).where(Membership.role == Role.OWNER.label)
    )
    if (owners or 0) <= 1:
        raise Conflict("An organization keeps at least one owner.")


def describe(session: Session, *, principal: Principal) -> Me:
    """The caller as ``GET /v1/me`` shows it."""
    user = session.get(User, principal.id) if principal.kind == "user" else None
    return Me(
        kind="user" if principal.kind == "user" else "api_key",
        id=principal.id,
        org_id=principal.org_id,
        email=user.email if user else None,
        full_name=user.full_name if user else None,
        role=principal.role.label if principal.role else None,
        permissions=sorted(p.value for p in principal.permissions),
    )


def create(
    session: Session,
    *,
    principal: Principal,
    hasher: PasswordHasher,
    min_password_length: int,
    body: UserCreate,
) -> UserRead:
    """Add a new user to the caller's organization with ``body.role``."""
    _check_rank(principal, Role.parse(body.role))
    check_password_policy(body.password, min_length=min_password_length)
    user = User(
        id=str(uuid.uuid4()),
        email=body.email.lower(),
        full_name=body.full_name,
        password_hash=hasher.hash(body.password),
    )
    membership = Membership(org_id=principal.org_id, user_id=user.id, role=body.role)
    try:
        session.add(user)
        session.flush()  # the user before its membership (no relationship orders them)
        session.add(membership)
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict("An account with this email already exists.") from error
    return _read(membership, user)


def get(session: Session, *, org_id: str, user_id: str) -> UserRead:
    """One member of ``org_id``; 404 if not a member."""
    membership = _membership(session, user_id=user_id)
    user = session.get(User, membership.user_id)
    assert user is not None  # a membership's user exists (foreign key)
    return _read(membership, user)


def list_page(
    session: Session,
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    role: str | None,
    sort: UserSort,
) -> Page[UserRead]:
    """A page of the members of ``org_id``, optionally of one role."""
    statement = select(Membership)
    if role is not None:
        statement = statement.where(Membership.role == role)
    rows, next_cursor = fetch_page(
        session,
        statement,
        sort=Membership.created_at,
        id_column=Membership.id,
        descending=sort.startswith("-"),
        limit=limit,
        cursor=cursor,
    )
    users = {
        u.id: u for u in session.scalars(select(User).where(User.id.in_([m.user_id for m in rows])))
    }
    return Page(items=[_read(m, users[m.user_id]) for m in rows], next_cursor=next_cursor)


def update_role(
    session: Session, *, principal: Principal, user_id: str, body: UserUpdate
) -> UserRead:
    """Change a member's role (not above the caller's; the last owner stays owner)."""
    membership = _membership(session, user_id=user_id)
    new_role = Role.parse(body.role)
    _check_rank(principal, Role.parse(membership.role), new_role)
    if new_role is not Role.OWNER:
        _check_not_last_owner(session, membership)
    membership.role = new_role.label
    session.commit()
    return get(session, org_id=principal.org_id, user_id=user_id)


def remove(session: Session, *, principal: Principal, user_id: str) -> None:
    """Remove a member: their sessions end, and the user goes if no organization remains."""
    membership = _membership(session, user_id=user_id)
    _check_rank(principal, Role.parse(membership.role))
    _check_not_last_owner(session, membership)
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    session.delete(membership)
    session.flush()
    with unscoped(session):  # memberships in other organizations keep the user alive
        others = session.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == user_id)
        )
    if not others:
        session.execute(delete(User).where(User.id == user_id))
    session.commit()
