"""Responses of ``/v1/deployments/{id}/metrics``: series of points per bucket."""

from __future__ import annotations

from pydantic import BaseModel, Field

from control_api.schemas import UtcDatetime

__all__ = [
    "DriftPoint",
    "DriftSeries",
    "FeaturePoint",
    "FeatureSeries",
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


class FeaturePoint(BaseModel):
    """One feature's values in one bucket (windows starting in it).

    ``mean`` and ``std`` are those of all the bucket's values (population); the quantiles
    are count-weighted means of the windows' quantile estimates (exact for one window).
    Null where the feature has no numeric value (categorical features) or none was seen.
    """

    bucket: UtcDatetime
    feature: str
    windows: int
    count: int = Field(description="Values seen (missing ones apart).")
    null_count: int = Field(description="Missing values.")
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    p05: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None


class FeatureSeries(BaseModel):
    """Feature statistics of a deployment over ``[start, end)`` in buckets of ``step``."""

    deployment_id: str
    step: int
    points: list[FeaturePoint]


class MetricPoint(BaseModel):
    """One metric (performance, resource, custom) in a bucket: mean, min, max of ``points``."""

    bucket: UtcDatetime
    name: str
    value_avg: float
    value_min: float
    value_max: float
    points: int


class MetricSeries(BaseModel):
    """Performance, resource or custom metrics of a deployment per bucket."""

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


class FleetRow(BaseModel):
    """One deployment's latest window in the range."""

    deployment_id: str
    last_window: UtcDatetime
    features: int = Field(description="Features with a drift result in that window")
    drifted_features: int
    drifted: list[str] = Field(description="The drifted features' names")
    window_events: int = Field(description="Events counted in that window")


class Fleet(BaseModel):
    """Every deployment of the organization with results in the range, worst first."""

    deployments: list[FleetRow]


class DeadLetter(BaseModel):
    """An event the engine refused, with why."""

    received_at: UtcDatetime
    source: str
    reason: str = Field(description="A code, then a sentence naming the field at fault")
    deployment: str
    payload: str = Field(description="The raw payload as received (UTF-8, replacement chars)")


class DeadLetters(BaseModel):
    """Dead letters received in the range, newest first."""

    items: list[DeadLetter]
