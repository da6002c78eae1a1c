"""What a client did with the events it was given: thread-safe counters and their snapshot."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

__all__ = ["ClientStats", "Counters"]

logger = logging.getLogger("driftline.client")


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of a client's counters (events unless the name says batches).

    Attributes:
        enqueued: Events accepted into the queue.
        sent: Events delivered (HTTP: answered 202; Kafka: acknowledged by the broker).
        dropped: Events dropped because the queue was full, the client closed, or
            ``close()`` ran out of time with events still queued.
        invalid: Events dropped at once because they could not be encoded (not JSON
            serialisable, bigger than ``max_event_bytes``, no deployment).
        failed_batches: Envelopes given up: a permanent failure, or transient failures past
            ``max_retries``.
        failed_events: Events in those envelopes.
        retries: Retries after transient failures.
        rejected: Events delivered but refused by the engine (HTTP receipts only; each one
            is in the dead-letter table with its reason).
        queued: Events waiting in the queue now.

    """

    enqueued: int
    sent: int
    dropped: int
    invalid: int
    failed_batches: int
    failed_events: int
    retries: int
    rejected: int
    queued: int


class Counters:
    """Mutable counters shared by the caller's threads and the sender."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(
            (
                "enqueued",
                "sent",
                "dropped",
                "invalid",
                "failed_batches",
                "failed_events",
                "retries",
                "rejected",
            ),
            0,
        )

    def add(self, name: str, amount: int = 1) -> int:
        """Add ``amount`` to counter ``name``; answer its new value."""
        with self._lock:
            value = self._values[name] + amount
            self._values[name] = value
        return value

    def drop(self, name: str, amount: int, why: str) -> None:
        """Count dropped (or invalid) events; log at 1, 10, 100 ... to keep logs quiet."""
        if amount <= 0:
            return
        total = self.add(name, amount)
        if _crossed_power_of_ten(total - amount, total):
            logger.warning("driftline client: %s %d event(s) so far (%s)", name, total, why)

    def snapshot(self, queued: int) -> ClientStats:
        """The counters now, with ``queued`` events waiting."""
        with self._lock:
            return ClientStats(queued=queued, **self._values)


def _crossed_power_of_ten(before: int, after: int) -> bool:
    """Whether some power of ten lies in ``(before, after]``.

    >>> _crossed_power_of_ten(0, 1), _crossed_power_of_ten(1, 9), _crossed_power_of_ten(95, 120)
    (True, False, True)
    """
    power = 1
    while power <= after:
        if power > before:
            return True
        power *= 10
    return False
