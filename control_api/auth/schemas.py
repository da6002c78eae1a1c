"""Requests and responses of sign-up, tokens and sessions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from control_api.schemas import ORMModel, RequestModel, UtcDatetime

__all__ = ["Me", "SessionRead", "SignupCreate", "SignupRead", "TokenPair", "TokenRefresh"]


class SignupCreate(RequestModel):
    """A new organization and its owner."""

    org_name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)


class SignupRead(BaseModel):
    """The organization and owner just created."""

    org_id: str
    org_slug: str
    user_id: str
    email: str
    role: Literal["owner"] = "owner"


class TokenPair(BaseModel):
    """OAuth2 token response; API keys (client credentials) get no refresh token."""

    access_token: str
    refresh_token: str | None = None
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class TokenRefresh(RequestModel):
    """A refresh token to exchange for a new pair."""

    refresh_token: str = Field(min_length=1, max_length=4096)


class SessionRead(ORMModel):
    """One login session of the caller."""

    id: str
    user_agent: str
    created_at: UtcDatetime
    last_used_at: UtcDatetime
    expires_at: UtcDatetime
    current: bool = False


class Me(BaseModel):
    """The caller: user or API key, its organization, role and permissions."""

    kind: Literal["user", "api_key"]
    id: str
    org_id: str
    email: str | None = None
    full_name: str | None = None
    role: str | None = None
    permissions: list[str]
