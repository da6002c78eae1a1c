"""What every notifier shares: the message, the failure classes and the HTTP call.

A notifier sends one :class:`Notification` (one group's alerts) and either returns the
receiver's status code or raises :class:`NotifyError` saying whether trying again may help
(``retryable``): timeouts, refused connections, 408, 429 (with its ``Retry-After``) and 5xx
are; other 4xx are permanent (the request itself is wrong: trying again cannot succeed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

__all__ = ["AlertPayload", "Notification", "Notifier", "NotifyError", "post_json"]


@dataclass(frozen=True)
class AlertPayload:
    """One alert as notified: identity, status, labels, the rendered annotations and numbers.

    ``starts_at`` / ``ends_at`` are ISO 8601 UTC event times (``ends_at`` only once
    resolved); ``value`` and ``threshold`` are the compared numbers of the last window.
    """

    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float
    threshold: float
    starts_at: str
    ends_at: str | None = None
    links: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The alert's name (the rule's)."""
        return self.labels.get("alertname", "alert")

    def as_json(self) -> dict[str, Any]:
        """The alert as JSON."""
        return {
            "fingerprint": self.fingerprint,
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "value": self.value,
            "threshold": self.threshold,
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "links": self.links,
        }


@dataclass(frozen=True)
class Notification:
    """One message for one group; ``id`` is its idempotency key (stable across retries)."""

    id: str
    channel_id: str
    group_key: str
    alerts: tuple[AlertPayload, ...]
    group_labels: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``firing`` when any alert fires, else ``resolved``."""
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    @property
    def firing(self) -> tuple[AlertPayload, ...]:
        """The firing alerts."""
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels every alert has with the same value."""
        if not self.alerts:
            return {}
        first = self.alerts[0].labels
        return {k: v for k, v in first.items() if all(a.labels.get(k) == v for a in self.alerts)}

    @property
    def title(self) -> str:
        """``[FIRING:2] drift (loans-prod)``."""
        count = len(self.firing) if self.status == "firing" else len(self.alerts)
        names = ", ".join(sorted({a.name for a in self.alerts}))
        deployment = self.common_labels.get("deployment")
        suffix = f" ({deployment})" if deployment else ""
        return f"[{self.status.upper()}:{count}] {names}{suffix}"

    def as_json(self) -> dict[str, Any]:
        """The message as JSON (the webhook's ``data``)."""
        return {
            "id": self.id,
            "groupKey": self.group_key,
            "status": self.status,
            "groupLabels": self.group_labels,
            "commonLabels": self.common_labels,
            "alerts": [a.as_json() for a in self.alerts],
        }


class NotifyError(Exception):
    """A failed delivery; ``retryable`` says whether a later attempt may succeed."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class Notifier(Protocol):
    """Delivers one notification to one channel."""

    def send(self, notification: Notification) -> int | None:
        """Deliver ``notification``; the receiver's status code, or :class:`NotifyError`."""


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def post_json(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str] | None = None
) -> int:
    """POST ``body`` as JSON; the status code on 2xx, :class:`NotifyError` otherwise."""
    sent = {"Content-Type": "application/json", "User-Agent": "driftline-alerts"}
    try:
        response = client.post(url, content=body, headers=sent | (headers or {}))
    except httpx.TimeoutException as error:
        raise NotifyError(f"timeout: {error}", retryable=True) from error
    except httpx.TransportError as error:
        raise NotifyError(f"connection failed: {error}", retryable=True) from error
    code = response.status_code
    if 200 <= code < 300:
        return code
    detail = f"HTTP {code}: {response.text[:200]}"
    if code == 429:
        wait = _retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        raise NotifyError(detail, retryable=True, status_code=code, retry_after_s=wait)
    retryable = code >= 500 or code == 408
    raise NotifyError(detail, retryable=retryable, status_code=code)
