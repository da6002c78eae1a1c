"""What the sync and async clients share: the ``log_*`` methods and the counters.

The ``log_*`` methods build and encode one event and append it to the bounded queue. They
never block and never raise: an event that cannot be encoded or queued is counted
(``invalid`` or ``dropped``) and logged, and the method answers ``False``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Self

from driftline.client.config import ClientConfig
from driftline.client.counters import ClientStats, Counters
from driftline.client.events import (
    Timestamp,
    encode_event,
    label_event,
    prediction_event,
    resource_event,
)
from driftline.client.http import HttpTransport
from driftline.client.kafka import KafkaTransport
from driftline.client.sender import EventQueue, Sender
from driftline.client.transport import Transport

__all__ = ["ClientBase"]

logger = logging.getLogger("driftline.client")


class ClientBase:
    """The logging surface of a client; subclasses run the :class:`Sender` somewhere."""

    def __init__(
        self, transport: Transport, *, deployment: str | None, config: ClientConfig | None
    ) -> None:
        self.config = config or ClientConfig()
        self.deployment = deployment
        self._counters = Counters()
        self._queue = EventQueue(self.config.max_queue)
        self._sender = Sender(transport, self._queue, self._counters, self.config)
        self._closed = False

    @classmethod
    def http(
        cls,
        base_url: str,
        *,
        key_id: str,
        key_secret: str,
        deployment: str | None = None,
        config: ClientConfig | None = None,
        **options: Any,
    ) -> Self:
        """A client sending to a Driftline API (``options`` go to :class:`HttpTransport`)."""
        transport = HttpTransport(base_url, key_id=key_id, key_secret=key_secret, **options)
        return cls(transport, deployment=deployment, config=config)

    @classmethod
    def kafka(
        cls,
        bootstrap: str,
        *,
        topic: str = "predictions",
        deployment: str | None = None,
        config: ClientConfig | None = None,
        **options: Any,
    ) -> Self:
        """A client producing to Kafka (``options`` go to :class:`KafkaTransport`)."""
        transport = KafkaTransport(bootstrap, topic=topic, **options)
        return cls(transport, deployment=deployment, config=config)

    def _wake(self) -> None:
        """Tell the sender a batch is full (from any thread)."""
        raise NotImplementedError

    def _submit(self, build: Callable[[], dict[str, Any]]) -> bool:
        try:
            if self._closed:
                self._counters.drop("dropped", 1, "the client is closed")
                return False
            item = encode_event(build(), max_bytes=self.config.max_event_bytes)
        except Exception as error:  # never raise into the model server's request path
            self._counters.drop("invalid", 1, str(error))
            return False
        size = self._queue.put(item)
        if size is None:
            self._counters.drop("dropped", 1, f"the queue is full ({self.config.max_queue})")
            return False
        self._counters.add("enqueued")
        if size == self.config.batch_size:
            try:
                self._wake()
            except Exception:  # the loop may be shutting down; the timer still drains
                logger.debug("driftline client: could not wake the sender", exc_info=True)
        return True

    def log_prediction(
        self,
        features: Mapping[str, Any],
        prediction: Any,
        *,
        deployment: str | None = None,
        event_id: str | None = None,
        ts: Timestamp = None,
        model: str | None = None,
        model_version: str | None = None,
        label: Any = None,
        latency_ms: float | None = None,
        request_id: str | None = None,
        error: bool | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> bool:
        """Queue a prediction; answer whether it was queued.

        ``features`` maps feature names to numbers, strings or None; ``prediction`` is a
        number, a class, or a mapping of class to probability. ``event_id`` (default: a
        random UUID) lets the engine drop duplicates; ``request_id`` joins a later label.
        ``ts`` is event time (default: now); ``deployment`` defaults to the client's.
        """
        return self._submit(
            lambda: prediction_event(
                deployment=deployment or self.deployment,
                features=features,
                prediction=prediction,
                event_id=event_id,
                ts=ts,
                model=model,
                model_version=model_version,
                label=label,
                latency_ms=latency_ms,
                request_id=request_id,
                error=error,
                metrics=metrics,
            )
        )

    def log_label(
        self,
        request_id: str,
        label: Any,
        *,
        deployment: str | None = None,
        ts: Timestamp = None,
    ) -> bool:
        """Queue the ground truth of the prediction logged with ``request_id``."""
        return self._submit(
            lambda: label_event(
                deployment=deployment or self.deployment, request_id=request_id, label=label, ts=ts
            )
        )

    def log_resources(
        self,
        *,
        cpu: float,
        memory_mb: float,
        gpu: float | None = None,
        replicas: int | None = None,
        deployment: str | None = None,
        ts: Timestamp = None,
    ) -> bool:
        """Queue resource use: ``cpu`` in cores used, ``memory_mb``, ``gpu`` utilisation."""
        return self._submit(
            lambda: resource_event(
                deployment=deployment or self.deployment,
                cpu=cpu,
                memory_mb=memory_mb,
                gpu=gpu,
                replicas=replicas,
                ts=ts,
            )
        )

    def stats(self) -> ClientStats:
        """The counters now: sent, dropped, failed batches, retries ... (see ClientStats)."""
        return self._counters.snapshot(queued=len(self._queue))

    @property
    def closed(self) -> bool:
        """Whether ``close`` has been called; a closed client drops (and counts) events."""
        return self._closed
