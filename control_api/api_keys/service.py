"""Create, list and revoke API keys; the secret is returned once and only its hash is kept."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from control_api.auth.service import hash_api_secret
from control_api.errors import NotFound
from control_api.pagination import fetch_page
from control_api.schemas import Page
from storage.models import ApiKey

__all__ = ["KEY_PREFIX", "create", "list_page", "revoke"]

KEY_PREFIX = "dl_"


def create(
    session: Session, *, org_id: str, user_id: str | None, body: ApiKeyCreate
) -> ApiKeyCreated:
    """A new key for ``org_id``: ``dl_<prefix>_<secret>``, 8 hex + 43 url-safe characters."""
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    key = ApiKey(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        prefix=prefix,
        secret_hash=hash_api_secret(secret),
        scopes=sorted({s.value for s in body.scopes}),
        created_by=user_id,
        expires_at=expires,
        created_at=datetime.now(UTC),
    )
    session.add(key)
    session.commit()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


def list_page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, include_revoked: bool
) -> Page[ApiKeyRead]:
    """A page of ``org_id``'s keys, newest first."""
    statement = select(ApiKey)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    rows, next_cursor = fetch_page(
        session,
        statement,
        sort=ApiKey.created_at,
        id_column=ApiKey.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[ApiKeyRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def revoke(session: Session, *, org_id: str, key_id: str) -> None:
    """Revoke a key of ``org_id`` (404 if there is none; revoking twice is harmless)."""
    key = session.scalars(select(ApiKey).where(ApiKey.id == key_id)).first()
    if key is None:
        raise NotFound("No such API key.")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        session.commit()
