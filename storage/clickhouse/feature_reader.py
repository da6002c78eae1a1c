"""Reads of per-feature window statistics, custom metrics and one window's histogram.

The same rules as :mod:`storage.clickhouse.reader`: every caller's value is a bound query
parameter, buckets are ``toStartOfInterval(time, step)`` in UTC holding the windows that
start in them, and feature statistics read the daily or hourly roll-up when ``step`` is a
whole number of days or hours (raw windows otherwise). The roll-ups' sums and the raw path's
are the same SQL (:mod:`storage.clickhouse.migrations.m0005_feature_stats`), so both give the
same numbers. Custom metrics are read from the raw windows, as performance metrics are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from storage.clickhouse.client import MetricsClient
from storage.clickhouse.migrations.m0005_feature_stats import QUANTILES, RAW_SUMS, ROLLUP_SUMS
from storage.clickhouse.reader import _BUCKET, TimeRange, _millis, _rollup, _tenant, _where
from storage.errors import StorageInputError

__all__ = ["custom_metric_series", "feature_series", "window_drift", "window_feature"]

_FEATURES = "(empty({features:Array(String)}) OR has({features:Array(String)}, feature))"


def _ratio(weighted: str) -> str:
    return f"if(numeric_count = 0, nan, {weighted} / numeric_count)"


_STATS = ",\n       ".join(
    [
        "windows",
        "value_count AS count",
        "null_count",
        f"{_ratio('mean_weighted')} AS mean",
        "if(numeric_count = 0, nan, sqrt(greatest(square_weighted / numeric_count"
        " - pow(mean_weighted / numeric_count, 2), 0))) AS std",
        "if(isInfinite(min_value), nan, min_value) AS min",
        "if(isInfinite(max_value), nan, max_value) AS max",
        *(f"{_ratio(f'{q}_weighted')} AS {q}" for q in QUANTILES),
    ]
)


def _feature_sql(level: str) -> str:
    time, source, sums = (
        ("window_start", "feature_window_stats", RAW_SUMS)
        if level == "raw"
        else (level, f"feature_rollup_{level}", ROLLUP_SUMS)
    )
    return f"""
SELECT bucket, feature,
       {_STATS}
FROM (
    SELECT {_BUCKET.format(time=time)} AS bucket, feature,
           {sums}
    FROM {source} WHERE {_where(time)} AND {_FEATURES}
    GROUP BY bucket, feature
)
ORDER BY feature, bucket"""


_FEATURE_SQL = {level: _feature_sql(level) for level in ("raw", "hour", "day")}

_CUSTOM_SQL = f"""
SELECT {_BUCKET.format(time="window_start")} AS bucket, name,
       avg(value) AS value_avg, min(value) AS value_min, max(value) AS value_max,
       toUInt64(count()) AS points
FROM window_aggregates
ARRAY JOIN mapKeys(custom_metrics) AS name, mapValues(custom_metrics) AS value
WHERE {_where("window_start")}
  AND (empty({{names:Array(String)}}) OR has({{names:Array(String)}}, name))
GROUP BY bucket, name ORDER BY name, bucket"""

_WINDOW = (
    "organization = {organization:String} AND deployment = {deployment:String} "
    "AND window_start = fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC') "
    "AND feature = {feature:String}"
)

_WINDOW_FEATURE_SQL = f"""
SELECT window_start, window_end, count, null_count, min, max,
       histogram_edges, histogram_counts, category_counts
FROM feature_window_stats WHERE {_WINDOW}
ORDER BY inserted_at DESC LIMIT 1"""

_WINDOW_DRIFT_SQL = f"""
SELECT statistic, value, p_value, threshold, drifted, reference_size, current_size
FROM drift_results WHERE {_WINDOW}
ORDER BY inserted_at DESC, statistic LIMIT 1 BY statistic"""


def feature_series(
    client: MetricsClient,
    *,
    organization: str,
    deployment: str,
    time_range: TimeRange,
    features: Sequence[str] = (),
    use_rollups: bool = True,
) -> pa.Table:
    """Statistics per bucket and feature of one deployment's windows.

    Columns: ``bucket``, ``feature``, ``windows``, ``count`` (values seen), ``null_count``,
    ``mean`` and ``std`` (of all the bucket's values, population), ``min``, ``max``, and
    ``p05`` ... ``p95`` (count-weighted means of the windows' quantile estimates). NaN
    where the feature has no numeric value (categorical features). ``features`` empty
    means all.
    """
    params = _tenant(organization, deployment) | time_range.params()
    params["features"] = [str(f) for f in features]
    return client.query_arrow(_FEATURE_SQL[_rollup(time_range.step_seconds, use_rollups)], params)


def custom_metric_series(
    client: MetricsClient,
    *,
    organization: str,
    deployment: str,
    time_range: TimeRange,
    names: Sequence[str] = (),
) -> pa.Table:
    """Custom metrics per bucket (each window's mean of a metric is one point).

    Columns: ``bucket``, ``name``, ``value_avg``, ``value_min``, ``value_max``, ``points``
    (windows with the metric); ``names`` empty means all.
    """
    params = _tenant(organization, deployment) | time_range.params()
    params["names"] = [str(name) for name in names]
    return client.query_arrow(_CUSTOM_SQL, params)


def _window(organization: str, deployment: str, start: datetime, feature: str) -> dict[str, Any]:
    if not isinstance(feature, str) or not feature:
        raise StorageInputError("feature must be a non-empty string")
    return _tenant(organization, deployment) | {"start_ms": _millis(start), "feature": feature}


def window_feature(
    client: MetricsClient, *, organization: str, deployment: str, start: datetime, feature: str
) -> pa.Table:
    """The statistics row of one feature in the window starting at ``start`` (0 or 1 row).

    With its histogram (see :mod:`~storage.clickhouse.migrations.m0005_feature_stats`);
    the latest written when a window was written twice.
    """
    params = _window(organization, deployment, start, feature)
    return client.query_arrow(_WINDOW_FEATURE_SQL, params)


def window_drift(
    client: MetricsClient, *, organization: str, deployment: str, start: datetime, feature: str
) -> pa.Table:
    """The drift results of one feature in the window starting at ``start``: a row per statistic."""
    params = _window(organization, deployment, start, feature)
    return client.query_arrow(_WINDOW_DRIFT_SQL, params)
