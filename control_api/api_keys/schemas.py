"""Requests and responses of ``/v1/api-keys``."""

from __future__ import annotations

from pydantic import Field

from control_api.rbac import Scope
from control_api.schemas import ORMModel, RequestModel, UtcDatetime

__all__ = ["ApiKeyCreate", "ApiKeyCreated", "ApiKeyRead"]


class ApiKeyCreate(RequestModel):
    """A new API key."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.INGEST], min_length=1, max_length=2)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiKeyRead(ORMModel):
    """An API key as listed: never its secret."""

    id: str
    name: str
    prefix: str = Field(description="The visible start of the key, to recognise it.")
    scopes: list[Scope]
    created_at: UtcDatetime
    expires_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    last_used_at: UtcDatetime | None


class ApiKeyCreated(ApiKeyRead):
    """A key just created: ``key`` is shown this once and never again."""

    key: str = Field(description="The secret; use it as client_secret with client_id = id.")
