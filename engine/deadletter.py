"""Dead letters: events the engine refused, with the reason and the raw payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.events import Reason


@dataclass(frozen=True)
class DeadLetter:
    """One refused event.

    Attributes:
        reason: the :class:`~engine.events.Reason` code.
        detail: a sentence for people ("features.age: expected a number, got 'old'").
        payload: the raw bytes as received (for an envelope, that event re-encoded).
        source: where it came from (``"http"``, ``"kafka:predictions/3"``, ``"replay"``).
        received_at_ms: processing time, milliseconds since the epoch.
        deployment: the deployment when it could be read, else ``""``.

    """

    reason: Reason
    detail: str
    payload: bytes
    source: str
    received_at_ms: int
    deployment: str = ""


class DeadLetterSink(Protocol):
    """Where refused events go: the dead-letter table always, a topic in production."""

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Persist ``letters``; raise if they could not be kept (the caller retries)."""


@dataclass
class MemoryDeadLetters:
    """Keeps dead letters in memory (tests, replay summaries)."""

    letters: list[DeadLetter] = field(default_factory=list)

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Append ``letters``."""
        self.letters.extend(letters)
