"""Migration 0001: the raw metrics tables.

Every table: the organization first in ``ORDER BY`` (every read is scoped to one tenant, so
its rows are contiguous), monthly partitions on the row's time (cheap TTL drops), a TTL of
``{ttl_days}`` days from the settings, and ``non_replicated_deduplication_window`` so that
an insert retried with the same deduplication token is dropped (see
:meth:`storage.clickhouse.client.MetricsClient.insert_arrow`).

Times are ``DateTime64(3, 'UTC')``: milliseconds, always UTC.
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import Migration

_TAIL = """
PARTITION BY toYYYYMM({time})
ORDER BY ({order})
TTL toDateTime({time}) + INTERVAL {{ttl_days}} DAY
SETTINGS non_replicated_deduplication_window = {{dedup_window}}
"""


def _table(name: str, columns: str, *, time: str, order: str) -> str:
    tail = _TAIL.format(time=time, order=order)
    return f"CREATE TABLE IF NOT EXISTS {name} (\n{columns}\n) ENGINE = MergeTree{tail}"


WINDOW_AGGREGATES = _table(
    "window_aggregates",
    """
    organization String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    event_count UInt64,
    error_count UInt64,
    late_count UInt64,
    latency_p50_ms Float64,
    latency_p90_ms Float64,
    latency_p99_ms Float64,
    latency_bucket_edges_ms Array(Float64),
    latency_bucket_counts Array(UInt64),
    prediction_mean Float64,
    prediction_std Float64,
    prediction_class_counts Map(String, UInt64),
    custom_metrics Map(String, Float64),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="window_start",
    order="organization, deployment, window_start",
)

FEATURE_WINDOW_STATS = _table(
    "feature_window_stats",
    """
    organization String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    feature LowCardinality(String),
    count UInt64,
    null_count UInt64,
    mean Float64,
    std Float64,
    min Float64,
    max Float64,
    p05 Float64,
    p25 Float64,
    p50 Float64,
    p75 Float64,
    p95 Float64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="window_start",
    order="organization, deployment, feature, window_start",
)

DRIFT_RESULTS = _table(
    "drift_results",
    """
    organization String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    feature LowCardinality(String),
    statistic LowCardinality(String),
    value Float64,
    p_value Nullable(Float64),
    threshold Float64,
    drifted Bool,
    reference_size UInt64,
    current_size UInt64,
    profile_version String,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="window_start",
    order="organization, deployment, feature, statistic, window_start",
)

PERFORMANCE_METRICS = _table(
    "performance_metrics",
    """
    organization String,
    deployment String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    metric LowCardinality(String),
    value Float64,
    sample_count UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="window_start",
    order="organization, deployment, metric, window_start",
)

RESOURCE_METRICS = _table(
    "resource_metrics",
    """
    organization String,
    deployment String,
    instance String,
    ts DateTime64(3, 'UTC'),
    resource LowCardinality(String),
    value Float64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="ts",
    order="organization, deployment, resource, ts",
)

ALERT_HISTORY = _table(
    "alert_history",
    """
    organization String,
    alert_id String,
    rule_id String,
    deployment String,
    fingerprint String,
    state LowCardinality(String),
    changed_at DateTime64(3, 'UTC'),
    value Float64,
    message String,
    labels Map(String, String),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="changed_at",
    order="organization, changed_at, alert_id",
)

DEAD_LETTERS = _table(
    "dead_letters",
    """
    organization String,
    received_at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    reason String,
    deployment String,
    payload String,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    time="received_at",
    order="organization, received_at",
)

_TABLES = (
    "window_aggregates",
    "feature_window_stats",
    "drift_results",
    "performance_metrics",
    "resource_metrics",
    "alert_history",
    "dead_letters",
)

MIGRATION = Migration(
    version=1,
    name="metrics_tables",
    forwards=(
        WINDOW_AGGREGATES,
        FEATURE_WINDOW_STATS,
        DRIFT_RESULTS,
        PERFORMANCE_METRICS,
        RESOURCE_METRICS,
        ALERT_HISTORY,
        DEAD_LETTERS,
    ),
    backwards=tuple(f"DROP TABLE IF EXISTS {name}" for name in reversed(_TABLES)),
)
