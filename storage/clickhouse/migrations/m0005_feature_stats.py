"""Migration 0005: each window's histogram per feature, and hourly and daily feature roll-ups.

``feature_window_stats`` gains the window's histogram (what a drift plot shows next to the
reference): ``histogram_edges`` / ``histogram_counts`` for a numeric feature (its counts
over the reference profile's coarse bins, ``len(edges) + 1`` of them, as
:mod:`detectors.binning` defines them) and ``category_counts`` for a categorical one. Rows
written before have them empty.

``feature_rollup_hour`` / ``feature_rollup_day`` hold plain sums per bucket and feature, in
the lean style of migration 0004 (``SimpleAggregateFunction``, no aggregate states), fed
raw -> hour -> day:

- ``windows``, ``value_count`` (the windows' ``count``), ``null_count``: sums;
  ``numeric_count``: the ``count`` of the windows that have a mean (numeric features);
- ``mean_weighted``, ``square_weighted``: sums of ``mean x count`` and ``(std^2 + mean^2) x
  count`` (so mean = mean_weighted / numeric_count and std = sqrt(square_weighted /
  numeric_count - mean^2), the population figures of all the bucket's values);
- ``min_value`` / ``max_value``: +inf / -inf where no window had a value;
- ``p05_weighted`` ... ``p95_weighted``: sums of ``quantile x count``; read as a count-weighted
  mean of the windows' quantile estimates (exact for one window, an approximation of the
  bucket's quantile across several).

Rows already in ``feature_window_stats`` are folded into the hourly roll-up once, before its
view exists (guarded: only while the roll-up is empty), so a run cut short repeats safely;
run ``driftline migrate`` with the writers stopped, as for migration 0004.
"""

from __future__ import annotations

from storage.clickhouse.migrations.base import Migration
from storage.clickhouse.migrations.m0002_rollups import _rollup_table

QUANTILES = ("p05", "p25", "p50", "p75", "p95")

_KEYS = "feature LowCardinality(String),"
_COLUMNS = ",\n".join(
    [
        "windows SimpleAggregateFunction(sum, UInt64)",
        "    value_count SimpleAggregateFunction(sum, UInt64)",
        "    null_count SimpleAggregateFunction(sum, UInt64)",
        "    numeric_count SimpleAggregateFunction(sum, UInt64)",
        "    mean_weighted SimpleAggregateFunction(sum, Float64)",
        "    square_weighted SimpleAggregateFunction(sum, Float64)",
        "    min_value SimpleAggregateFunction(min, Float64)",
        "    max_value SimpleAggregateFunction(max, Float64)",
        *(f"    {q}_weighted SimpleAggregateFunction(sum, Float64)" for q in QUANTILES),
    ]
)

FEATURE_HOUR = _rollup_table("feature_rollup_hour", "hour", _KEYS, _COLUMNS)
FEATURE_DAY = _rollup_table("feature_rollup_day", "day", _KEYS, _COLUMNS)


def _weighted(value: str) -> str:
    """``value x count`` of one raw row, 0 where the value is missing (NaN)."""
    return f"if(isNaN({value}), 0, {value} * count)"


RAW_SUMS = ",\n       ".join(
    [
        "toUInt64(count()) AS windows",
        "sum(count) AS value_count",
        "sum(null_count) AS null_count",
        "sum(if(isNaN(mean), 0, count)) AS numeric_count",
        f"sum({_weighted('mean')}) AS mean_weighted",
        f"sum({_weighted('(std * std + mean * mean)')}) AS square_weighted",
        "min(if(isNaN(min), inf, min)) AS min_value",
        "max(if(isNaN(max), -inf, max)) AS max_value",
        *(f"sum({_weighted(q)}) AS {q}_weighted" for q in QUANTILES),
    ]
)
"""The roll-up's sums over raw ``feature_window_stats`` rows (the reader's raw path too)."""

ROLLUP_SUMS = ",\n       ".join(
    [
        *(
            f"sum({c}) AS {c}"
            for c in ("windows", "value_count", "null_count", "numeric_count", "mean_weighted")
        ),
        "sum(square_weighted) AS square_weighted",
        "min(min_value) AS min_value",
        "max(max_value) AS max_value",
        *(f"sum({q}_weighted) AS {q}_weighted" for q in QUANTILES),
    ]
)
"""The same sums over roll-up rows."""

_HOUR_SELECT = f"""
SELECT organization, deployment, toStartOfHour(toDateTime(window_start, 'UTC')) AS hour,
       feature,
       {RAW_SUMS}
FROM feature_window_stats
GROUP BY organization, deployment, hour, feature"""

FEATURE_DAY_MV = f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS feature_rollup_day_mv TO feature_rollup_day AS
SELECT organization, deployment, toStartOfDay(hour, 'UTC') AS day, feature,
       {ROLLUP_SUMS}
FROM feature_rollup_hour
GROUP BY organization, deployment, day, feature
"""

BACKFILL = f"""
INSERT INTO feature_rollup_hour {_HOUR_SELECT}
HAVING (SELECT count() FROM feature_rollup_hour) = 0
"""

FEATURE_HOUR_MV = f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS feature_rollup_hour_mv TO feature_rollup_hour AS
{_HOUR_SELECT}
"""

_HISTOGRAM = (
    ("histogram_edges", "Array(Float64)"),
    ("histogram_counts", "Array(UInt64)"),
    ("category_counts", "Map(String, UInt64)"),
)

MIGRATION = Migration(
    version=5,
    name="feature_stats",
    forwards=(
        *(
            f"ALTER TABLE feature_window_stats ADD COLUMN IF NOT EXISTS {name} {kind}"
            for name, kind in _HISTOGRAM
        ),
        FEATURE_HOUR,
        FEATURE_DAY,
        FEATURE_DAY_MV,  # before the backfill, so the backfill reaches the daily roll-up
        BACKFILL,
        FEATURE_HOUR_MV,
    ),
    backwards=(
        "DROP VIEW IF EXISTS feature_rollup_hour_mv",
        "DROP VIEW IF EXISTS feature_rollup_day_mv",
        "DROP TABLE IF EXISTS feature_rollup_day",
        "DROP TABLE IF EXISTS feature_rollup_hour",
        *(
            f"ALTER TABLE feature_window_stats DROP COLUMN IF EXISTS {name}"
            for name, _ in _HISTOGRAM
        ),
    ),
)
