"""Reads for the API and dashboards: series over a time range with a step, per tenant.

Every value from a caller (organization, deployment, features, statistic, times, step,
limit) is a bound query parameter (``{name:Type}``), never formatted into the SQL; the
only formatted parts are table and column names picked from constants in this module.

Buckets are ``toStartOfInterval(time, step)`` in UTC, aligned to the Unix epoch; a bucket
holds the windows that *start* inside it. Steps that are whole days read the daily
roll-up, whole hours the hourly roll-up, anything else the raw windows
(``use_rollups=False`` forces raw: same numbers, slower on long ranges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from storage.clickhouse.client import MetricsClient
from storage.errors import StorageInputError

__all__ = [
    "MAX_POINTS",
    "TimeRange",
    "alert_history",
    "dead_letters",
    "drift_series",
    "metric_series",
    "window_series",
]

MAX_POINTS = 10_000  # buckets per series a single read may ask for
MAX_ROWS = 10_000  # rows a listing may return

_TENANT = "organization = {organization:String} AND deployment = {deployment:String}"
_RAW_TIME = (
    "{time} >= fromUnixTimestamp64Milli({{start_ms:Int64}}, 'UTC') "
    "AND {time} < fromUnixTimestamp64Milli({{end_ms:Int64}}, 'UTC')"
)
_BUCKET = "toDateTime(toStartOfInterval({time}, INTERVAL {{step:UInt32}} SECOND, 'UTC'), 'UTC')"


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` read in buckets of ``step_seconds``; naive datetimes mean UTC."""

    start: datetime
    end: datetime
    step_seconds: int

    def params(self) -> dict[str, Any]:
        """Return the validated bound parameters ``start_ms``, ``end_ms`` and ``step``."""
        start_ms, end_ms = _millis(self.start), _millis(self.end)
        if end_ms <= start_ms:
            raise StorageInputError("time range end must be after its start")
        if not isinstance(self.step_seconds, int) or self.step_seconds < 1:
            raise StorageInputError("step must be a whole number of seconds >= 1")
        if (end_ms - start_ms) / 1000 / self.step_seconds > MAX_POINTS:
            raise StorageInputError(f"range / step exceeds {MAX_POINTS} points: widen the step")
        return {"start_ms": start_ms, "end_ms": end_ms, "step": self.step_seconds}


def _millis(moment: datetime) -> int:
    if not isinstance(moment, datetime):
        raise StorageInputError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _rollup(step: int, use_rollups: bool) -> str:
    if use_rollups and step % 86_400 == 0:
        return "day"
    if use_rollups and step % 3_600 == 0:
        return "hour"
    return "raw"


def _where(time: str) -> str:
    return f"{_TENANT} AND {_RAW_TIME.format(time=time)}"


_DRIFT_FILTER = (
    "AND (empty({features:Array(String)}) OR has({features:Array(String)}, feature)) "
    "AND ({statistic:String} = '' OR statistic = {statistic:String})"
)
_DRIFT_GROUP = "GROUP BY bucket, feature, statistic ORDER BY feature, statistic, bucket"
_DRIFT_SQL = {
    "raw": f"""
SELECT {_BUCKET.format(time="window_start")} AS bucket, feature, statistic,
       toUInt64(count()) AS windows, toUInt64(countIf(drifted)) AS drifted_windows,
       avg(value) AS value_avg, max(value) AS value_max, min(p_value) AS p_value_min
FROM drift_results WHERE {_where("window_start")} {_DRIFT_FILTER} {_DRIFT_GROUP}""",
    **{
        level: f"""
SELECT {_BUCKET.format(time=level)} AS bucket, feature, statistic,
       sum(windows) AS windows, sum(drifted_windows) AS drifted_windows,
       sum(value_sum) / sum(r.windows) AS value_avg, max(value_max) AS value_max,
       min(p_value_min) AS p_value_min
FROM drift_rollup_{level} AS r WHERE {_where(level)} {_DRIFT_FILTER} {_DRIFT_GROUP}"""
        for level in ("hour", "day")
    },
}

_WINDOW_SQL = {
    "raw": f"""
SELECT {_BUCKET.format(time="window_start")} AS bucket,
       toUInt64(count()) AS windows, sum(event_count) AS events, sum(error_count) AS errors,
       if(events = 0, 0, errors / events) AS error_rate,
       sum(latency_p50_ms * event_count) / sum(event_count) AS latency_p50_avg,
       max(latency_p99_ms) AS latency_p99_max
FROM window_aggregates WHERE {_where("window_start")} GROUP BY bucket ORDER BY bucket""",
    **{
        level: f"""
SELECT {_BUCKET.format(time=level)} AS bucket,
       sum(windows) AS windows, sum(events) AS events, sum(errors) AS errors,
       if(events = 0, 0, errors / events) AS error_rate,
       sum(latency_p50_weighted) / sum(r.events) AS latency_p50_avg,
       max(latency_p99_max) AS latency_p99_max
FROM window_rollup_{level} AS r WHERE {_where(level)} GROUP BY bucket ORDER BY bucket"""
        for level in ("hour", "day")
    },
}

_METRIC_SQL = {
    (table, name, time): f"""
SELECT {_BUCKET.format(time=time)} AS bucket, {name} AS name,
       avg(value) AS value_avg, min(value) AS value_min, max(value) AS value_max,
       toUInt64(count()) AS points
FROM {table} WHERE {_where(time)}
  AND (empty({{names:Array(String)}}) OR has({{names:Array(String)}}, {name}))
GROUP BY bucket, name ORDER BY name, bucket"""
    for table, name, time in (
        ("performance_metrics", "metric", "window_start"),
        ("resource_metrics", "resource", "ts"),
    )
}

_ALERTS_SQL = f"""
SELECT changed_at, alert_id, rule_id, deployment, fingerprint, state, value, message, labels
FROM alert_history
WHERE organization = {{organization:String}} AND {_RAW_TIME.format(time="changed_at")}
  AND ({{deployment:String}} = '' OR deployment = {{deployment:String}})
ORDER BY changed_at DESC, alert_id LIMIT {{limit:UInt32}}"""

_DEAD_SQL = f"""
SELECT received_at, source, reason, deployment, payload
FROM dead_letters
WHERE organization = {{organization:String}} AND {_RAW_TIME.format(time="received_at")}
ORDER BY received_at DESC LIMIT {{limit:UInt32}}"""


_FLEET_SQL = f"""
WITH latest AS (
    SELECT deployment, max(window_start) AS last_window
    FROM drift_results
    WHERE organization = {{organization:String}} AND {_RAW_TIME.format(time="window_start")}
    GROUP BY deployment
)
SELECT d.deployment AS deployment, latest.last_window AS last_window,
       toUInt64(countDistinct(d.feature)) AS features,
       toUInt64(countDistinctIf(d.feature, d.drifted)) AS drifted_features,
       groupUniqArrayIf(d.feature, d.drifted) AS drifted,
       max(d.current_size) AS window_events
FROM drift_results AS d
INNER JOIN latest ON d.deployment = latest.deployment AND d.window_start = latest.last_window
WHERE d.organization = {{organization:String}}
GROUP BY d.deployment, latest.last_window
ORDER BY drifted_features DESC, deployment
LIMIT {{limit:UInt32}}"""


def _tenant(organization: str, deployment: str) -> dict[str, Any]:
    if not isinstance(organization, str) or not organization:
        raise StorageInputError("organization must be a non-empty string")
    if not isinstance(deployment, str):
        raise StorageInputError("deployment must be a string")
    return {"organization": organization, "deployment": deployment}


def _limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise StorageInputError(f"limit must be between 1 and {MAX_ROWS}")
    return limit


def drift_series(
    client: MetricsClient,
    *,
    organization: str,
    deployment: str,
    time_range: TimeRange,
    features: Sequence[str] = (),
    statistic: str = "",
    use_rollups: bool = True,
) -> pa.Table:
    """Drift per bucket, feature and statistic of one deployment.

    Columns: ``bucket`` (UTC), ``feature``, ``statistic``, ``windows`` (windows in the
    bucket), ``drifted_windows``, ``value_avg`` (mean of the statistic over those windows),
    ``value_max``, ``p_value_min`` (NULL when the statistic has no p-value). ``features``
    empty means all; ``statistic`` empty means all.
    """
    params = _tenant(organization, deployment) | time_range.params()
    params |= {"features": [str(f) for f in features], "statistic": str(statistic)}
    sql = _DRIFT_SQL[_rollup(time_range.step_seconds, use_rollups)]
    return client.query_arrow(sql, params)


def window_series(
    client: MetricsClient,
    *,
    organization: str,
    deployment: str,
    time_range: TimeRange,
    use_rollups: bool = True,
) -> pa.Table:
    """Traffic and latency per bucket of one deployment.

    Columns: ``bucket``, ``windows``, ``events``, ``errors``, ``error_rate`` (errors /
    events, 0 without events), ``latency_p50_avg`` (per-window p50 in ms averaged with the
    event counts as weights), ``latency_p99_max`` (worst per-window p99, ms).
    """
    params = _tenant(organization, deployment) | time_range.params()
    return client.query_arrow(_WINDOW_SQL[_rollup(time_range.step_seconds, use_rollups)], params)


def metric_series(
    client: MetricsClient,
    *,
    kind: str,
    organization: str,
    deployment: str,
    time_range: TimeRange,
    names: Sequence[str] = (),
) -> pa.Table:
    """Read performance (``kind="performance"``) or resource (``kind="resources"``) series.

    Columns: ``bucket``, ``name`` (metric or resource), ``value_avg``, ``value_min``,
    ``value_max``, ``points``. ``names`` empty means all.
    """
    key = {
        "performance": ("performance_metrics", "metric", "window_start"),
        "resources": ("resource_metrics", "resource", "ts"),
    }.get(kind)
    if key is None:
        raise StorageInputError("kind must be 'performance' or 'resources'")
    params = _tenant(organization, deployment) | time_range.params()
    params["names"] = [str(name) for name in names]
    return client.query_arrow(_METRIC_SQL[key], params)


def alert_history(
    client: MetricsClient,
    *,
    organization: str,
    start: datetime,
    end: datetime,
    deployment: str = "",
    limit: int = 1000,
) -> pa.Table:
    """Alert state transitions in ``[start, end)``, newest first (``deployment`` optional)."""
    params = _tenant(organization, deployment) | {
        "start_ms": _millis(start),
        "end_ms": _millis(end),
        "limit": _limit(limit),
    }
    return client.query_arrow(_ALERTS_SQL, params)


def dead_letters(
    client: MetricsClient,
    *,
    organization: str,
    start: datetime,
    end: datetime,
    limit: int = 1000,
) -> pa.Table:
    """Dead letters received in ``[start, end)``, newest first."""
    params = _tenant(organization, "") | {
        "start_ms": _millis(start),
        "end_ms": _millis(end),
        "limit": _limit(limit),
    }
    return client.query_arrow(_DEAD_SQL, params)


def fleet(
    client: MetricsClient,
    *,
    organization: str,
    start: datetime,
    end: datetime,
    limit: int = 1000,
) -> pa.Table:
    """Every deployment's latest window in ``[start, end)`` with its drifted features.

    Worst first: most drifted features, then by name.
    """
    params = _tenant(organization, "") | {
        "start_ms": _millis(start),
        "end_ms": _millis(end),
        "limit": _limit(limit),
    }
    return client.query_arrow(_FLEET_SQL, params)
