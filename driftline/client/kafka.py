"""Kafka transport: an aiokafka producer to the events topic, key = deployment id.

One topic carries every event type, keyed by deployment, so that a deployment's labels
reach the worker holding its predictions (``DRIFTLINE_KAFKA_EVENTS_TOPIC``).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from driftline.client.transport import Delivery, Envelope, PermanentError, TransientError

__all__ = ["KafkaTransport"]


class KafkaTransport:
    """Produces envelopes to ``topic``; the producer starts on the first send.

    Args:
        bootstrap: Brokers as ``host:port[,host:port]``.
        topic: The events topic the workers consume (default ``predictions``).
        acks: ``"all"`` (the default: every in-sync replica has the envelope), ``1`` or ``0``.
        request_timeout_ms: How long the producer waits for the broker per request.
        producer_options: More keyword arguments for :class:`aiokafka.AIOKafkaProducer`
            (``compression_type``, ``security_protocol``, ``sasl_*`` ...).

    """

    keyed = True

    def __init__(
        self,
        bootstrap: str,
        *,
        topic: str = "predictions",
        acks: str | int = "all",
        request_timeout_ms: int = 30_000,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._options: dict[str, Any] = {
            "acks": acks,
            "request_timeout_ms": request_timeout_ms,
            **(producer_options or {}),
        }
        self._producer: Any = None

    async def _started(self) -> Any:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, **self._options)
            try:
                await producer.start()
            except KafkaError as error:
                await producer.stop()
                raise TransientError(
                    f"cannot reach Kafka at {self._bootstrap}: {error!r}"
                ) from error
            self._producer = producer
        return self._producer

    async def send(self, envelope: Envelope) -> Delivery:
        """Produce one envelope and wait for the broker's acknowledgement."""
        producer = await self._started()
        key = envelope.key.encode() if envelope.key is not None else None
        try:
            await producer.send_and_wait(self._topic, envelope.body, key=key)
        except (KafkaConnectionError, KafkaTimeoutError) as error:
            raise TransientError(f"produce to {self._topic} failed: {error!r}") from error
        except KafkaError as error:
            if getattr(error, "retriable", False):
                raise TransientError(f"produce to {self._topic} failed: {error!r}") from error
            raise PermanentError(f"produce to {self._topic} refused: {error!r}") from error
        return Delivery()

    async def aclose(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
