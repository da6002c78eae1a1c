"""Migration 0002: hourly and daily roll-ups through materialized views.

Raw windows (typically 1-5 minutes) -> ``*_rollup_hour`` -> ``*_rollup_day``, each an
``AggregatingMergeTree`` holding aggregate states, fed by a materialized view on insert, so
a dashboard over months reads a few hundred rows per series instead of every window.

A roll-up row holds, per bucket: ``windows`` (raw windows folded in), sums, maxima and
minima as ``SimpleAggregateFunction`` columns, and means as ``avg`` / ``avgWeighted``
states (read with ``avgMerge`` / ``avgWeightedMerge``). Rows are partial until merged: a
reader always aggregates again with ``GROUP BY``.

Only inserts made after the migration reach the roll-ups; rows already in the raw tables
are not back-filled (no data existed when this migration was written).
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import Migration

_SETTINGS = "SETTINGS non_replicated_deduplication_window = {dedup_window}"


def _rollup_table(name: str, time: str, keys: str, columns: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {name} (
    organization String,
    deployment String,
    {time} DateTime('UTC'),
    {keys}
    {columns}
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM({time})
ORDER BY (organization, deployment, {keys.replace(" LowCardinality(String)", "")}{time})
TTL {time} + INTERVAL {{ttl_days}} DAY
{_SETTINGS}
"""


_DRIFT_KEYS = "feature LowCardinality(String), statistic LowCardinality(String),"
_DRIFT_COLUMNS = """
    windows SimpleAggregateFunction(sum, UInt64),
    drifted_windows SimpleAggregateFunction(sum, UInt64),
    value_avg AggregateFunction(avg, Float64),
    value_max SimpleAggregateFunction(max, Float64),
    p_value_min SimpleAggregateFunction(min, Nullable(Float64))
"""

_WINDOW_COLUMNS = """
    windows SimpleAggregateFunction(sum, UInt64),
    events SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    late SimpleAggregateFunction(sum, UInt64),
    latency_p50_avg AggregateFunction(avgWeighted, Float64, UInt64),
    latency_p99_max SimpleAggregateFunction(max, Float64),
    prediction_mean_avg AggregateFunction(avgWeighted, Float64, UInt64)
"""

DRIFT_HOUR = _rollup_table("drift_rollup_hour", "hour", _DRIFT_KEYS, _DRIFT_COLUMNS)
DRIFT_DAY = _rollup_table("drift_rollup_day", "day", _DRIFT_KEYS, _DRIFT_COLUMNS)
WINDOW_HOUR = _rollup_table("window_rollup_hour", "hour", "", _WINDOW_COLUMNS)
WINDOW_DAY = _rollup_table("window_rollup_day", "day", "", _WINDOW_COLUMNS)


def drift_from_raw(bucket: str, start_of: str) -> str:
    """The view folding raw drift results into ``drift_rollup_<bucket>`` by ``start_of``."""
    return f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS drift_rollup_{bucket}_mv TO drift_rollup_{bucket} AS
SELECT organization, deployment, {start_of}(toDateTime(window_start, 'UTC')) AS {bucket},
       feature, statistic,
       toUInt64(count()) AS windows,
       toUInt64(countIf(drifted)) AS drifted_windows,
       avgState(value) AS value_avg,
       max(value) AS value_max,
       min(p_value) AS p_value_min
FROM drift_results
GROUP BY organization, deployment, {bucket}, feature, statistic
"""


def windows_from_raw(bucket: str, start_of: str) -> str:
    """The view folding raw window aggregates into ``window_rollup_<bucket>``."""
    return f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS window_rollup_{bucket}_mv TO window_rollup_{bucket} AS
SELECT organization, deployment, {start_of}(toDateTime(window_start, 'UTC')) AS {bucket},
       toUInt64(count()) AS windows,
       sum(event_count) AS events,
       sum(error_count) AS errors,
       sum(late_count) AS late,
       avgWeightedState(latency_p50_ms, event_count) AS latency_p50_avg,
       max(latency_p99_ms) AS latency_p99_max,
       avgWeightedState(prediction_mean, event_count) AS prediction_mean_avg
FROM window_aggregates
GROUP BY organization, deployment, {bucket}
"""


DRIFT_HOUR_MV = drift_from_raw("hour", "toStartOfHour")

DRIFT_DAY_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS drift_rollup_day_mv TO drift_rollup_day AS
SELECT organization, deployment, toStartOfDay(hour, 'UTC') AS day, feature, statistic,
       sum(windows) AS windows,
       sum(drifted_windows) AS drifted_windows,
       avgMergeState(value_avg) AS value_avg,
       max(value_max) AS value_max,
       min(p_value_min) AS p_value_min
FROM drift_rollup_hour
GROUP BY organization, deployment, day, feature, statistic
"""

WINDOW_HOUR_MV = windows_from_raw("hour", "toStartOfHour")

WINDOW_DAY_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS window_rollup_day_mv TO window_rollup_day AS
SELECT organization, deployment, toStartOfDay(hour, 'UTC') AS day,
       sum(windows) AS windows,
       sum(events) AS events,
       sum(errors) AS errors,
       sum(late) AS late,
       avgWeightedMergeState(latency_p50_avg) AS latency_p50_avg,
       max(latency_p99_max) AS latency_p99_max,
       avgWeightedMergeState(prediction_mean_avg) AS prediction_mean_avg
FROM window_rollup_hour
GROUP BY organization, deployment, day
"""

MIGRATION = Migration(
    version=2,
    name="rollups",
    forwards=(
        DRIFT_HOUR,
        DRIFT_DAY,
        WINDOW_HOUR,
        WINDOW_DAY,
        DRIFT_DAY_MV,
        DRIFT_HOUR_MV,
        WINDOW_DAY_MV,
        WINDOW_HOUR_MV,
    ),
    backwards=tuple(
        f"DROP TABLE IF EXISTS {name}"
        for name in (
            "window_rollup_hour_mv",
            "window_rollup_day_mv",
            "drift_rollup_hour_mv",
            "drift_rollup_day_mv",
            "window_rollup_day",
            "window_rollup_hour",
            "drift_rollup_day",
            "drift_rollup_hour",
        )
    ),
)
