"""The model-server SDK: log predictions, labels and resource use to Driftline.

A client queues events in bounded memory and sends them in the background, in batch
envelopes (:mod:`engine.events`), over HTTP (``POST /v1/ingest``) or Kafka. Logging never
blocks and never raises: what cannot be queued or delivered is counted in
:meth:`DriftlineClient.stats` and logged on the ``driftline.client`` logger.

>>> from driftline.client import ClientConfig
>>> ClientConfig().max_queue
10000
"""

from __future__ import annotations

from driftline.client.async_client import AsyncDriftlineClient
from driftline.client.config import ClientConfig
from driftline.client.counters import ClientStats
from driftline.client.http import HttpTransport
from driftline.client.kafka import KafkaTransport
from driftline.client.sync_client import DriftlineClient
from driftline.client.transport import (
    Delivery,
    Envelope,
    PermanentError,
    TransientError,
    Transport,
    TransportError,
)

__all__ = [
    "AsyncDriftlineClient",
    "ClientConfig",
    "ClientStats",
    "Delivery",
    "DriftlineClient",
    "Envelope",
    "HttpTransport",
    "KafkaTransport",
    "PermanentError",
    "TransientError",
    "Transport",
    "TransportError",
]
