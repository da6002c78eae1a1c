"""JSON Web Tokens, behind this one module (python-jose today; swap the library here only).

Access and refresh tokens carry ``sub`` (user or API key id), ``org``, ``role``, ``iat``,
``exp``, ``jti``, ``iss``, ``aud``, plus ``typ`` (``access`` / ``refresh``), ``sid`` (the
login session) and ``scopes`` (API keys). Decoding pins the single configured algorithm
(HS256 with a shared secret, or RS256 with a key pair), requires every claim above and
checks issuer, audience and expiry: ``alg: none``, another algorithm, a bad signature or a
missing claim all raise :class:`TokenError`.

Every request presents its token, so a token that passed every check is remembered (the
last ``VERIFIED_CACHE_SIZE`` per codec): presented again, only its expiry and kind are
checked, against the clock. A token that failed is never remembered, and whether its session
was revoked is the caller's check, on every request (:func:`control_api.deps.get_principal`).
"""

from __future__ import annotations

import functools
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jose import JWTError, jwt

from driftline.settings import Environment, Settings

__all__ = [
    "DEFAULT_SECRETS",
    "MIN_SECRET_LENGTH",
    "ConfigurationError",
    "TokenClaims",
    "TokenCodec",
    "TokenError",
]

MIN_SECRET_LENGTH = 32
VERIFIED_CACHE_SIZE = 4096  # tokens remembered after a full check, per codec
LEEWAY_SECONDS = 5  # clock skew allowed on exp
DEFAULT_SECRETS = frozenset({"changethis", "change-me", "changeme", "secret", "driftline"})
_REQUIRED = ("sub", "org", "role", "iat", "exp", "jti", "iss", "aud", "typ")


class TokenError(Exception):
    """The token is malformed, forged, expired, or not of the expected kind."""


class ConfigurationError(RuntimeError):
    """The signing keys in the settings are missing or too weak to start the API."""


@dataclass(frozen=True)
class TokenClaims:
    """The checked claims of a token."""

    sub: str
    org: str
    role: str
    jti: str
    typ: str
    iat: int
    exp: int
    sid: str | None = None
    scopes: tuple[str, ...] = ()


class TokenCodec:
    """Issues and checks tokens with one algorithm and its keys."""

    def __init__(
        self,
        *,
        algorithm: str,
        signing_key: str,
        verify_key: str,
        issuer: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithm = algorithm
        self._signing_key = signing_key
        self._verify_key = verify_key
        self.issuer = issuer
        self.audience = audience
        self._clock = clock
        self._verified = functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        """Build the codec from ``settings``, refusing missing, short or default keys.

        In development only, a missing HS256 secret is replaced by a random one (tokens then
        die with the process).
        """
        issuer, audience = settings.jwt_issuer, settings.jwt_audience
        if settings.jwt_algorithm == "RS256":
            private = settings.jwt_private_key.get_secret_value()
            if not private or not settings.jwt_public_key:
                raise ConfigurationError(
                    "RS256 needs DRIFTLINE_JWT_PRIVATE_KEY and DRIFTLINE_JWT_PUBLIC_KEY"
                )
            return cls(
                algorithm="RS256",
                signing_key=private,
                verify_key=settings.jwt_public_key,
                issuer=issuer,
                audience=audience,
            )
        secret = settings.jwt_secret.get_secret_value()
        weak = len(secret) < MIN_SECRET_LENGTH or secret.lower() in DEFAULT_SECRETS
        if weak:
            if settings.environment is not Environment.DEVELOPMENT:
                raise ConfigurationError(
                    f"DRIFTLINE_JWT_SECRET must be set to at least {MIN_SECRET_LENGTH} random "
                    "characters (only DRIFTLINE_ENVIRONMENT=development may start without one)"
                )
            secret = secrets.token_urlsafe(48)
        return cls(
            algorithm="HS256",
            signing_key=secret,
            verify_key=secret,
            issuer=issuer,
            audience=audience,
        )

    def issue(
        self,
        *,
        sub: str,
        org: str,
        role: str,
        typ: str,
        ttl_seconds: int,
        sid: str | None = None,
        scopes: tuple[str, ...] = (),
        now: datetime | None = None,
    ) -> tuple[str, TokenClaims]:
        """Sign a new token; returns it with its claims (``jti`` freshly drawn)."""
        issued = int((now or datetime.now(UTC)).timestamp())
        claims = TokenClaims(
            sub=sub,
            org=org,
            role=role,
            jti=str(uuid.uuid4()),
            typ=typ,
            iat=issued,
            exp=issued + ttl_seconds,
            sid=sid,
            scopes=scopes,
        )
        payload: dict[str, Any] = {
            "sub": sub,
            "org": org,
            "role": role,
            "jti": claims.jti,
            "typ": typ,
            "iat": claims.iat,
            "exp": claims.exp,
            "iss": self.issuer,
            "aud": self.audience,
        }
        if sid is not None:
            payload["sid"] = sid
        if scopes:
            payload["scopes"] = list(scopes)
        token = jwt.encode(payload, self._signing_key, algorithm=self.algorithm)
        return str(token), claims

    def decode(self, token: str, *, typ: str) -> TokenClaims:
        """Check ``token`` (signature, algorithm, iss, aud, exp, required claims, ``typ``)."""
        claims = self._verified(token)  # raises TokenError; only passing tokens are kept
        if claims.exp + LEEWAY_SECONDS < self._clock():
            raise TokenError("Signature has expired.")
        if claims.typ != typ:
            raise TokenError(f"expected a {typ} token")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        """The full check of every claim but ``typ``."""
        try:
            payload = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={f"require_{claim}": True for claim in ("iat", "exp", "sub", "jti")}
                | {"require_aud": True, "require_iss": True, "leeway": LEEWAY_SECONDS},
            )
        except (JWTError, ValueError, TypeError) as error:
            raise TokenError(str(error)) from error
        missing = [claim for claim in _REQUIRED if claim not in payload]
        if missing:
            raise TokenError(f"missing claims: {', '.join(missing)}")
        scopes = payload.get("scopes", [])
        return TokenClaims(
            sub=str(payload["sub"]),
            org=str(payload["org"]),
            role=str(payload["role"]),
            jti=str(payload["jti"]),
            typ=str(payload["typ"]),
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
            sid=str(payload["sid"]) if "sid" in payload else None,
            scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
        )
