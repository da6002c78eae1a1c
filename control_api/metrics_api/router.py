"""Routes of ``/v1/deployments/{deployment_id}/metrics``: reads over the metrics store.

Series of drift, feature statistics, performance, latency, resources and custom metrics,
and the drift plot (a PNG).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.metrics_api import service
from control_api.metrics_api.schemas import (
    DeadLetters,
    DriftSeries,
    FeatureSeries,
    Fleet,
    LatencySeries,
    MetricSeries,
)
from control_api.rbac import Permission
from control_api.references.router import StoreDep
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


@router.get("/features", responses=_ERRORS)
def feature_series(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    start: Start,
    end: End,
    step: Step = 3600,
    feature: Names = [],  # noqa: B006 - FastAPI copies query defaults
) -> FeatureSeries:
    """Count, missing, mean, std, min, max and quantiles per feature in buckets of ``step``."""
    return service.features(
        session,
        client,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        names=feature,
    )


@router.get("/resources", responses=_ERRORS)
def resource_series(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    start: Start,
    end: End,
    step: Step = 3600,
    resource: Names = [],  # noqa: B006 - FastAPI copies query defaults
) -> MetricSeries:
    """Resource usage (cpu, memory, gpu, replicas, ...) over ``[start, end)`` per bucket."""
    return service.resources(
        session,
        client,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        names=resource,
    )


@router.get("/custom", responses=_ERRORS)
def custom_metric_series(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    start: Start,
    end: End,
    step: Step = 3600,
    metric: Names = [],  # noqa: B006 - FastAPI copies query defaults
) -> MetricSeries:
    """The monitor's custom metrics over ``[start, end)`` per bucket."""
    return service.custom_metrics(
        session,
        client,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        names=metric,
    )


_PNG: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The plot; X-Drift-* headers repeat the stored result in the title.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get(
    "/drift/plot",
    response_class=Response,
    responses=_PNG | responses(401, 403, 404, 409, 422, 503, 429),
)
def drift_plot(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    client: MetricsDep,
    store: StoreDep,
    feature: Annotated[str, Query(min_length=1, max_length=200)],
    window: Annotated[
        datetime, Query(description="The window's start: ISO 8601 or Unix milliseconds")
    ],
    statistic: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """PNG of the reference vs the window's histogram, the stored statistic in the title."""
    drawn = service.drift_plot(
        session,
        client,
        store,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        feature=feature,
        window=window,
        statistic=statistic,
    )
    verdict = drawn.verdict
    headers = {
        "X-Drift-Statistic": verdict.statistic,
        "X-Drift-Value": repr(verdict.value),
        "X-Drift-Drifted": "true" if verdict.drifted else "false",
        "X-Drift-Title": drawn.title,
    }
    if verdict.p_value is not None:
        headers["X-Drift-P-Value"] = repr(verdict.p_value)
    return Response(drawn.png, media_type="image/png", headers=headers)


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
