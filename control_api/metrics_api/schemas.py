"""Responses of ``/v1/deployments/{id}/metrics``: series of points per bucket."""

from __future__ import annotations

from pydantic import BaseModel, Field

from control_api.schemas import UtcDatetime

__all__ = [
    "DriftPoint",
    "DriftSeries",
    "LatencyPoint",
    "LatencySeries",
    "MetricPoint",
    "MetricSeries",
]


class DriftPoint(BaseModel):
    """Drift of one feature by one statistic in one bucket (windows starting in it)."""

    bucket: UtcDatetime
    feature: str
    statistic: str
    windows: int
    drifted_windows: int
    value_avg: float
    value_max: float
    p_value_min: float | None = Field(description="Null when the statistic has no p-value.")


class DriftSeries(BaseModel):
    """Drift results of a deployment over ``[start, end)`` in buckets of ``step`` seconds."""

    deployment_id: str
    step: int
    points: list[DriftPoint]


class MetricPoint(BaseModel):
    """One performance metric in one bucket: mean, min, max over ``points`` values."""

    bucket: UtcDatetime
    name: str
    value_avg: float
    value_min: float
    value_max: float
    points: int


class MetricSeries(BaseModel):
    """Performance metrics of a deployment per bucket."""

    deployment_id: str
    step: int
    points: list[MetricPoint]


class LatencyPoint(BaseModel):
    """Traffic and latency in one bucket (milliseconds; error rate = errors / events)."""

    bucket: UtcDatetime
    windows: int
    events: int
    errors: int
    error_rate: float
    latency_p50_avg: float | None
    latency_p99_max: float | None


class LatencySeries(BaseModel):
    """Traffic and latency of a deployment per bucket."""

    deployment_id: str
    step: int
    points: list[LatencyPoint]
