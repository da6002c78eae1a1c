"""Series over the metrics store for one deployment of one organization.

The deployment is looked up in the caller's organization first (404 otherwise); the
reads go through :mod:`storage.clickhouse.reader`, where the organization and every other
value is a bound query parameter. ``step`` is in seconds; see the reader for bucketing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from control_api.deployments import repository as deployments
from control_api.errors import ApiError, InvalidInput, NotFound
from control_api.metrics_api.schemas import (
    DeadLetter,
    DeadLetters,
    DriftPoint,
    DriftSeries,
    Fleet,
    FleetRow,
    LatencyPoint,
    LatencySeries,
    MetricPoint,
    MetricSeries,
)
from storage.clickhouse import reader
from storage.clickhouse.client import MetricsClient
from storage.errors import StorageInputError, StorageQueryError, StorageUnavailable

__all__ = ["MetricsUnavailable", "drift", "latency", "performance"]

T = TypeVar("T")


class MetricsUnavailable(ApiError):  # noqa: N818 - HTTP names
    """The metrics store did not answer (503)."""

    status = 503
    kind = "/problems/metrics-unavailable"


def _read(call: Callable[[], Any]) -> list[dict[str, Any]]:
    try:
        table = call()
    except StorageInputError as error:
        raise InvalidInput(str(error)) from error
    except StorageUnavailable as error:
        raise MetricsUnavailable("The metrics store is not answering; retry later.") from error
    except StorageQueryError as error:
        if "UNKNOWN_TABLE" not in str(error):
            raise  # a query of ours that is wrong: a 500, as a bug should be
        raise MetricsUnavailable(
            "The metrics store has no tables yet: run `driftline migrate`."
        ) from error
    rows: list[dict[str, Any]] = table.to_pylist()
    return [{k: _clean(v) for k, v in row.items()} for row in rows]


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _check(session: Session, *, org_id: str, deployment_id: str) -> None:
    if deployments.by_id(session, org_id=org_id, deployment_id=deployment_id) is None:
        raise NotFound("No such deployment.")


def drift(
    session: Session,
    client: MetricsClient,
    *,
    org_id: str,
    deployment_id: str,
    start: datetime,
    end: datetime,
    step: int,
    features: Sequence[str],
    statistic: str,
) -> DriftSeries:
    """Drift per bucket, feature and statistic."""
    _check(session, org_id=org_id, deployment_id=deployment_id)
    rows = _read(
        lambda: reader.drift_series(
            client,
            organization=org_id,
            deployment=deployment_id,
            time_range=reader.TimeRange(start, end, step),
            features=features,
            statistic=statistic,
        )
    )
    points = [DriftPoint.model_validate(r) for r in rows]
    return DriftSeries(deployment_id=deployment_id, step=step, points=points)


def performance(
    session: Session,
    client: MetricsClient,
    *,
    org_id: str,
    deployment_id: str,
    start: datetime,
    end: datetime,
    step: int,
    names: Sequence[str],
) -> MetricSeries:
    """Performance metrics (accuracy, f1, mae, ...) per bucket."""
    _check(session, org_id=org_id, deployment_id=deployment_id)
    rows = _read(
        lambda: reader.metric_series(
            client,
            kind="performance",
            organization=org_id,
            deployment=deployment_id,
            time_range=reader.TimeRange(start, end, step),
            names=names,
        )
    )
    points = [MetricPoint.model_validate(r) for r in rows]
    return MetricSeries(deployment_id=deployment_id, step=step, points=points)


def latency(
    session: Session,
    client: MetricsClient,
    *,
    org_id: str,
    deployment_id: str,
    start: datetime,
    end: datetime,
    step: int,
) -> LatencySeries:
    """Traffic, errors and latency per bucket."""
    _check(session, org_id=org_id, deployment_id=deployment_id)
    rows = _read(
        lambda: reader.window_series(
            client,
            organization=org_id,
            deployment=deployment_id,
            time_range=reader.TimeRange(start, end, step),
        )
    )
    points = [LatencyPoint.model_validate(r) for r in rows]
    return LatencySeries(deployment_id=deployment_id, step=step, points=points)


def fleet(
    client: MetricsClient, *, org_id: str, start: datetime, end: datetime, limit: int
) -> Fleet:
    """Every deployment's latest window in the range, worst drift first."""
    rows = _read(
        lambda: reader.fleet(client, organization=org_id, start=start, end=end, limit=limit)
    )
    return Fleet(
        deployments=[
            FleetRow.model_validate({**r, "deployment_id": r.pop("deployment")}) for r in rows
        ]
    )


def dead_letters(
    client: MetricsClient, *, org_id: str, start: datetime, end: datetime, limit: int
) -> DeadLetters:
    """Refused events received in the range, newest first, with their reasons."""
    rows = _read(
        lambda: reader.dead_letters(client, organization=org_id, start=start, end=end, limit=limit)
    )
    for row in rows:
        payload = row["payload"]
        row["payload"] = (
            payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        )
    return DeadLetters(items=[DeadLetter.model_validate(r) for r in rows])
