"""Migration 0004: leaner roll-ups, fed in a cascade minute -> hour -> day.

What changes, and why (measured by ``benchmarks/storage.py``): every insert into a raw table
also runs its views, and the roll-up columns holding ``avg`` / ``avgWeighted`` *states* cost
about as much to write as the raw rows themselves. Those states are replaced by plain sums,
which roll up with ``SimpleAggregateFunction(sum, ...)`` and are cheaper to write and merge:

- drift roll-ups: ``value_avg AggregateFunction(avg, Float64)`` becomes ``value_sum`` (the sum of
  the statistic over the bucket's windows); the mean is ``sum(value_sum) / sum(windows)``.
- window roll-ups: ``latency_p50_avg`` and ``prediction_mean_avg`` (``avgWeighted`` states,
  weights ``event_count``) become ``latency_p50_weighted`` and ``prediction_mean_weighted``,
  the sums of value x events; the weighted mean is ``sum(..._weighted) / sum(events)``.

The hourly roll-ups are now fed from the minute roll-ups (not from the raw tables again) and
the daily ones from the hourly ones, so a raw row is aggregated once.

Existing roll-up rows are converted in place (``finalizeAggregation(state) x count``). The
views are dropped first and created last: run ``driftline migrate`` with the writers stopped,
or the windows written in between reach the raw tables but not the roll-ups. Every step is
idempotent or guarded, so a run cut short repeats safely.
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import IfColumn, Migration
from storage.clickhouse.migrations.m0002_rollups import (
    DRIFT_DAY_MV,
    WINDOW_DAY_MV,
    drift_from_raw,
    windows_from_raw,
)

LEVELS = ("minute", "hour", "day")
_VIEWS = tuple(f"{kind}_rollup_{level}_mv" for kind in ("drift", "window") for level in LEVELS)

# (table prefix, old state column, new sum column, weight column, state type)
_CONVERSIONS = (
    ("drift_rollup", "value_avg", "value_sum", "windows", "AggregateFunction(avg, Float64)"),
    (
        "window_rollup",
        "latency_p50_avg",
        "latency_p50_weighted",
        "events",
        "AggregateFunction(avgWeighted, Float64, UInt64)",
    ),
    (
        "window_rollup",
        "prediction_mean_avg",
        "prediction_mean_weighted",
        "events",
        "AggregateFunction(avgWeighted, Float64, UInt64)",
    ),
)

_SYNC = "SETTINGS mutations_sync = 2"


def _drift_view(level: str, source: str, start_of: str) -> str:
    return f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS drift_rollup_{level}_mv TO drift_rollup_{level} AS
SELECT organization, deployment, {start_of} AS {level}, feature, statistic,
       sum(windows) AS windows,
       sum(drifted_windows) AS drifted_windows,
       sum(value_sum) AS value_sum,
       max(value_max) AS value_max,
       min(p_value_min) AS p_value_min
FROM {source}
GROUP BY organization, deployment, {level}, feature, statistic
"""


def _window_view(level: str, source: str, start_of: str) -> str:
    return f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS window_rollup_{level}_mv TO window_rollup_{level} AS
SELECT organization, deployment, {start_of} AS {level},
       sum(windows) AS windows,
       sum(events) AS events,
       sum(errors) AS errors,
       sum(late) AS late,
       sum(latency_p50_weighted) AS latency_p50_weighted,
       max(latency_p99_max) AS latency_p99_max,
       sum(prediction_mean_weighted) AS prediction_mean_weighted
FROM {source}
GROUP BY organization, deployment, {level}
"""


DRIFT_MINUTE_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS drift_rollup_minute_mv TO drift_rollup_minute AS
SELECT organization, deployment, toStartOfMinute(toDateTime(window_start, 'UTC')) AS minute,
       feature, statistic,
       toUInt64(count()) AS windows,
       toUInt64(countIf(drifted)) AS drifted_windows,
       sum(value) AS value_sum,
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
       sum(latency_p50_ms * event_count) AS latency_p50_weighted,
       max(latency_p99_ms) AS latency_p99_max,
       sum(prediction_mean * event_count) AS prediction_mean_weighted
FROM window_aggregates
GROUP BY organization, deployment, minute
"""


def _forwards() -> tuple[str | IfColumn, ...]:
    steps: list[str | IfColumn] = [f"DROP VIEW IF EXISTS {view}" for view in _VIEWS]
    for prefix, old, new, weight, _state in _CONVERSIONS:
        for level in LEVELS:
            table = f"{prefix}_{level}"
            steps.append(
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "
                f"{new} SimpleAggregateFunction(sum, Float64) AFTER {old}"
            )
            # states -> sums; guarded: once the state column is dropped there is nothing to do
            steps.append(
                IfColumn(
                    table,
                    old,
                    f"ALTER TABLE {table} UPDATE {new} = if({weight} = 0, 0, "
                    f"finalizeAggregation({old}) * {weight}) WHERE 1 {_SYNC}",
                )
            )
            steps.append(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {old}")
    steps += [
        DRIFT_MINUTE_MV,
        _drift_view("hour", "drift_rollup_minute", "toStartOfHour(minute)"),
        _drift_view("day", "drift_rollup_hour", "toStartOfDay(hour, 'UTC')"),
        WINDOW_MINUTE_MV,
        _window_view("hour", "window_rollup_minute", "toStartOfHour(minute)"),
        _window_view("day", "window_rollup_hour", "toStartOfDay(hour, 'UTC')"),
    ]
    return tuple(steps)


def _backwards() -> tuple[str | IfColumn, ...]:
    steps: list[str | IfColumn] = [f"DROP VIEW IF EXISTS {view}" for view in _VIEWS]
    for prefix, old, new, weight, state in _CONVERSIONS:
        # a state equal to the one the sums stand for: avg over ``windows`` copies of the
        # mean (sum and count as before); avgWeighted of one (mean, events) pair
        rebuild = (
            f"arrayReduce('avgState', arrayWithConstant({weight}, {new} / {weight}))"
            if "avgWeighted" not in state
            else f"arrayReduce('avgWeightedState', [if({weight} = 0, 0, {new} / {weight})], "
            f"[{weight}])"
        )
        for level in LEVELS:
            table = f"{prefix}_{level}"
            steps.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {old} {state} AFTER {new}")
            update = f"ALTER TABLE {table} UPDATE {old} = {rebuild} WHERE 1 {_SYNC}"
            steps.append(IfColumn(table, new, update))
            steps.append(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {new}")
    steps += [
        drift_from_raw("minute", "toStartOfMinute"),
        drift_from_raw("hour", "toStartOfHour"),
        DRIFT_DAY_MV,
        windows_from_raw("minute", "toStartOfMinute"),
        windows_from_raw("hour", "toStartOfHour"),
        WINDOW_DAY_MV,
    ]
    return tuple(steps)


MIGRATION = Migration(version=4, name="lean_rollups", forwards=_forwards(), backwards=_backwards())
