"""Events of schema v1 (:mod:`engine.events`) built from a model server's values, encoded once.

An event is serialised when it is logged, so that the caller may reuse its dictionaries
at once and a value that cannot be sent is refused at the call, not later in a batch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "EncodedEvent",
    "InvalidEventError",
    "Timestamp",
    "encode_event",
    "label_event",
    "prediction_event",
    "resource_event",
]

Timestamp = datetime | int | float | None
"""Event time: an aware (or UTC naive) datetime, milliseconds since the epoch, or now."""

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class InvalidEventError(ValueError):
    """An event that cannot be sent (not serialisable, too big, no deployment)."""


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """One queued event: its type, its deployment (the Kafka key) and its JSON bytes."""

    kind: str
    deployment: str
    payload: bytes


def _ts(value: Timestamp) -> int | str:
    if value is None:
        return time.time_ns() // 1_000_000
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return int(value)


def _deployment(value: str | None) -> str:
    if not value:
        raise InvalidEventError("no deployment: pass deployment= here or to the client")
    return value


def _optional(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def prediction_event(
    *,
    deployment: str | None,
    features: Mapping[str, Any],
    prediction: Any,
    event_id: str | None = None,
    ts: Timestamp = None,
    model: str | None = None,
    model_version: str | None = None,
    label: Any = None,
    latency_ms: float | None = None,
    request_id: str | None = None,
    error: bool | None = None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A prediction event; ``event_id`` defaults to a random UUID, ``ts`` to now.

    >>> e = prediction_event(deployment="d", features={"x": 1.0}, prediction=0.5, ts=7,
    ...                      event_id="e1")
    >>> e == {"type": "prediction", "event_id": "e1", "ts": 7, "deployment": "d",
    ...       "features": {"x": 1.0}, "prediction": 0.5}
    True
    """
    return {
        "type": "prediction",
        "event_id": event_id or uuid.uuid4().hex,
        "ts": _ts(ts),
        "deployment": _deployment(deployment),
        "features": dict(features),
        "prediction": prediction,
        **_optional(
            model=model,
            model_version=model_version,
            label=label,
            latency_ms=latency_ms,
            request_id=request_id,
            error=error,
            metrics=dict(metrics) if metrics is not None else None,
        ),
    }


def label_event(
    *, deployment: str | None, request_id: str, label: Any, ts: Timestamp = None
) -> dict[str, Any]:
    """Ground truth arriving after its prediction, joined to it by ``request_id``."""
    if not request_id:
        raise InvalidEventError("a label needs the request_id of its prediction")
    return {
        "type": "label",
        "deployment": _deployment(deployment),
        "request_id": request_id,
        "label": label,
        "ts": _ts(ts),
    }


def resource_event(
    *,
    deployment: str | None,
    cpu: float,
    memory_mb: float,
    gpu: float | None = None,
    replicas: int | None = None,
    ts: Timestamp = None,
) -> dict[str, Any]:
    """Resource use of a deployment: CPU (fraction of a core), memory in MB, GPU, replicas."""
    return {
        "type": "resource",
        "deployment": _deployment(deployment),
        "ts": _ts(ts),
        "cpu": cpu,
        "memory_mb": memory_mb,
        **_optional(gpu=gpu, replicas=replicas),
    }


def encode_event(event: dict[str, Any], *, max_bytes: int) -> EncodedEvent:
    """Serialise ``event`` (numpy values allowed); refuse it when over ``max_bytes``."""
    try:
        payload = orjson.dumps(event, option=_OPTIONS)
    except TypeError as error:  # orjson.JSONEncodeError is a TypeError
        raise InvalidEventError(f"not JSON serialisable: {error}") from error
    if len(payload) > max_bytes:
        raise InvalidEventError(f"{len(payload)} bytes, limit {max_bytes}")
    return EncodedEvent(kind=event["type"], deployment=event["deployment"], payload=payload)
