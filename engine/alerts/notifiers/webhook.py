"""A generic webhook signed the Standard Webhooks way (https://www.standardwebhooks.com).

Headers: ``webhook-id`` (the notification's idempotency key, the same on every retry),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: for each
active secret, ``v1,`` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), separated by
spaces, so a receiver holding either the old or the new secret verifies during rotation.
Secrets are ``whsec_`` + base64 of the key (a secret without the prefix is the key's text).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from engine.alerts.notifiers.base import Notification, post_json

__all__ = ["WebhookNotifier", "sign", "signed_message"]


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for ``body`` under every secret.

    >>> sign(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ...      1614265330, b'{"test": 2432232314}')
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = [
        "v1," + base64.b64encode(hmac.new(_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    ]
    return " ".join(parts)


def signed_message(
    secrets: Sequence[str], msg_id: str, event_type: str, data: dict[str, Any], timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The body ``{"type", "timestamp", "data"}`` and its Standard Webhooks headers.

    Without secrets the message goes unsigned (no ``webhook-signature``).
    """
    body = orjson.dumps({"type": event_type, "timestamp": timestamp, "data": data})
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secrets:
        headers["webhook-signature"] = sign(secrets, msg_id, timestamp, body)
    return body, headers


@dataclass
class WebhookNotifier:
    """POSTs ``{"type", "timestamp", "data"}`` JSON signed with every active secret."""

    url: str
    secrets: Sequence[str]
    client: httpx.Client
    clock: Callable[[], float] = field(default=time.time)

    def send(self, notification: Notification) -> int | None:
        """Deliver the signed message; see :func:`post_json` for the failure classes."""
        body, headers = signed_message(
            self.secrets,
            notification.id,
            f"alert.{notification.status}",
            notification.as_json(),
            int(self.clock()),
        )
        return post_json(self.client, self.url, body, headers)
