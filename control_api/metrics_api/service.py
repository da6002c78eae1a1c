"""Series over the metrics store for one deployment of one organization.

The deployment is looked up in the caller's organization first (404 otherwise); the
reads go through :mod:`storage.clickhouse.reader`, where the organization and every other
value is a bound query parameter. ``step`` is in seconds; see the reader for bucketing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from control_api.deployments import repository as deployments
from control_api.errors import ApiError, Conflict, InvalidInput, NotFound
from control_api.metrics_api import plot
from control_api.metrics_api.schemas import (
    DeadLetter,
    DeadLetters,
    DriftPoint,
    DriftSeries,
    FeaturePoint,
    FeatureSeries,
    Fleet,
    FleetRow,
    LatencyPoint,
    LatencySeries,
    MetricPoint,
    MetricSeries,
)
from control_api.monitors import repository as monitors
from control_api.references import service as references
from storage.clickhouse import feature_reader, reader
from storage.clickhouse.client import MetricsClient
from storage.errors import StorageInputError, StorageQueryError, StorageUnavailable
from storage.objects import ObjectStore

__all__ = [
    "DriftPlot",
    "MetricsUnavailable",
    "ReferenceMismatch",
    "custom_metrics",
    "drift",
    "drift_plot",
    "features",
    "latency",
    "performance",
    "resources",
]

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


def _metric_series(
    session: Session,
    client: MetricsClient,
    *,
    org_id: str,
    deployment_id: str,
    start: datetime,
    end: datetime,
    step: int,
    read: Callable[..., Any],
    **kwargs: Any,
) -> MetricSeries:
    """A :class:`MetricSeries` read by ``read`` (a reader function) for one deployment."""
    _check(session, org_id=org_id, deployment_id=deployment_id)
    time_range = reader.TimeRange(start, end, step)
    rows = _read(
        lambda: read(
            client, organization=org_id, deployment=deployment_id, time_range=time_range, **kwargs
        )
    )
    points = [MetricPoint.model_validate(r) for r in rows]
    return MetricSeries(deployment_id=deployment_id, step=step, points=points)


def resources(
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
    """Resource usage (cpu, memory, gpu, replicas, ... as the model server reports) per bucket."""
    return _metric_series(
        session,
        client,
        org_id=org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        read=reader.metric_series,
        kind="resources",
        names=names,
    )


def custom_metrics(
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
    """The monitor's custom metrics per bucket (a window's mean of a metric is one point)."""
    return _metric_series(
        session,
        client,
        org_id=org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        read=feature_reader.custom_metric_series,
        names=names,
    )


def features(
    session: Session,
    client: MetricsClient,
    *,
    org_id: str,
    deployment_id: str,
    start: datetime,
    end: datetime,
    step: int,
    names: Sequence[str],
) -> FeatureSeries:
    """Feature statistics per bucket and feature (see :func:`feature_reader.feature_series`)."""
    _check(session, org_id=org_id, deployment_id=deployment_id)
    rows = _read(
        lambda: feature_reader.feature_series(
            client,
            organization=org_id,
            deployment=deployment_id,
            time_range=reader.TimeRange(start, end, step),
            features=names,
        )
    )
    points = [FeaturePoint.model_validate(r) for r in rows]
    return FeatureSeries(deployment_id=deployment_id, step=step, points=points)


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
    return _metric_series(
        session,
        client,
        org_id=org_id,
        deployment_id=deployment_id,
        start=start,
        end=end,
        step=step,
        read=reader.metric_series,
        kind="performance",
        names=names,
    )


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


# --- the drift plot


class ReferenceMismatch(Conflict):
    """The window was measured against another reference than the monitor's now (409)."""

    kind = "/problems/reference-mismatch"


@dataclass(frozen=True)
class DriftPlot:
    """A rendered drift plot and what its title says."""

    png: bytes
    title: str
    verdict: plot.Verdict


def _verdict(rows: list[dict[str, Any]], statistic: str) -> plot.Verdict:
    """The asked statistic's result, else the first test's (one with a p-value), else the first."""
    if statistic:
        rows = [r for r in rows if r["statistic"] == statistic]
    if not rows:
        raise NotFound("No drift result for this feature and statistic in that window.")
    row = next((r for r in rows if r["p_value"] is not None), rows[0])
    return plot.Verdict(row["statistic"], float(row["value"]), row["p_value"], row["drifted"])


def _numeric(profile: dict[str, Any], j: int, window: dict[str, Any]) -> plot.Histograms | None:
    """Both histograms of numeric feature ``j``; ``None`` when the window used other bins."""
    edges = np.asarray(profile["coarse"]["edges"][j], dtype=np.float64)
    stored = np.asarray(window["histogram_edges"], dtype=np.float64)
    if stored.shape != edges.shape or not np.array_equal(stored, edges):
        return None
    reference = np.asarray(profile["coarse_counts"][j], dtype=np.float64)
    current = np.asarray(window["histogram_counts"], dtype=np.float64)
    if profile["coarse"]["by_value"][j]:
        labels = (*(f"{v:g}" for v in edges), "(other)")
        return plot.Histograms(reference, current, labels=labels)
    seen = [profile["minimum"][j], profile["maximum"][j], window["min"], window["max"]]
    values = [v for v in seen if v is not None and math.isfinite(v)]
    low = min([*values, float(edges[0])]) if edges.size else min(values, default=0.0)
    high = max([*values, float(edges[-1])]) if edges.size else max(values, default=1.0)
    return plot.Histograms(reference, current, edges=edges, low=low, high=high)


def _categorical(profile: dict[str, Any], j: int, window: dict[str, Any]) -> plot.Histograms:
    """Both histograms of categorical feature ``j``: the vocabulary, then unseen categories.

    Past :data:`plot.MAX_BARS` categories, the ones with the least share in both are pooled.
    """
    reference = dict(zip(profile["vocabulary"][j], profile["category_counts"][j], strict=True))
    current = dict(window["category_counts"])
    names = [*reference, *sorted(set(current) - set(reference), key=lambda n: -current[n])]
    ref_total, cur_total = sum(reference.values()) or 1, sum(current.values()) or 1

    def weight(name: str) -> float:
        return float(reference.get(name, 0) / ref_total + current.get(name, 0) / cur_total)

    if len(names) > plot.MAX_BARS:
        kept = set(sorted(names, key=weight, reverse=True)[: plot.MAX_BARS - 1])
        names = [n for n in names if n in kept] + ["(other)"]
    ref = [float(reference.get(n, 0)) for n in names]
    cur = [float(current.get(n, 0)) for n in names]
    if names and names[-1] == "(other)":
        ref[-1] = float(sum(v for k, v in reference.items() if k not in names))
        cur[-1] = float(sum(v for k, v in current.items() if k not in names))
    return plot.Histograms(np.array(ref), np.array(cur), labels=tuple(names))


def _histograms(
    session: Session,
    store: ObjectStore,
    *,
    org_id: str,
    deployment_id: str,
    feature: str,
    window: dict[str, Any],
) -> plot.Histograms:
    """The histograms from the first of the deployment's monitors whose reference matches."""
    watched = False
    for monitor in monitors.for_deployment(session, org_id=org_id, deployment_id=deployment_id):
        profile = references.load_profile(
            session, org_id=org_id, reference_id=monitor.reference_id, store=store
        )
        if feature in profile["categorical"]:
            return _categorical(profile, profile["categorical"].index(feature), window)
        if feature in profile["numeric"]:
            watched = True
            found = _numeric(profile, profile["numeric"].index(feature), window)
            if found is not None:
                return found
    if watched:
        raise ReferenceMismatch(
            "That window was measured over other bins than the monitor's reference profile "
            "has now (the reference was changed since)."
        )
    raise NotFound("No monitor of this deployment has this feature in its reference profile.")


def drift_plot(
    session: Session,
    client: MetricsClient,
    store: ObjectStore,
    *,
    org_id: str,
    deployment_id: str,
    feature: str,
    window: datetime,
    statistic: str,
) -> DriftPlot:
    """The reference vs window histogram of ``feature`` in the window starting at ``window``.

    The window's histogram is the one the engine stored when the window closed (see
    :mod:`storage.clickhouse.migrations.m0005_feature_stats`); windows stored before
    histograms were kept answer 404, as do unknown windows and features.
    """
    _check(session, org_id=org_id, deployment_id=deployment_id)

    def where(read: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: read(
            client, organization=org_id, deployment=deployment_id, start=window, feature=feature
        )

    stats = _read(where(feature_reader.window_feature))
    if not stats:
        raise NotFound("No such window of this deployment, or no such feature in it.")
    row = stats[0]
    if not row["histogram_counts"] and not row["category_counts"]:
        raise NotFound("That window was stored without its histogram (before migration 5).")
    verdict = _verdict(_read(where(feature_reader.window_drift)), statistic)
    histograms = _histograms(
        session, store, org_id=org_id, deployment_id=deployment_id, feature=feature, window=row
    )
    png = plot.render(feature, verdict, histograms)
    return DriftPlot(png, plot.title(feature, verdict), verdict)
