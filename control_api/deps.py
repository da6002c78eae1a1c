"""Dependencies shared by every route: the database session, the caller, and ``require``.

``get_principal`` authenticates the bearer token (a user's access token or an API key's),
binds the request's database session to the caller's organization (so every query below is
tenant-scoped, see :mod:`storage.tenancy`) and applies the per-caller rate limit.
``require(permission)`` is the only place a permission is checked.

A member's caller comes from Redis when it can (:mod:`control_api.fastpath`, kind ``auth``):
one round trip on the event loop answers whether the login session was live and the member's
role under the organization's current ``auth`` generation, and takes the rate-limit token. A
miss reads the database (on a worker thread) and stores the answer; any committed write to
the organization's memberships or login sessions (a revoked session, a removed member, a
changed role) moves the generation on (:mod:`control_api.generations`), so the next request
reads the database again: no staleness while Redis takes the bump, at most
``DRIFTLINE_CACHE_TTL_SECONDS`` when a bump is lost with its process. The session's own expiry
is checked at every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from control_api.auth.tokens import TokenClaims, TokenError
from control_api.context import ApiContext
from control_api.errors import AuthenticationFailed, PermissionDenied, RateLimited
from control_api.fastpath import Bucket, FastReads
from control_api.generations import AUTH
from control_api.ratelimit import Decision
from control_api.rbac import API_KEY_SCOPES, ROLE_PERMISSIONS, Permission, Role, Scope
from storage.models import ApiKey, AuthSession, Membership
from storage.tenancy import scope_to

__all__ = [
    "API_KEY_ROLE",
    "ContextDep",
    "Principal",
    "PrincipalDep",
    "SessionDep",
    "TokenDep",
    "authenticate",
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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One database session per request, rolled back unless a service committed.

    The request first waits its turn at the session gate (:mod:`control_api.session_gate`)
    on the event loop. Opening a session touches no connection, so it is done there too;
    closing one that holds a connection gives it back (a rollback on the wire), on a worker
    thread; closing one that never began a transaction (a request Redis answered) is done
    on the loop. (The context is read from the request, not through :func:`get_context`:
    every dependency costs FastAPI a solve at each request.)
    """
    ctx: ApiContext = request.app.state.ctx
    async with ctx.session_gate.limiter():
        session = ctx.sessions()
        try:
            yield session
        finally:
            if session.in_transaction():
                await run_in_threadpool(session.close)
            else:
                session.close()


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
    _check(
        ctx.limiter.hit(key, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
    )


def _check(decision: Decision) -> None:
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


def _member_entry(session: Session, claims: TokenClaims) -> bytes:
    """``<role>|<session expiry, epoch seconds>|<user>`` of the member named by ``claims``.

    401 unless its login session is unrevoked and it is still a member (the expiry is
    checked by :func:`_member`, at every request).
    """
    row = (
        session.connection()
        .execute(_MEMBER_QUERY, {"org": claims.org, "sub": claims.sub, "sid": claims.sid})
        .first()
    )
    if row is None:
        raise AuthenticationFailed("The token was revoked or its user removed.")
    return f"{row.role}|{_aware(row.expires_at).timestamp()}|{claims.sub}".encode()


def _member(claims: TokenClaims, entry: bytes) -> Principal:
    """The member of ``claims`` with the role of ``entry``; 401 once its session expired."""
    role_label, expires, user = entry.decode().split("|")
    if user != claims.sub or float(expires) <= time():
        raise AuthenticationFailed("The token was revoked or its user removed.")
    role = Role.parse(role_label)
    return Principal(
        kind="user",
        id=claims.sub,
        org_id=claims.org,
        role=role,
        permissions=ROLE_PERMISSIONS[role],
        session_id=claims.sid,
    )


async def _member_from_redis(
    ctx: ApiContext, fast: FastReads, session: Session, claims: TokenClaims
) -> Principal:
    """The member through Redis (module docstring), with the rate-limit token taken there."""
    settings = ctx.settings
    bucket = Bucket(
        f"rl:user:{claims.sub}", settings.rate_limit_per_second, settings.rate_limit_burst
    )
    key = claims.sid or ""  # a token without a session: not plain, so never cached
    lookup = await fast.read(claims.org, AUTH, key, bucket=bucket)
    entry = lookup.payload
    if entry is None:
        entry = await run_in_threadpool(_member_entry, session, claims)
        await fast.fill(claims.org, AUTH, key, lookup, entry)
    principal = _member(claims, entry)
    assert lookup.decision is not None  # a bucket was given
    _check(lookup.decision)
    return principal


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


def _from_database(ctx: ApiContext, session: Session, claims: TokenClaims) -> Principal:
    """The caller read from the database, rate limited by ``ctx.limiter`` (worker thread)."""
    if claims.role == API_KEY_ROLE:
        principal = _api_key(session, claims)
    else:
        principal = _member(claims, _member_entry(session, claims))
    _rate_limit(ctx, f"rl:{principal.kind}:{principal.id}")
    return principal


TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def get_principal(request: Request, session: SessionDep, token: TokenDep) -> Principal:
    """The caller, authenticated once per request (then kept in ``request.state``)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = await authenticate(request.app.state.ctx, session, token)
        request.state.principal = principal
    return principal


async def authenticate(ctx: ApiContext, session: Session, token: str | None) -> Principal:
    """Authenticate the bearer token and scope the session to the caller's organization.

    A member's token is served from Redis when the application has it (module docstring);
    an API key's, and any token without Redis, from the database on a worker thread.
    """
    if not token:
        raise AuthenticationFailed()
    try:
        claims = ctx.codec.decode(token, typ="access")
    except TokenError as error:
        raise AuthenticationFailed("The token is not valid.") from error
    scope_to(session, claims.org)
    if ctx.fast is not None and claims.role != API_KEY_ROLE:
        return await _member_from_redis(ctx, ctx.fast, session, claims)
    return await run_in_threadpool(_from_database, ctx, session, claims)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(
    permission: Permission,
) -> Callable[[Request, Session, str | None], Awaitable[Principal]]:
    """A dependency that lets through callers holding ``permission`` and answers 403 otherwise.

    It authenticates through :func:`get_principal` called directly, not as a sub-dependency,
    which would cost FastAPI one more solve at every request.

    >>> require(Permission.PROJECTS_READ).__name__
    'require_projects:read'
    """

    async def check(request: Request, session: SessionDep, token: TokenDep) -> Principal:
        principal = await get_principal(request, session, token)
        if permission not in principal.permissions:
            raise PermissionDenied(f"This action needs the {permission.value} permission.")
        return principal

    check.__name__ = f"require_{permission.value}"
    return check
