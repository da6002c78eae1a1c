"""Routes of ``/v1/auth`` and ``/v1/me``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, status

from control_api.auth import service
from control_api.auth.schemas import (
    Me,
    SessionRead,
    SignupCreate,
    SignupRead,
    TokenPair,
    TokenRefresh,
)
from control_api.deps import (
    ContextDep,
    Principal,
    PrincipalDep,
    SessionDep,
    client_ip,
    limit_by_ip,
    require,
)
from control_api.errors import PermissionDenied, responses
from control_api.rbac import Permission
from control_api.users import service as users_service

__all__ = ["router"]

NO_NUL = r"^[^\x00]*$"

router = APIRouter(prefix="/v1", tags=["auth"])
OwnSessions = Annotated[Principal, Depends(require(Permission.SESSIONS_OWN))]


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(limit_by_ip)],
    responses=responses(403, 409, 422, 429),
)
def signup(body: SignupCreate, ctx: ContextDep, session: SessionDep) -> SignupRead:
    """Create an organization with the caller as its owner (if sign-up is enabled)."""
    if not ctx.settings.signup_enabled:
        raise PermissionDenied("Sign-up is disabled on this server.")
    return service.signup(
        session,
        hasher=ctx.hasher,
        min_password_length=ctx.settings.password_min_length,
        org_name=body.org_name,
        email=body.email,
        password=body.password,
    )


@router.post("/auth/token", responses=responses(401, 422, 429))
def token(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    grant_type: Annotated[Literal["password", "client_credentials"], Form()] = "password",
    username: Annotated[str, Form(max_length=320, pattern=NO_NUL)] = "",
    password: Annotated[str, Form(max_length=256, pattern=NO_NUL)] = "",
    client_id: Annotated[str, Form(max_length=64, pattern=NO_NUL)] = "",
    client_secret: Annotated[str, Form(max_length=256, pattern=NO_NUL)] = "",
) -> TokenPair:
    """OAuth2 token endpoint: ``password`` grant or ``client_credentials`` grant.

    Password: username = email. Client credentials: client_id = API key id, client_secret =
    the key.
    """
    if grant_type == "client_credentials":
        return service.client_credentials(
            session,
            codec=ctx.codec,
            settings=ctx.settings,
            client_id=client_id,
            client_secret=client_secret,
        )
    return service.login(
        session,
        codec=ctx.codec,
        hasher=ctx.hasher,
        limiter=ctx.limiter,
        settings=ctx.settings,
        email=username,
        password=password,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )


@router.post(
    "/auth/refresh", dependencies=[Depends(limit_by_ip)], responses=responses(401, 422, 429)
)
def refresh(body: TokenRefresh, ctx: ContextDep, session: SessionDep) -> TokenPair:
    """Exchange a refresh token for a new pair; a reused one revokes its whole session."""
    return service.refresh(
        session, codec=ctx.codec, settings=ctx.settings, refresh_token=body.refresh_token
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 429))
def logout(principal: PrincipalDep, session: SessionDep) -> None:
    """End the current session: its access and refresh tokens stop working."""
    service.logout(session, org_id=principal.org_id, session_id=principal.session_id)


@router.get("/auth/sessions", responses=responses(401, 403, 429))
def list_sessions(principal: OwnSessions, session: SessionDep) -> list[SessionRead]:
    """The caller's open sessions."""
    return service.list_sessions(
        session, org_id=principal.org_id, user_id=principal.id, current=principal.session_id
    )


@router.delete(
    "/auth/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 429),
)
def revoke_all_sessions(principal: OwnSessions, session: SessionDep) -> None:
    """Revoke every session of the caller (log out everywhere)."""
    service.revoke_sessions(session, org_id=principal.org_id, user_id=principal.id)


@router.delete(
    "/auth/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 429),
)
def revoke_session(session_id: str, principal: OwnSessions, session: SessionDep) -> None:
    """Revoke one of the caller's sessions."""
    service.revoke_sessions(
        session, org_id=principal.org_id, user_id=principal.id, session_id=session_id
    )


@router.get("/me", tags=["users"], responses=responses(401, 429))
def me(principal: PrincipalDep, session: SessionDep) -> Me:
    """Who the caller is, in which organization, with which role and permissions."""
    return users_service.describe(session, principal=principal)
