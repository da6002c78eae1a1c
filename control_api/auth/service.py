"""Sign-up, login (password and client credentials), refresh rotation, logout, sessions.

Refresh tokens rotate: each login is an :class:`~storage.models.AuthSession` that remembers
the ``jti`` of its newest refresh token. Refreshing with it swaps in a new one (a
compare-and-set, so two concurrent refreshes cannot both win); presenting any other token
of the family means it leaked, and the whole session is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.auth.passwords import PasswordHasher
from control_api.auth.schemas import SessionRead, SignupRead, TokenPair
from control_api.auth.tokens import TokenCodec, TokenError
from control_api.deps import API_KEY_ROLE
from control_api.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, RateLimited
from control_api.ratelimit import RateLimiter
from control_api.rbac import Role
from driftline.settings import Settings
from storage.models import ApiKey, AuthSession, Membership, Organization, User
from storage.tenancy import scope_to, unscoped

__all__ = [
    "check_password_policy",
    "client_credentials",
    "hash_api_secret",
    "list_sessions",
    "login",
    "logout",
    "refresh",
    "revoke_sessions",
    "signup",
]

_BAD_LOGIN = "Incorrect email or password."


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hash_api_secret(secret: str) -> str:
    """SHA-256 of an API key (high-entropy secrets need no slow hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password_policy(password: str, *, min_length: int) -> None:
    """Refuse passwords shorter than ``min_length`` (422)."""
    if len(password) < min_length:
        raise InvalidInput(f"The password must have at least {min_length} characters.")


def _slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "org"
    return f"{base}-{secrets.token_hex(3)}"


def signup(
    session: Session,
    *,
    hasher: PasswordHasher,
    min_password_length: int,
    org_name: str,
    email: str,
    password: str,
) -> SignupRead:
    """Create an organization with ``email`` as its owner."""
    check_password_policy(password, min_length=min_password_length)
    org = Organization(id=str(uuid.uuid4()), slug=_slug(org_name), name=org_name)
    user = User(id=str(uuid.uuid4()), email=email.lower(), password_hash=hasher.hash(password))
    scope_to(session, org.id)
    try:
        session.add_all([org, user])
        session.flush()  # parents first: the models declare no relationships to order by
        session.add(Membership(org_id=org.id, user_id=user.id, role=Role.OWNER.label))
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict("An account with this email already exists.") from error
    return SignupRead(org_id=org.id, org_slug=org.slug, user_id=user.id, email=user.email)


def _issue_pair(
    codec: TokenCodec, settings: Settings, *, user_id: str, org_id: str, role: str, sid: str
) -> tuple[TokenPair, str]:
    access, _ = codec.issue(
        sub=user_id,
        org=org_id,
        role=role,
        typ="access",
        ttl_seconds=settings.access_token_ttl_seconds,
        sid=sid,
    )
    refresh_token, claims = codec.issue(
        sub=user_id,
        org=org_id,
        role=role,
        typ="refresh",
        ttl_seconds=settings.refresh_token_ttl_seconds,
        sid=sid,
    )
    pair = TokenPair(
        access_token=access,
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl_seconds,
    )
    return pair, claims.jti


def _limit_login(limiter: RateLimiter, settings: Settings, *, email: str, ip: str) -> None:
    account = hashlib.sha256(email.encode()).hexdigest()[:32]
    for key, per_minute in (
        (f"login:acct:{account}", settings.login_attempts_per_minute),
        (f"login:ip:{ip}", settings.login_attempts_per_minute_per_ip),
    ):
        decision = limiter.hit(key, rate=per_minute / 60.0, burst=per_minute)
        if not decision.allowed:
            raise RateLimited(decision.retry_after)


def login(
    session: Session,
    *,
    codec: TokenCodec,
    hasher: PasswordHasher,
    limiter: RateLimiter,
    settings: Settings,
    email: str,
    password: str,
    ip: str,
    user_agent: str,
) -> TokenPair:
    """OAuth2 password grant: check the password, open a session, return a token pair."""
    email = email.lower()
    _limit_login(limiter, settings, email=email, ip=ip)
    user = session.scalars(select(User).where(User.email == email)).first()
    if not hasher.verify(password, user.password_hash if user else None) or user is None:
        raise AuthenticationFailed(_BAD_LOGIN)
    with unscoped(session):
        membership = session.scalars(
            select(Membership).where(Membership.user_id == user.id).order_by(Membership.created_at)
        ).first()
    if membership is None:
        raise AuthenticationFailed(_BAD_LOGIN)
    scope_to(session, membership.org_id)
    sid = str(uuid.uuid4())
    pair, jti = _issue_pair(
        codec, settings, user_id=user.id, org_id=membership.org_id, role=membership.role, sid=sid
    )
    session.add(
        AuthSession(
            id=sid,
            org_id=membership.org_id,
            user_id=user.id,
            refresh_jti=jti,
            user_agent=user_agent[:300],
            expires_at=_now() + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    session.commit()
    return pair


def client_credentials(
    session: Session, *, codec: TokenCodec, settings: Settings, client_id: str, client_secret: str
) -> TokenPair:
    """OAuth2 client-credentials grant for API keys (client_id = key id): an access token."""
    with unscoped(session):
        key = session.get(ApiKey, client_id)
    expected = key.secret_hash if key else hash_api_secret("")
    valid = hmac.compare_digest(expected, hash_api_secret(client_secret))
    if key is None or not valid or key.revoked_at is not None:
        raise AuthenticationFailed("Invalid client credentials.")
    if key.expires_at is not None and _aware(key.expires_at) <= _now():
        raise AuthenticationFailed("The API key has expired.")
    access, _ = codec.issue(
        sub=key.id,
        org=key.org_id,
        role=API_KEY_ROLE,
        typ="access",
        ttl_seconds=settings.access_token_ttl_seconds,
        scopes=tuple(key.scopes),
    )
    return TokenPair(access_token=access, expires_in=settings.access_token_ttl_seconds)


def _revoke(session: Session, *, session_id: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    session.commit()


def refresh(
    session: Session, *, codec: TokenCodec, settings: Settings, refresh_token: str
) -> TokenPair:
    """Rotate a refresh token into a new pair.

    The newest refresh token of a session buys a new pair; an older one, reused, revokes
    the whole session.
    """
    try:
        claims = codec.decode(refresh_token, typ="refresh")
    except TokenError as error:
        raise AuthenticationFailed("The refresh token is not valid.") from error
    scope_to(session, claims.org)
    row = session.get(AuthSession, claims.sid) if claims.sid else None
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= _now():
        raise AuthenticationFailed("The session has ended.")
    membership = session.scalars(select(Membership).where(Membership.user_id == claims.sub)).first()
    if membership is None:
        raise AuthenticationFailed("The session has ended.")
    pair, new_jti = _issue_pair(
        codec,
        settings,
        user_id=claims.sub,
        org_id=claims.org,
        role=membership.role,
        sid=row.id,
    )
    swapped = session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == row.id,
            AuthSession.refresh_jti == claims.jti,
            AuthSession.revoked_at.is_(None),
        )
        .values(refresh_jti=new_jti, last_used_at=_now())
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        _revoke(session, session_id=row.id)
        raise AuthenticationFailed("The refresh token was already used; the session is revoked.")
    session.commit()
    return pair


def logout(session: Session, *, org_id: str, session_id: str | None) -> None:
    """End the caller's current session (its access and refresh tokens stop working)."""
    scope_to(session, org_id)
    if session_id is not None:
        _revoke(session, session_id=session_id)


def list_sessions(
    session: Session, *, org_id: str, user_id: str, current: str | None
) -> list[SessionRead]:
    """The caller's open sessions, newest first."""
    scope_to(session, org_id)
    rows = session.scalars(
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .where(AuthSession.expires_at > _now())
        .order_by(AuthSession.created_at.desc())
    ).all()
    return [
        SessionRead.model_validate(row).model_copy(update={"current": row.id == current})
        for row in rows
    ]


def revoke_sessions(
    session: Session, *, org_id: str, user_id: str, session_id: str | None = None
) -> None:
    """Revoke one of the caller's sessions (404 if not theirs), or all with no id."""
    scope_to(session, org_id)
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if session_id is not None:
        statement = statement.where(AuthSession.id == session_id)
    result = session.execute(statement.values(revoked_at=_now()))
    if session_id is not None and result.rowcount == 0:  # type: ignore[attr-defined]
        session.rollback()
        raise NotFound("No such session.")
    session.commit()
