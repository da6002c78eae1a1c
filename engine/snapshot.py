"""Snapshots of a pipeline partition's state: what makes a worker restartable.

A snapshot holds, for the deployments a partition carries, every open window (sketches,
counters, latency histogram, performance counts, request ids waiting for labels), the
windows waiting for late labels, the results closed but not yet written, and the
partition's watermark. The Kafka worker stores one per partition, together with the offset
it reflects, in a table backed by a changelog topic; a restarted worker restores it and
skips the events at or below that offset, so every event counts exactly once.

Not carried: the dedup memory of event ids (redelivery after a restart is exact through
the offset, so it is not needed there; a producer's duplicates across a restart can pass).
Encoding: JSON (orjson), zlib-compressed.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from typing import Any

import orjson

from detectors import ConfusionCounts, LatencyHistogram, RegressionAccumulator, WindowSketch
from engine.monitor import Monitor
from engine.results import DriftRow, FeatureStats, WindowResult
from engine.state import WindowState

SNAPSHOT_VERSION = 1


class SnapshotError(ValueError):
    """A snapshot that cannot be restored (another version, or another monitor's profile)."""


def state_to_dict(state: WindowState) -> dict[str, Any]:
    """Plain data of one open window."""
    performance: dict[str, Any] | None = None
    if isinstance(state.performance, ConfusionCounts):
        performance = {"kind": "classification", "data": state.performance.to_dict()}
    elif isinstance(state.performance, RegressionAccumulator):
        performance = {"kind": "regression", "data": state.performance.to_dict()}
    return {
        "start_ms": state.start_ms,
        "end_ms": state.end_ms,
        "sketch": state.sketch.to_dict(),
        "latency": state.latency.to_dict(),
        "events": state.events,
        "errors": state.errors,
        "late": state.late,
        "prediction": [state.prediction_sum, state.prediction_squares, state.prediction_n],
        "classes": dict(state.classes),
        "metric_sum": state.metric_sum,
        "metric_n": state.metric_n,
        "performance": performance,
        "request_ids": [list(r) for r in state.request_ids],
        "resource_sum": state.resource_sum,
        "resource_n": state.resource_n,
    }


def state_from_dict(monitor: Monitor, data: dict[str, Any]) -> WindowState:
    """Rebuild an open window of ``monitor`` from :func:`state_to_dict` data."""
    performance: ConfusionCounts | RegressionAccumulator | None = None
    if data["performance"] is not None:
        kind, body = data["performance"]["kind"], data["performance"]["data"]
        performance = (
            ConfusionCounts.from_dict(body)
            if kind == "classification"
            else RegressionAccumulator.from_dict(body)
        )
    total, squares, n = data["prediction"]
    return WindowState(
        start_ms=int(data["start_ms"]),
        end_ms=int(data["end_ms"]),
        sketch=WindowSketch.from_dict(monitor.profile, data["sketch"]),
        latency=LatencyHistogram.from_dict(data["latency"]),
        events=int(data["events"]),
        errors=int(data["errors"]),
        late=int(data["late"]),
        prediction_sum=float(total),
        prediction_squares=float(squares),
        prediction_n=int(n),
        classes=Counter(data["classes"]),
        metric_sum=dict(data["metric_sum"]),
        metric_n=dict(data["metric_n"]),
        performance=performance,
        request_ids=[(str(r), float(v), k) for r, v, k in data["request_ids"]],
        resource_sum=dict(data["resource_sum"]),
        resource_n=dict(data["resource_n"]),
    )


def result_to_dict(result: WindowResult) -> dict[str, Any]:
    """Plain data of a closed window's results."""
    return dataclasses.asdict(result)


def result_from_dict(data: dict[str, Any]) -> WindowResult:
    """Rebuild results saved by :func:`result_to_dict`."""
    fields = dict(data)
    fields["drift"] = tuple(DriftRow(**row) for row in data["drift"])
    fields["features"] = tuple(
        FeatureStats(**(row | {"quantiles": tuple(row["quantiles"])})) for row in data["features"]
    )
    fields["latency_ms"] = tuple(data["latency_ms"])
    fields["performance"] = tuple(tuple(row) for row in data["performance"])
    return WindowResult(**fields)


def encode(data: dict[str, Any]) -> bytes:
    """Snapshot bytes: versioned JSON, compressed."""
    payload = {"version": SNAPSHOT_VERSION} | data
    return zlib.compress(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), 1)


def decode(blob: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode`; refuses another version."""
    data: dict[str, Any] = orjson.loads(zlib.decompress(blob))
    if data.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}")
    return data
