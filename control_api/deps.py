"""Dependencies shared by every route: the database session, the caller, and ``require``.

``get_principal`` authenticates the bearer token (a user's access token or an API key's),
binds the request's database session to the caller's organization (so every query below is
tenant-scoped, see :mod:`storage.tenancy`) and applies the per-caller rate limit.
``require(permission)`` is the only place a permission is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from control_api.auth.tokens import TokenClaims, TokenError
from control_api.context import ApiContext
from control_api.errors import AuthenticationFailed, PermissionDenied, RateLimited
from control_api.rbac import API_KEY_SCOPES, ROLE_PERMISSIONS, Permission, Role, Scope
from storage.models import ApiKey, AuthSession, Membership
from storage.tenancy import scope_to

__all__ = [
    "API_KEY_ROLE",
    "ContextDep",
    "Principal",
    "PrincipalDep",
    "SessionDep",
    "client_ip",
    "get_principal",
    "limit_by_ip",
    "require",
]

API_KEY_ROLE = "api_key"
_LAST_USED_RESOLUTION = timedelta(minutes=1)
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def get_context(request: Request) -> ApiContext:
    """The application's :class:`ApiContext`.

    ``async`` (as are the other dependencies that never block): FastAPI runs a plain ``def``
    dependency on a worker thread, a hop that costs more than the work here.
    """
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_session(ctx: ContextDep) -> AsyncIterator[Session]:
    """One database session per request, rolled back unless a service committed.

    The request first waits its turn at the session gate (:mod:`control_api.session_gate`)
    on the event loop. Opening a session touches no connection, so it is done there too;
    closing it gives the connection back (a rollback on the wire), on a worker thread.
    """
    async with ctx.session_gate.limiter():
        session = ctx.sessions()
        try:
            yield session
        finally:
            await run_in_threadpool(session.close)


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a member (with a role) or an API key (with scopes)."""

    kind: str
    id: str
    org_id: str
    role: Role | None
    permissions: frozenset[Permission]
    session_id: str | None = None


def client_ip(request: Request) -> str:
    """The client's address as the server saw it.

    Behind a proxy, run uvicorn with ``--forwarded-allow-ips`` so this is the real client.
    """
    return request.client.host if request.client else "unknown"


def _rate_limit(ctx: ApiContext, key: str) -> None:
    settings = ctx.settings
    decision = ctx.limiter.hit(
        key, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
    )
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


def limit_by_ip(request: Request, ctx: ContextDep) -> None:
    """Rate limit an anonymous route by client IP."""
    _rate_limit(ctx, f"rl:ip:{client_ip(request)}")


_MEMBERS, _SESSIONS = Membership.__table__.c, AuthSession.__table__.c
# the member's role, if its login session is live: built once, run on the connection (no ORM
# layer on the hot path), so both tables name the organization here rather than through
# storage.tenancy's filter
_MEMBER_QUERY = (
    select(_MEMBERS.role, _SESSIONS.expires_at)
    .join_from(Membership.__table__, AuthSession.__table__, _SESSIONS.user_id == _MEMBERS.user_id)
    .where(
        _MEMBERS.org_id == bindparam("org"),
        _MEMBERS.user_id == bindparam("sub"),
        _SESSIONS.org_id == bindparam("org"),
        _SESSIONS.id == bindparam("sid"),
        _SESSIONS.revoked_at.is_(None),
    )
)


def _member(session: Session, claims: TokenClaims) -> Principal:
    """The member named by ``claims``; 401 unless its session is live and it is still a member.

    Checked against the database on every request, so a revoked session or a removed member
    is refused at once (no cache to wait out).
    """
    now = datetime.now(UTC)
    row = (
        session.connection()
        .execute(_MEMBER_QUERY, {"org": claims.org, "sub": claims.sub, "sid": claims.sid})
        .first()
    )
    if row is None or _aware(row.expires_at) <= now:
        raise AuthenticationFailed("The token was revoked or its user removed.")
    role = Role.parse(row.role)
    return Principal(
        kind="user",
        id=claims.sub,
        org_id=claims.org,
        role=role,
        permissions=ROLE_PERMISSIONS[role],
        session_id=claims.sid,
    )


def _api_key(session: Session, claims: TokenClaims) -> Principal:
    now = datetime.now(UTC)
    key = session.get(ApiKey, claims.sub)
    if key is None or key.revoked_at is not None:
        raise AuthenticationFailed("The API key was revoked.")
    if key.expires_at is not None and _aware(key.expires_at) <= now:
        raise AuthenticationFailed("The API key has expired.")
    if key.last_used_at is None or _aware(key.last_used_at) < now - _LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        session.commit()
    permissions = frozenset().union(*(API_KEY_SCOPES[Scope(s)] for s in key.scopes))
    return Principal(
        kind="api_key", id=key.id, org_id=claims.org, role=None, permissions=permissions
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def get_principal(
    ctx: ContextDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """Authenticate the bearer token and scope the session to the caller's organization."""
    if not token:
        raise AuthenticationFailed()
    try:
        claims = ctx.codec.decode(token, typ="access")
    except TokenError as error:
        raise AuthenticationFailed("The token is not valid.") from error
    scope_to(session, claims.org)
    if claims.role == API_KEY_ROLE:
        principal = _api_key(session, claims)
    else:
        principal = _member(session, claims)
    _rate_limit(ctx, f"rl:{principal.kind}:{principal.id}")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers holding ``permission`` and answers 403 otherwise.

    >>> require(Permission.PROJECTS_READ).__name__
    'require_projects:read'
    """

    async def check(principal: PrincipalDep) -> Principal:
        if permission not in principal.permissions:
            raise PermissionDenied(f"This action needs the {permission.value} permission.")
        return principal

    check.__name__ = f"require_{permission.value}"
    return check
