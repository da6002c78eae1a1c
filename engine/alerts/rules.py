"""Alert conditions over one closed window: each turns a :class:`WindowResult` into samples.

A *sample* is one series' reading in one window: its extra labels (for example the feature),
the number compared (``value``), what it is compared with (``threshold``) and whether the
condition holds (``active``). :func:`evaluate` returns ``None`` when the window says nothing
about the condition (a label-phase result for a drift rule, no latency sent), so the series
keep their state; an empty list means "no series".

Conditions (``kind``):

- ``drift_statistic``: a feature's statistic ``>=`` threshold (the monitor's own threshold
  on the row unless given). One series per feature.
- ``p_value``: a feature's (adjusted, by default) p-value ``<=`` alpha. One series per feature.
- ``drifted_share``: drifted features / features with a verdict ``>=`` threshold (0-1).
- ``performance``: drop of a metric from its baseline ``>`` ``max_drop``: ``baseline - value``
  for scores (accuracy, F1), ``value - baseline`` for errors (MAE, RMSE, MAPE), divided by
  ``|baseline|`` when ``relative``.
- ``latency``: the window's latency quantile (ms) ``>`` the SLO (ms).
- ``error_rate``: error events / events ``>`` threshold (0-1).
- ``throughput_drop``: ``(baseline_events - events) / baseline_events > max_drop`` (0-1).
- ``no_data``: fewer than ``min_events`` events in a closed window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.results import WindowResult

__all__ = [
    "Condition",
    "DriftStatistic",
    "DriftedShare",
    "ErrorRate",
    "LatencySlo",
    "NoData",
    "PValue",
    "PerformanceDrop",
    "Sample",
    "ThroughputDrop",
    "evaluate",
]

LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape"})


class _Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriftStatistic(_Condition):
    """A drift statistic of each feature (or of ``features``) against a threshold."""

    kind: Literal["drift_statistic"] = "drift_statistic"
    statistic: str = Field(min_length=1, max_length=64)
    features: tuple[str, ...] = ()
    threshold: float | None = None


class PValue(_Condition):
    """A test's p-value of each feature against ``alpha`` (adjusted across features)."""

    kind: Literal["p_value"] = "p_value"
    statistic: str = Field(min_length=1, max_length=64)
    features: tuple[str, ...] = ()
    alpha: float = Field(default=0.05, gt=0, lt=1)
    adjusted: bool = True


class DriftedShare(_Condition):
    """The share of drifted features (0-1) against ``threshold``."""

    kind: Literal["drifted_share"] = "drifted_share"
    threshold: float = Field(gt=0, le=1)


class PerformanceDrop(_Condition):
    """A performance metric's drop from ``baseline`` (absolute or relative)."""

    kind: Literal["performance"] = "performance"
    metric: str = Field(min_length=1, max_length=64)
    baseline: float
    max_drop: float = Field(ge=0)
    relative: bool = False


class LatencySlo(_Condition):
    """A latency quantile of the window (milliseconds) against the SLO."""

    kind: Literal["latency"] = "latency"
    quantile: Literal["p50", "p90", "p99"] = "p99"
    slo_ms: float = Field(gt=0)


class ErrorRate(_Condition):
    """The share of error events in the window (0-1)."""

    kind: Literal["error_rate"] = "error_rate"
    threshold: float = Field(ge=0, le=1)


class ThroughputDrop(_Condition):
    """Events per window against a baseline count."""

    kind: Literal["throughput_drop"] = "throughput_drop"
    baseline_events: float = Field(gt=0)
    max_drop: float = Field(gt=0, le=1)


class NoData(_Condition):
    """A window that closed with fewer than ``min_events`` events."""

    kind: Literal["no_data"] = "no_data"
    min_events: int = Field(default=1, ge=1)


Condition = Annotated[
    DriftStatistic
    | PValue
    | DriftedShare
    | PerformanceDrop
    | LatencySlo
    | ErrorRate
    | ThroughputDrop
    | NoData,
    Field(discriminator="kind"),
]


@dataclass(frozen=True)
class Sample:
    """One series' reading in one window; ``labels`` are added to the rule's labels."""

    value: float
    threshold: float
    active: bool
    labels: dict[str, str] = field(default_factory=dict)


_QUANTILE = {"p50": 0, "p90": 1, "p99": 2}


def _drift(condition: DriftStatistic | PValue, result: WindowResult) -> list[Sample]:
    out: list[Sample] = []
    for row in result.drift:
        if row.statistic != condition.statistic or row.insufficient:
            continue
        if condition.features and row.feature not in condition.features:
            continue
        labels = {"feature": row.feature, "statistic": row.statistic}
        if isinstance(condition, DriftStatistic):
            limit = row.threshold if condition.threshold is None else condition.threshold
            out.append(Sample(row.value, limit, row.value >= limit, labels))
            continue
        p = row.p_value_adjusted if condition.adjusted else row.p_value
        if p is not None and not math.isnan(p):
            out.append(Sample(p, condition.alpha, p <= condition.alpha, labels))
    return out


def _share(condition: DriftedShare, result: WindowResult) -> list[Sample]:
    features = {r.feature for r in result.drift if not r.insufficient}
    if not features:
        return []
    share = len(set(result.drifted_features) & features) / len(features)
    return [Sample(share, condition.threshold, share >= condition.threshold)]


def _performance(condition: PerformanceDrop, result: WindowResult) -> list[Sample] | None:
    for name, value, _n in result.performance:
        if name != condition.metric or math.isnan(value):
            continue
        drop = value - condition.baseline
        if name not in LOWER_IS_BETTER:
            drop = -drop
        if condition.relative:
            drop = drop / abs(condition.baseline) if condition.baseline else math.inf
        return [Sample(value, condition.max_drop, drop > condition.max_drop)]
    return None


def evaluate(condition: Condition, result: WindowResult) -> list[Sample] | None:
    """The samples of ``condition`` in ``result`` (``None``: the window does not tell)."""
    if isinstance(condition, PerformanceDrop):
        return _performance(condition, result)
    if result.phase == "labels":
        return None
    if isinstance(condition, DriftStatistic | PValue):
        return None if result.insufficient else _drift(condition, result)
    if isinstance(condition, DriftedShare):
        return None if result.insufficient else _share(condition, result)
    if isinstance(condition, LatencySlo):
        latency = result.latency_ms[_QUANTILE[condition.quantile]]
        if math.isnan(latency):
            return None
        return [Sample(latency, condition.slo_ms, latency > condition.slo_ms)]
    if isinstance(condition, ErrorRate):
        if result.events <= 0:
            return None
        rate = result.errors / result.events
        return [Sample(rate, condition.threshold, rate > condition.threshold)]
    if isinstance(condition, ThroughputDrop):
        drop = (condition.baseline_events - result.events) / condition.baseline_events
        return [Sample(float(result.events), condition.baseline_events, drop > condition.max_drop)]
    return [
        Sample(float(result.events), condition.min_events, result.events < condition.min_events)
    ]
