"""Requests and responses of ``/v1/deployment-webhooks``."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, HttpUrl

from control_api.schemas import ORMModel, RequestModel, UtcDatetime

__all__ = [
    "ACTIONS",
    "Action",
    "DeliveryRead",
    "WebhookCreate",
    "WebhookRead",
    "WebhookUpdate",
]

Action = Literal[
    "created", "promoted", "traffic_set", "rolled_back", "failed", "superseded", "restored"
]
ACTIONS: tuple[str, ...] = get_args(Action)
"""Every transition of :mod:`control_api.deployments.service`; the event type is
``deployment.<action>``."""


def _standard_secret(secret: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 to 64 random bytes."""
    if not secret.startswith("whsec_"):
        raise ValueError("a signing secret starts with 'whsec_' (then base64 of 24-64 bytes)")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("a signing secret is 'whsec_' + base64 of 24-64 bytes") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"a signing secret's key has 24 to 64 bytes, not {len(key)}")
    return secret


Secret = Annotated[str, Field(max_length=100), AfterValidator(_standard_secret)]
SigningSecrets = Annotated[list[Secret], Field(min_length=1, max_length=2)]


class WebhookCreate(RequestModel):
    """A subscription; ``signing_secrets`` are stored but never returned.

    Every message is signed with each secret (``webhook-signature`` holds one ``v1,``
    signature per secret): give the new secret first and the old one second while the
    receiver moves over, then the new one alone.
    """

    name: str = Field(min_length=1, max_length=200)
    url: HttpUrl = Field(description="Where transitions are POSTed.")
    deployment_id: str | None = Field(
        default=None, max_length=36, description="Only this deployment's transitions."
    )
    events: list[Action] = Field(
        default_factory=list, max_length=len(ACTIONS), description="Actions sent; empty: all."
    )
    signing_secrets: SigningSecrets
    enabled: bool = True


class WebhookUpdate(RequestModel):
    """Fields to change; ``signing_secrets`` given replace the stored ones (rotation)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: HttpUrl | None = None
    events: list[Action] | None = Field(default=None, max_length=len(ACTIONS))
    signing_secrets: SigningSecrets | None = None
    enabled: bool | None = None


class WebhookRead(ORMModel):
    """A subscription without its secrets; ``signing_secrets`` counts them (1, or 2 rotating)."""

    id: str
    name: str
    url: str
    deployment_id: str | None
    events: list[str]
    signing_secrets: int
    enabled: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class DeliveryRead(ORMModel):
    """One delivery attempt of one message (``message_id``: its ``webhook-id``).

    ``outcome`` is ``delivered``, ``retry`` (another attempt is scheduled) or ``dead``.
    """

    id: str
    message_id: str
    event_type: str
    deployment_id: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str
    at: UtcDatetime
