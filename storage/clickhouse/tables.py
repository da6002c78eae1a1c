"""The columns a caller writes into each metrics table, as Arrow types.

Mirrors the DDL of :mod:`storage.clickhouse.migrations.m0001_metrics_tables` and the
columns added later (a test checks both agree). ``organization`` is absent on purpose: the
writer fills it from its ``organization`` argument, so one batch always belongs to one
tenant. ``inserted_at`` is filled by ClickHouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pyarrow as pa

__all__ = ["TABLES", "MetricsTable", "TableSpec"]

TIME = pa.timestamp("ms", tz="UTC")


class MetricsTable(StrEnum):
    """The raw metrics tables that accept batches."""

    WINDOW_AGGREGATES = "window_aggregates"
    FEATURE_WINDOW_STATS = "feature_window_stats"
    DRIFT_RESULTS = "drift_results"
    PERFORMANCE_METRICS = "performance_metrics"
    RESOURCE_METRICS = "resource_metrics"
    ALERT_HISTORY = "alert_history"
    DEAD_LETTERS = "dead_letters"


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table: ``columns`` must be given, ``defaults`` may be omitted.

    ``nullable`` columns take NaN (or None) as SQL NULL; elsewhere NaN stays NaN.
    """

    table: MetricsTable
    columns: dict[str, pa.DataType]
    defaults: dict[str, Any] = field(default_factory=dict)
    nullable: frozenset[str] = frozenset()

    @property
    def all_columns(self) -> dict[str, pa.DataType]:
        """Every writable column: the required ones, then those with defaults."""
        return self.columns | {name: _DEFAULT_TYPES[(self.table, name)] for name in self.defaults}


_WINDOW = {"deployment": pa.string(), "window_start": TIME, "window_end": TIME}

_DEFAULT_TYPES: dict[tuple[MetricsTable, str], pa.DataType] = {
    (MetricsTable.WINDOW_AGGREGATES, "late_count"): pa.uint64(),
    (MetricsTable.WINDOW_AGGREGATES, "latency_bucket_edges_ms"): pa.list_(pa.float64()),
    (MetricsTable.WINDOW_AGGREGATES, "latency_bucket_counts"): pa.list_(pa.uint64()),
    (MetricsTable.WINDOW_AGGREGATES, "prediction_class_counts"): pa.map_(pa.string(), pa.uint64()),
    (MetricsTable.WINDOW_AGGREGATES, "custom_metrics"): pa.map_(pa.string(), pa.float64()),
    (MetricsTable.FEATURE_WINDOW_STATS, "histogram_edges"): pa.list_(pa.float64()),
    (MetricsTable.FEATURE_WINDOW_STATS, "histogram_counts"): pa.list_(pa.uint64()),
    (MetricsTable.FEATURE_WINDOW_STATS, "category_counts"): pa.map_(pa.string(), pa.uint64()),
    (MetricsTable.DRIFT_RESULTS, "p_value"): pa.float64(),
    (MetricsTable.DRIFT_RESULTS, "profile_version"): pa.string(),
    (MetricsTable.RESOURCE_METRICS, "instance"): pa.string(),
    (MetricsTable.ALERT_HISTORY, "message"): pa.string(),
    (MetricsTable.ALERT_HISTORY, "labels"): pa.map_(pa.string(), pa.string()),
    (MetricsTable.DEAD_LETTERS, "deployment"): pa.string(),
}

TABLES: dict[MetricsTable, TableSpec] = {
    spec.table: spec
    for spec in (
        TableSpec(
            MetricsTable.WINDOW_AGGREGATES,
            _WINDOW
            | {
                "event_count": pa.uint64(),
                "error_count": pa.uint64(),
                "latency_p50_ms": pa.float64(),
                "latency_p90_ms": pa.float64(),
                "latency_p99_ms": pa.float64(),
                "prediction_mean": pa.float64(),
                "prediction_std": pa.float64(),
            },
            defaults={
                "late_count": 0,
                "latency_bucket_edges_ms": [],
                "latency_bucket_counts": [],
                "prediction_class_counts": [],
                "custom_metrics": [],
            },
        ),
        TableSpec(
            MetricsTable.FEATURE_WINDOW_STATS,
            _WINDOW
            | {"feature": pa.string(), "count": pa.uint64(), "null_count": pa.uint64()}
            | {
                name: pa.float64()
                for name in ("mean", "std", "min", "max", "p05", "p25", "p50", "p75", "p95")
            },
            defaults={"histogram_edges": [], "histogram_counts": [], "category_counts": []},
        ),
        TableSpec(
            MetricsTable.DRIFT_RESULTS,
            _WINDOW
            | {
                "feature": pa.string(),
                "statistic": pa.string(),
                "value": pa.float64(),
                "threshold": pa.float64(),
                "drifted": pa.bool_(),
                "reference_size": pa.uint64(),
                "current_size": pa.uint64(),
            },
            defaults={"p_value": None, "profile_version": ""},
            nullable=frozenset({"p_value"}),
        ),
        TableSpec(
            MetricsTable.PERFORMANCE_METRICS,
            _WINDOW | {"metric": pa.string(), "value": pa.float64(), "sample_count": pa.uint64()},
        ),
        TableSpec(
            MetricsTable.RESOURCE_METRICS,
            {"deployment": pa.string(), "ts": TIME, "resource": pa.string(), "value": pa.float64()},
            defaults={"instance": ""},
        ),
        TableSpec(
            MetricsTable.ALERT_HISTORY,
            {
                "alert_id": pa.string(),
                "rule_id": pa.string(),
                "deployment": pa.string(),
                "fingerprint": pa.string(),
                "state": pa.string(),
                "changed_at": TIME,
                "value": pa.float64(),
            },
            defaults={"message": "", "labels": []},
        ),
        TableSpec(
            MetricsTable.DEAD_LETTERS,
            {
                "received_at": TIME,
                "source": pa.string(),
                "reason": pa.string(),
                "payload": pa.binary(),
            },
            defaults={"deployment": ""},
        ),
    )
}
