"""Migration 0003: minute roll-ups, the finest level of minute -> hour -> day.

Windows shorter than a minute (or many deployments writing every few seconds) make the raw
tables long for panels of a few hours; ``*_rollup_minute`` holds the same aggregate states
as the hourly roll-up (see :mod:`m0002_rollups`) per minute, fed on insert from the raw
tables. Readers aggregate again with ``GROUP BY``, as for every roll-up.
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import Migration
from storage.clickhouse.migrations.m0002_rollups import (
    _DRIFT_COLUMNS,
    _DRIFT_KEYS,
    _WINDOW_COLUMNS,
    _rollup_table,
)

DRIFT_MINUTE = _rollup_table("drift_rollup_minute", "minute", _DRIFT_KEYS, _DRIFT_COLUMNS)
WINDOW_MINUTE = _rollup_table("window_rollup_minute", "minute", "", _WINDOW_COLUMNS)

DRIFT_MINUTE_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS drift_rollup_minute_mv TO drift_rollup_minute AS
SELECT organization, deployment, toStartOfMinute(toDateTime(window_start, 'UTC')) AS minute,
       feature, statistic,
       toUInt64(count()) AS windows,
       toUInt64(countIf(drifted)) AS drifted_windows,
       avgState(value) AS value_avg,
       max(value) AS value_max,
       min(p_value) AS p_value_min
FROM drift_results
GROUP BY organization, deployment, minute, feature, statistic
"""

WINDOW_MINUTE_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS window_rollup_minute_mv TO window_rollup_minute AS
SELECT organization, deployment, toStartOfMinute(toDateTime(window_start, 'UTC')) AS minute,
       toUInt64(count()) AS windows,
       sum(event_count) AS events,
       sum(error_count) AS errors,
       sum(late_count) AS late,
       avgWeightedState(latency_p50_ms, event_count) AS latency_p50_avg,
       max(latency_p99_ms) AS latency_p99_max,
       avgWeightedState(prediction_mean, event_count) AS prediction_mean_avg
FROM window_aggregates
GROUP BY organization, deployment, minute
"""

MIGRATION = Migration(
    version=3,
    name="minute_rollups",
    forwards=(DRIFT_MINUTE, WINDOW_MINUTE, DRIFT_MINUTE_MV, WINDOW_MINUTE_MV),
    backwards=tuple(
        f"DROP TABLE IF EXISTS {name}"
        for name in (
            "window_rollup_minute_mv",
            "drift_rollup_minute_mv",
            "window_rollup_minute",
            "drift_rollup_minute",
        )
    ),
)
