"""The seam between the client and the wire: one envelope in, a delivery or an error out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Delivery",
    "Envelope",
    "PermanentError",
    "TransientError",
    "Transport",
    "TransportError",
]


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message on the wire: its key (the deployment, for Kafka), body and event count."""

    key: str | None
    body: bytes
    count: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the receiver said; ``rejected`` is known over HTTP only (its receipt)."""

    accepted: int | None = None
    rejected: int = 0
    first_rejection: str = ""


class TransportError(Exception):
    """Sending an envelope failed."""


class TransientError(TransportError):
    """A failure worth retrying (network, timeout, 429, 5xx, an expired token).

    ``retry_after`` is the receiver's hint, in seconds, when it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(TransportError):
    """A failure that retrying will not fix (bad credentials, a refused request)."""


class Transport(Protocol):
    """Sends envelopes; implemented over HTTP and over Kafka.

    ``keyed`` says whether envelopes must hold one deployment each (Kafka keys). Both
    methods run on the client's event loop; ``send`` raises :class:`TransportError`.
    """

    @property
    def keyed(self) -> bool:
        """Whether each envelope must carry one deployment (its key)."""
        ...

    async def send(self, envelope: Envelope) -> Delivery:
        """Deliver one envelope."""
        ...

    async def aclose(self) -> None:
        """Release connections; idempotent."""
        ...
