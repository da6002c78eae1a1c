"""What a closed window produces, and its rows for each metrics table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from storage.clickhouse.tables import MetricsTable


@dataclass(frozen=True)
class DriftRow:
    """One statistic of one feature in one window.

    ``p_value`` is the raw p-value of a test (``None`` for distances) and
    ``p_value_adjusted`` the same adjusted across the window's features (Benjamini-Hochberg
    by default). ``drifted`` is the feature's verdict under the monitor's policy, the same on
    each of the feature's rows: when the policy has a test for the feature's type, a test
    rejects (adjusted p-value <= alpha) *and* the effect-size floor statistic reaches its
    threshold; with distances only, this row's value is at least its threshold.
    """

    feature: str
    statistic: str
    value: float
    p_value: float | None
    p_value_adjusted: float | None
    threshold: float
    drifted: bool
    reference_size: int
    current_size: int
    insufficient: bool


@dataclass(frozen=True)
class FeatureStats:
    """Summary of one feature's values in a window (quantiles estimated from fine bins).

    The window's histogram, for plots: a numeric feature's counts over the reference
    profile's coarse bins (``histogram_edges``, the bins of
    :mod:`detectors.binning`: ``len(edges) + 1`` counts), a categorical feature's count per
    category seen (``categories``, unseen ones included by name).
    """

    feature: str
    count: int
    null_count: int
    mean: float
    std: float
    minimum: float
    maximum: float
    quantiles: tuple[float, float, float, float, float]  # p05, p25, p50, p75, p95
    histogram_edges: tuple[float, ...] = ()
    histogram_counts: tuple[int, ...] = ()
    categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowResult:
    """Everything computed when one window of one deployment closed."""

    organization: str
    deployment: str
    start_ms: int
    end_ms: int
    events: int
    errors: int
    late: int
    insufficient: bool
    drift: tuple[DriftRow, ...]
    features: tuple[FeatureStats, ...]
    latency_ms: tuple[float, float, float]  # p50, p90, p99 (NaN when no latency was sent)
    prediction_mean: float
    prediction_std: float
    class_counts: dict[str, int]
    custom_metrics: dict[str, float]
    performance: tuple[tuple[str, float, int], ...] = ()
    resources: dict[str, float] = field(default_factory=dict)
    phase: Literal["window", "labels"] = "window"
    cut: str = ""  # set on a window closed early because its monitor changed (see key)

    @property
    def key(self) -> str:
        """Stable identity of the window, used to make its writes idempotent.

        A window closed early at a monitor change (``cut``, a prefix of the old monitor's
        fingerprint) has a key of its own: the events after the change fill a new window
        with the same bounds under the new monitor, whose write must not be taken for a
        retry of this one.
        """
        base = f"{self.deployment}/{self.start_ms}/{self.end_ms}"
        return f"{base}/cut-{self.cut}" if self.cut else base

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Features with at least one drifted row."""
        return tuple(dict.fromkeys(r.feature for r in self.drift if r.drifted))

    def tables(self) -> dict[MetricsTable, dict[str, list[Any]]]:
        """Columns for each metrics table (empty tables left out)."""
        window = {
            "deployment": self.deployment,
            "window_start": self.start_ms,
            "window_end": self.end_ms,
        }

        def rows(items: list[dict[str, Any]]) -> dict[str, list[Any]]:
            if not items:
                return {}
            return {k: [item[k] for item in items] for k in items[0]}

        out = {
            MetricsTable.WINDOW_AGGREGATES: rows(
                [
                    window
                    | {
                        "event_count": self.events,
                        "error_count": self.errors,
                        "late_count": self.late,
                        "latency_p50_ms": self.latency_ms[0],
                        "latency_p90_ms": self.latency_ms[1],
                        "latency_p99_ms": self.latency_ms[2],
                        "prediction_mean": self.prediction_mean,
                        "prediction_std": self.prediction_std,
                        "prediction_class_counts": list(self.class_counts.items()),
                        "custom_metrics": list(self.custom_metrics.items()),
                    }
                ]
            ),
            MetricsTable.DRIFT_RESULTS: rows(
                [
                    window
                    | {
                        "feature": r.feature,
                        "statistic": r.statistic,
                        "value": r.value,
                        "p_value": r.p_value,
                        "threshold": r.threshold,
                        "drifted": r.drifted,
                        "reference_size": r.reference_size,
                        "current_size": r.current_size,
                    }
                    for r in self.drift
                    if not r.insufficient
                ]
            ),
            MetricsTable.FEATURE_WINDOW_STATS: rows(
                [
                    window
                    | {
                        "feature": f.feature,
                        "count": f.count,
                        "null_count": f.null_count,
                        "mean": f.mean,
                        "std": f.std,
                        "min": f.minimum,
                        "max": f.maximum,
                        "histogram_edges": list(f.histogram_edges),
                        "histogram_counts": list(f.histogram_counts),
                        "category_counts": list(f.categories.items()),
                    }
                    | dict(zip(("p05", "p25", "p50", "p75", "p95"), f.quantiles, strict=True))
                    for f in self.features
                ]
            ),
            MetricsTable.PERFORMANCE_METRICS: rows(
                [
                    window | {"metric": name, "value": value, "sample_count": n}
                    for name, value, n in self.performance
                ]
            ),
            MetricsTable.RESOURCE_METRICS: rows(
                [
                    {"deployment": self.deployment, "ts": self.start_ms, "resource": k, "value": v}
                    for k, v in self.resources.items()
                ]
            ),
        }
        if self.phase == "labels":  # the second phase only adds the late-label performance
            out = {MetricsTable.PERFORMANCE_METRICS: out[MetricsTable.PERFORMANCE_METRICS]}
        return {table: columns for table, columns in out.items() if columns}

    def report_lines(self) -> list[dict[str, Any]]:
        """One JSON-able line per (window, feature, statistic), as ``driftline replay`` writes."""
        if self.phase == "labels":
            return []
        return [
            {
                "deployment": self.deployment,
                "window_start": _iso(self.start_ms),
                "window_end": _iso(self.end_ms),
                "n": self.events,
                "feature": r.feature,
                "statistic": r.statistic,
                "value": None if r.insufficient else r.value,
                "p_value": r.p_value,
                "p_value_adjusted": r.p_value_adjusted,
                "threshold": r.threshold,
                "drifted": r.drifted,
                "insufficient": r.insufficient,
            }
            for r in self.drift
        ]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
