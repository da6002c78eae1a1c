"""Requests and responses of ``/v1/monitors``.

``MonitorSpec`` is the engine's :class:`engine.monitor.Monitor` without ``deployment`` and
``reference`` (the monitor's deployment and reference dataset fill those), using the
engine's own window, drift and performance models, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from control_api.schemas import ORMModel, RequestModel, UtcDatetime
from engine.monitor import DriftPolicy, PerformanceSpec, WindowSpec

__all__ = ["EngineMonitor", "MonitorCreate", "MonitorRead", "MonitorSpec", "MonitorUpdate"]


class MonitorSpec(RequestModel):
    """How to watch: features, window, lateness, statistics and thresholds, SLOs."""

    model_config = ConfigDict(extra="forbid")

    features: dict[Literal["numeric", "categorical"], list[str]] = Field(default_factory=dict)
    window: WindowSpec = WindowSpec(kind="tumbling", size="1h")
    allowed_lateness: str = Field(default="0s", max_length=32)
    min_samples: int = Field(default=100, ge=1)
    drift: DriftPolicy = DriftPolicy()
    performance: PerformanceSpec | None = None
    latency_slo_ms: float | None = Field(default=None, gt=0)
    custom_metrics: list[str] = Field(default_factory=list, max_length=100)


class MonitorCreate(RequestModel):
    """A new monitor of a deployment against a reference dataset's profile."""

    name: str = Field(min_length=1, max_length=200)
    deployment_id: str = Field(min_length=1, max_length=36)
    reference_id: str = Field(min_length=1, max_length=36)
    spec: MonitorSpec = Field(default_factory=MonitorSpec)


class MonitorUpdate(RequestModel):
    """A monitor's new reference or spec; send its ``version`` as ``If-Match``."""

    reference_id: str | None = Field(default=None, min_length=1, max_length=36)
    spec: MonitorSpec | None = None


class MonitorRead(ORMModel):
    """A stored monitor; ``version`` grows at each update (also its ETag)."""

    id: str
    name: str
    deployment_id: str
    reference_id: str
    spec: MonitorSpec
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class EngineMonitor(BaseModel):
    """The monitor exactly as :class:`engine.monitor.Monitor` reads it (profile inline)."""

    deployment: str
    reference: dict[str, Any]
    features: dict[str, list[str]]
    window: dict[str, Any]
    allowed_lateness: str
    min_samples: int
    drift: dict[str, Any]
    performance: dict[str, Any] | None
    latency_slo_ms: float | None
    custom_metrics: list[str]
