"""How a client batches, bounds its memory and retries."""

from __future__ import annotations

from dataclasses import dataclass

from engine.events import MAX_EVENT_BYTES

__all__ = ["ClientConfig"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Batching, memory and retry settings of a client.

    Attributes:
        max_queue: Events held in memory at most; beyond it a new event is dropped and
            counted (the newest is dropped: what is queued keeps its order).
        batch_size: Events taken from the queue per batch; a full batch wakes the sender
            before ``flush_interval_seconds`` has passed.
        flush_interval_seconds: Longest time, in seconds, an event waits in the queue.
        columnar_threshold: Events of one type in one envelope from which the columnar
            envelope is sent instead of the row envelope (smaller: field names once).
        max_envelope_bytes: Largest envelope body, in bytes; bigger batches are split. Keep
            it under the API's ``DRIFTLINE_MAX_REQUEST_BYTES`` and Kafka's message size.
        max_event_bytes: Largest single event, in bytes (the engine refuses bigger ones);
            a bigger event is dropped at once and counted as invalid.
        max_retries: Retries of an envelope after a transient failure before it is given up
            (counted as a failed batch).
        backoff_seconds: Delay before the first retry; doubled at each further retry, with
            jitter (a random 50-100 % of it), up to ``max_backoff_seconds``.
        max_backoff_seconds: Longest delay between two retries.
        close_timeout_seconds: Longest time ``close()`` spends flushing; what is still
            queued then is dropped and counted.

    """

    max_queue: int = 10_000
    batch_size: int = 500
    flush_interval_seconds: float = 1.0
    columnar_threshold: int = 200
    max_envelope_bytes: int = 512 * 1024
    max_event_bytes: int = MAX_EVENT_BYTES
    max_retries: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0
    close_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        positive = {
            "max_queue": self.max_queue,
            "batch_size": self.batch_size,
            "flush_interval_seconds": self.flush_interval_seconds,
            "columnar_threshold": self.columnar_threshold,
            "max_event_bytes": self.max_event_bytes,
            "close_timeout_seconds": self.close_timeout_seconds,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.max_envelope_bytes < self.max_event_bytes + 64:
            raise ValueError("max_envelope_bytes must hold at least one event of max_event_bytes")
        if self.max_retries < 0 or self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("max_retries and the backoff delays must not be negative")
