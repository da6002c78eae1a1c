"""Dead letters of the Kafka worker: collected during a batch, then sent on.

The pipeline writes dead letters synchronously from inside :meth:`Pipeline.ingest`; the
worker gives it a :class:`CollectingDeadLetters` and, once the batch is ingested, sends
what it collected to the dead-letter topic (awaited, before the batch's offsets can be
committed) and to the metrics store's dead-letter table.

On the topic a dead letter is the raw payload as the value, the deployment (when it could
be read) as the key, and the reason in headers (:func:`dead_letter_headers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.deadletter import DeadLetter

__all__ = ["CollectingDeadLetters", "dead_letter_headers"]


@dataclass
class CollectingDeadLetters:
    """A dead-letter sink that keeps letters until :meth:`drain` hands them over."""

    letters: list[DeadLetter] = field(default_factory=list)

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Keep ``letters``."""
        self.letters.extend(letters)

    def drain(self) -> list[DeadLetter]:
        """The letters kept so far; the sink is empty afterwards."""
        letters, self.letters = self.letters, []
        return letters


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Kafka headers of a dead letter: ``reason`` (a code), ``detail``, ``source``, time."""
    return [
        ("reason", str(letter.reason).encode()),
        ("detail", letter.detail.encode()),
        ("source", letter.source.encode()),
        ("received_at_ms", str(letter.received_at_ms).encode()),
    ]
