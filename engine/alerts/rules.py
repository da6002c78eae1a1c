"""Alert conditions over one closed window: each turns a :class:`WindowResult` into samples.

A *sample* is one series' reading in one window: its extra labels (for example the feature),
the number compared (``value``), what it is compared with (``threshold``) and whether the
condition holds (``active``). :func:`evaluate` returns ``None`` when the window says nothing
about the condition (a label-phase result for a drift rule, no latency sent), so the series
keep their state; an empty list means "no series". :func:`read` gives the same samples as
columns (:class:`Readings`: no object per series, for rules over thousands of features).

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
    "Readings",
    "Sample",
    "ThroughputDrop",
    "evaluate",
    "read",
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


@dataclass(frozen=True)
class Readings:
    """A condition's samples in one window, as columns: series ``i`` is ``keys[i]``.

    Series ``i`` reads ``values[i]`` against ``thresholds[i]`` and is ``active[i]``. Its key
    tells it apart among the condition's series without building its labels: the feature
    of a drift condition (labels ``{"feature": key, "statistic": statistic}``), ``""`` for a
    condition with one series (no labels). Keys may repeat only if the window's rows do.
    """

    keys: list[str]
    values: list[float]
    thresholds: list[float]
    active: list[bool]
    statistic: str | None = None

    def labels(self, key: str) -> dict[str, str]:
        """The labels of the series ``key``."""
        if self.statistic is None:
            return {}
        return {"feature": key, "statistic": self.statistic}

    def sample(self, i: int) -> Sample:
        """Series ``i`` as a :class:`Sample`."""
        labels = self.labels(self.keys[i])
        return Sample(self.values[i], self.thresholds[i], self.active[i], labels)


_QUANTILE = {"p50": 0, "p90": 1, "p99": 2}


def _one(value: float, threshold: float, active: bool) -> Readings:
    return Readings([""], [value], [threshold], [active])


def _drift(condition: DriftStatistic | PValue, result: WindowResult) -> Readings:
    statistic, only = condition.statistic, frozenset(condition.features)
    rows = [
        row
        for row in result.drift
        if row.statistic == statistic and not row.insufficient and (not only or row.feature in only)
    ]
    if isinstance(condition, DriftStatistic):
        fixed = condition.threshold
        values = [row.value for row in rows]
        limits = [row.threshold for row in rows] if fixed is None else [fixed] * len(rows)
        active = [value >= limit for value, limit in zip(values, limits, strict=True)]
        return Readings([row.feature for row in rows], values, limits, active, statistic)
    keys: list[str] = []
    values = []
    for row in rows:
        p = row.p_value_adjusted if condition.adjusted else row.p_value
        if p is not None and not math.isnan(p):
            keys.append(row.feature)
            values.append(p)
    alpha = condition.alpha
    return Readings(keys, values, [alpha] * len(keys), [p <= alpha for p in values], statistic)


def _share(condition: DriftedShare, result: WindowResult) -> Readings:
    features = {r.feature for r in result.drift if not r.insufficient}
    if not features:
        return Readings([], [], [], [])
    share = len(set(result.drifted_features) & features) / len(features)
    return _one(share, condition.threshold, share >= condition.threshold)


def _performance(condition: PerformanceDrop, result: WindowResult) -> Readings | None:
    for name, value, _n in result.performance:
        if name != condition.metric or math.isnan(value):
            continue
        drop = value - condition.baseline
        if name not in LOWER_IS_BETTER:
            drop = -drop
        if condition.relative:
            drop = drop / abs(condition.baseline) if condition.baseline else math.inf
        return _one(value, condition.max_drop, drop > condition.max_drop)
    return None


def read(condition: Condition, result: WindowResult) -> Readings | None:
    """The readings of ``condition`` in ``result`` (``None``: the window does not tell)."""
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
        return _one(latency, condition.slo_ms, latency > condition.slo_ms)
    if isinstance(condition, ErrorRate):
        if result.events <= 0:
            return None
        rate = result.errors / result.events
        return _one(rate, condition.threshold, rate > condition.threshold)
    if isinstance(condition, ThroughputDrop):
        drop = (condition.baseline_events - result.events) / condition.baseline_events
        return _one(float(result.events), condition.baseline_events, drop > condition.max_drop)
    return _one(float(result.events), condition.min_events, result.events < condition.min_events)


def evaluate(condition: Condition, result: WindowResult) -> list[Sample] | None:
    """The samples of ``condition`` in ``result`` (``None``: the window does not tell)."""
    readings = read(condition, result)
    if readings is None:
        return None
    return [readings.sample(i) for i in range(len(readings.keys))]
