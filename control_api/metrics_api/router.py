"""Routes of ``/v1/deployments/{deployment_id}/metrics``: reads over the metrics store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.metrics_api import service
from control_api.metrics_api.schemas import (
    DeadLetters,
    DriftSeries,
    Fleet,
    LatencySeries,
    MetricSeries,
)
from control_api.rbac import Permission
from storage.clickhouse.client import MetricsClient, connect

__all__ = ["router"]

router = APIRouter(prefix="/v1/deployments/{deployment_id}/metrics", tags=["metrics"])
Reader = Annotated[Principal, Depends(require(Permission.METRICS_READ))]
Start = Annotated[datetime, Query(description="Range start (inclusive), ISO 8601; naive = UTC")]
End = Annotated[datetime, Query(description="Range end (exclusive), ISO 8601; naive = UTC")]
Step = Annotated[int, Query(ge=1, le=366 * 86_400, description="Bucket width in seconds")]
Names = Annotated[list[str], Query(max_length=100)]


def get_metrics_client(request: Request, ctx: ContextDep) -> MetricsClient:
    """The application's metrics-store client, opened at the first read and kept."""
    client: MetricsClient | None = getattr(request.app.state, "metrics_client", None)
    if client is None:
        client = connect(
            ctx.settings.clickhouse_url, default_database=ctx.settings.clickhouse_database
        )
        request.app.state.metrics_client = client
        ctx.closers.append(client.close)
    return client


MetricsDep = Annotated[MetricsClient, Depends(get_metrics_client)]
_ERRORS = responses(401, 403, 404, 422, 503, 429)


@router.get("/drift", responses=_ERRORS)
def drift_series(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    start: Start,
    end: End,
    step: Step = 3600,
    feature: Names = [],  # noqa: B006 - FastAPI copies query defaults
    statistic: Annotated[str, Query(max_length=64)] = "",
) -> DriftSeries:
    """Drift per feature and statistic over ``[start, end)`` in buckets of ``step``."""
    return service.drift(
        session,
        client,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        features=feature,
        statistic=statistic,
    )


@router.get("/performance", responses=_ERRORS)
def performance_series(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    start: Start,
    end: End,
    step: Step = 3600,
    metric: Names = [],  # noqa: B006 - FastAPI copies query defaults
) -> MetricSeries:
    """Performance metrics over ``[start, end)`` in buckets of ``step``."""
    return service.performance(
        session,
        client,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        names=metric,
    )


@router.get("/latency", responses=_ERRORS)
def latency_series(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    start: Start,
    end: End,
    step: Step = 3600,
) -> LatencySeries:
    """Traffic, error rate and latency over ``[start, end)`` in buckets of ``step``."""
    return service.latency(
        session,
        client,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
    )


fleet_router = APIRouter(tags=["metrics"])
Limit = Annotated[int, Query(ge=1, le=10_000)]


@fleet_router.get("/v1/fleet", responses=_ERRORS)
def fleet_overview(
    principal: Reader, client: MetricsDep, start: Start, end: End, limit: Limit = 1000
) -> Fleet:
    """Every deployment's latest window in ``[start, end)``, the most drifted first."""
    return service.fleet(client, org_id=principal.org_id, start=start, end=end, limit=limit)


@fleet_router.get("/v1/dead-letters", responses=_ERRORS)
def dead_letters(
    principal: Reader, client: MetricsDep, start: Start, end: End, limit: Limit = 100
) -> DeadLetters:
    """Events the engine refused in ``[start, end)``, newest first, each with its reason."""
    return service.dead_letters(client, org_id=principal.org_id, start=start, end=end, limit=limit)
