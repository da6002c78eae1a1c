"""Driftline's Grafana dashboards, one per view of the metrics store.

Fleet overview, one deployment's drift, performance, latency, resources, alerts and dead
letters.

Window and drift panels read a :class:`~storage.clickhouse.grafana.sql.GatedQuery` (raw
windows on short ranges, hourly / daily roll-ups on long ones). Performance, resource,
alert and dead-letter panels read their raw tables: they hold one row per window and metric
(or per event), small next to the per-feature tables, and have no roll-up yet.

Every query filters on ``organization = ${organization:sqlstring}``; the organization
variable's own query lists the organizations the datasource's ClickHouse user may read, so
tenant isolation in Grafana rests on that user (a row policy per tenant), not on the
variable.

``python -m storage.clickhouse.grafana.dashboards deploy/grafana/dashboards`` writes the
JSON files; a test checks the committed files equal :func:`render_all`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from storage.clickhouse.grafana.model import Dashboard, Panel, Variable
from storage.clickhouse.grafana.sql import DRIFT, ORG_FILTER, WINDOWS, GatedQuery

__all__ = ["DASHBOARDS", "render_all", "write_all"]

_DEP = "deployment = ${deployment:sqlstring}"

ORGANIZATION = Variable(
    "organization",
    "Organization",
    "SELECT DISTINCT organization FROM window_rollup_day ORDER BY organization",
)
DEPLOYMENT = Variable(
    "deployment",
    "Deployment",
    f"SELECT DISTINCT deployment FROM window_rollup_day WHERE {ORG_FILTER} ORDER BY deployment",
)
_DRIFT_KEYS = f"FROM drift_rollup_day WHERE {ORG_FILTER} AND {_DEP}"
FEATURE = Variable(
    "feature", "Feature", f"SELECT DISTINCT feature {_DRIFT_KEYS} ORDER BY feature", multi=True
)
STATISTIC = Variable(
    "statistic", "Statistic", f"SELECT DISTINCT statistic {_DRIFT_KEYS} ORDER BY statistic"
)
METRIC = Variable(
    "metric",
    "Metric",
    f"SELECT DISTINCT metric FROM performance_metrics WHERE {ORG_FILTER} AND {_DEP} "
    "ORDER BY metric",
    multi=True,
)
RESOURCE = Variable(
    "resource",
    "Resource",
    f"SELECT DISTINCT resource FROM resource_metrics WHERE {ORG_FILTER} AND {_DEP} "
    "ORDER BY resource",
    multi=True,
)
ALERT_DEPLOYMENT = Variable(
    "deployment",
    "Deployment",
    f"SELECT DISTINCT deployment FROM alert_history WHERE {ORG_FILTER} ORDER BY deployment",
    multi=True,
)

# -- fleet overview ----------------------------------------------------------------------

_LATEST_ALERTS = f"""
SELECT fingerprint, argMax(state, changed_at) AS state, argMax(deployment, changed_at) AS dep,
       argMax(rule_id, changed_at) AS rule, max(changed_at) AS since,
       argMax(value, changed_at) AS last_value, argMax(message, changed_at) AS last_message
FROM alert_history
WHERE {ORG_FILTER} AND changed_at <= $__toTime{{where}}
GROUP BY fingerprint"""


def _firing(where: str = "") -> str:
    return _LATEST_ALERTS.replace("{where}", f" AND {where}" if where else "")


FLEET = Dashboard(
    uid="driftline-fleet",
    title="Driftline / Fleet overview",
    description="Every deployment of the organization: traffic, errors, drift and alerts.",
    variables=(ORGANIZATION,),
    panels=(
        Panel(
            "Deployments reporting",
            "stat",
            GatedQuery(
                WINDOWS,
                "toUInt64(uniqExact(deployment)) AS deployments",
                "organization",
                "deployments",
            ),
            ("deployments",),
        ),
        Panel(
            "Events",
            "stat",
            GatedQuery(WINDOWS, "@events AS events", "organization", "events"),
            ("events",),
            unit="short",
        ),
        Panel(
            "Error rate",
            "stat",
            GatedQuery(
                WINDOWS,
                "if(@events = 0, 0, @errors / @events) AS error_rate",
                "organization",
                "error_rate",
            ),
            ("error_rate",),
            unit="percentunit",
        ),
        Panel(
            "Alerts firing",
            "stat",
            f"SELECT toUInt64(countIf(state = 'firing')) AS firing FROM ({_firing()})",
            ("firing",),
            description="Alerts whose latest transition up to the range's end is 'firing'.",
        ),
        Panel(
            "Events per deployment",
            "timeseries",
            GatedQuery(
                WINDOWS,
                "@bucket AS time, deployment, @events AS events",
                "time, deployment",
                "time, deployment",
            ),
            ("time", "deployment", "events"),
            unit="short",
        ),
        Panel(
            "Error rate per deployment",
            "timeseries",
            GatedQuery(
                WINDOWS,
                "@bucket AS time, deployment, if(@events = 0, 0, @errors / @events) AS error_rate",
                "time, deployment",
                "time, deployment",
            ),
            ("time", "deployment", "error_rate"),
            unit="percentunit",
        ),
        Panel(
            "Deployments",
            "table",
            GatedQuery(
                WINDOWS,
                "deployment, @windows AS windows, @events AS events, @errors AS errors, "
                "if(events = 0, 0, errors / events) AS error_rate, "
                "@latency_p50 AS latency_p50_ms, @latency_p99_max AS latency_p99_ms_max",
                "deployment",
                "deployment",
            ),
            (
                "deployment",
                "windows",
                "events",
                "errors",
                "error_rate",
                "latency_p50_ms",
                "latency_p99_ms_max",
            ),
        ),
        Panel(
            "Drift by deployment",
            "table",
            GatedQuery(
                DRIFT,
                "deployment, @windows AS feature_windows, "
                "@drifted_windows AS drifted_feature_windows, "
                "drifted_feature_windows / feature_windows AS drifted_share, "
                "@drifted_features AS drifted_features",
                "deployment",
                "drifted_share DESC, deployment",
            ),
            (
                "deployment",
                "feature_windows",
                "drifted_feature_windows",
                "drifted_share",
                "drifted_features",
            ),
            description="Feature-windows judged drifted, over every statistic, in the range.",
        ),
        Panel(
            "Alerts firing now",
            "table",
            "SELECT dep AS deployment, rule AS rule_id, fingerprint, since, last_value, "
            f"last_message FROM ({_firing()}) WHERE state = 'firing' ORDER BY since DESC",
            ("deployment", "rule_id", "fingerprint", "since", "last_value", "last_message"),
        ),
    ),
)

# -- one deployment's drift --------------------------------------------------------------

_DRIFT_WHERE = (
    f"{_DEP} AND feature IN (${{feature:sqlstring}}) AND statistic = ${{statistic:sqlstring}}"
)


def _drift_series(select: str) -> GatedQuery:
    return GatedQuery(
        DRIFT, f"@bucket AS time, feature, {select}", "time, feature", "time, feature", _DRIFT_WHERE
    )


DRIFT_DASHBOARD = Dashboard(
    uid="driftline-drift",
    title="Driftline / Deployment drift",
    description="One deployment's drift per feature: statistic, p-value and drifted windows.",
    variables=(ORGANIZATION, DEPLOYMENT, FEATURE, STATISTIC),
    panels=(
        Panel(
            "Statistic per feature (mean over windows)",
            "timeseries",
            _drift_series("@value_avg AS value"),
            ("time", "feature", "value"),
        ),
        Panel(
            "p-value per feature (lowest window)",
            "timeseries",
            _drift_series("@p_value_min AS p_value"),
            ("time", "feature", "p_value"),
            description="Empty for statistics without a p-value (PSI, Wasserstein, ...).",
        ),
        Panel(
            "Drifted (any window in the bucket)",
            "state-timeline",
            _drift_series("toUInt8(@drifted_windows > 0) AS drifted"),
            ("time", "feature", "drifted"),
        ),
        Panel(
            "Share of windows drifted",
            "timeseries",
            _drift_series("@drifted_windows / @windows AS drifted_share"),
            ("time", "feature", "drifted_share"),
            unit="percentunit",
        ),
        Panel(
            "Features by drift",
            "table",
            GatedQuery(
                DRIFT,
                "feature, @windows AS windows, @drifted_windows AS drifted_windows, "
                "drifted_windows / windows AS drifted_share, @value_avg AS value_avg, "
                "@value_max AS value_max, @p_value_min AS p_value_min",
                "feature",
                "drifted_share DESC, value_max DESC, feature",
                _DRIFT_WHERE,
            ),
            (
                "feature",
                "windows",
                "drifted_windows",
                "drifted_share",
                "value_avg",
                "value_max",
                "p_value_min",
            ),
        ),
        Panel(
            "Latest window per feature",
            "table",
            "SELECT feature, max(window_start) AS last_window, "
            "argMax(value, window_start) AS value, argMax(p_value, window_start) AS p_value, "
            "argMax(threshold, window_start) AS threshold, "
            "argMax(drifted, window_start) AS drifted, "
            "argMax(current_size, window_start) AS current_size\n"
            f"FROM drift_results\nWHERE {ORG_FILTER} AND {_DRIFT_WHERE} "
            "AND $__timeFilter(window_start) AND window_start >= $__toTime - INTERVAL 1 DAY\n"
            "GROUP BY feature ORDER BY drifted DESC, feature",
            (
                "feature",
                "last_window",
                "value",
                "p_value",
                "threshold",
                "drifted",
                "current_size",
            ),
            description="The last window of each feature in the range's final day.",
        ),
    ),
)

# -- performance, latency, resources -----------------------------------------------------

_PERF = (
    f"FROM performance_metrics\nWHERE {ORG_FILTER} AND {_DEP} "
    "AND metric IN (${metric:sqlstring}) AND $__timeFilter(window_start)\n"
)

PERFORMANCE = Dashboard(
    uid="driftline-performance",
    title="Driftline / Performance",
    description="Model quality once labels arrive: accuracy, F1, MAE, ... per window.",
    variables=(ORGANIZATION, DEPLOYMENT, METRIC),
    panels=(
        Panel(
            "Metric per window",
            "timeseries",
            f"SELECT $__timeInterval(window_start) AS time, metric, avg(value) AS value\n{_PERF}"
            "GROUP BY time, metric ORDER BY time, metric",
            ("time", "metric", "value"),
        ),
        Panel(
            "Labelled predictions",
            "timeseries",
            "SELECT $__timeInterval(window_start) AS time, metric, "
            f"sum(sample_count) AS samples\n{_PERF}GROUP BY time, metric ORDER BY time, metric",
            ("time", "metric", "samples"),
        ),
        Panel(
            "Summary",
            "table",
            "SELECT metric, argMax(value, window_start) AS last, min(value) AS min_value, "
            "avg(value) AS mean_value, max(value) AS max_value, "
            f"sum(sample_count) AS samples\n{_PERF}GROUP BY metric ORDER BY metric",
            ("metric", "last", "min_value", "mean_value", "max_value", "samples"),
        ),
    ),
)


def _window_series(select: str) -> GatedQuery:
    return GatedQuery(WINDOWS, f"@bucket AS time, {select}", "time", "time", _DEP)


def _window_total(select: str, alias: str) -> GatedQuery:
    return GatedQuery(WINDOWS, f"{select} AS {alias}", "organization", alias, _DEP)


LATENCY = Dashboard(
    uid="driftline-latency",
    title="Driftline / Latency and traffic",
    description="One deployment's latency, throughput, errors and late events per window.",
    variables=(ORGANIZATION, DEPLOYMENT),
    panels=(
        Panel(
            "p99 (worst window)",
            "stat",
            _window_total("@latency_p99_max", "latency_p99_ms_max"),
            ("latency_p99_ms_max",),
            unit="ms",
        ),
        Panel(
            "p50 (event-weighted)",
            "stat",
            _window_total("@latency_p50", "latency_p50_ms"),
            ("latency_p50_ms",),
            unit="ms",
        ),
        Panel(
            "Error rate",
            "stat",
            _window_total("if(@events = 0, 0, @errors / @events)", "error_rate"),
            ("error_rate",),
            unit="percentunit",
        ),
        Panel(
            "Late events",
            "stat",
            _window_total("@late", "late"),
            ("late",),
            description="Events that arrived after their window closed (allowed lateness).",
        ),
        Panel(
            "Latency (ms)",
            "timeseries",
            _window_series("@latency_p50 AS p50_ms, @latency_p99_max AS p99_ms_max"),
            ("time", "p50_ms", "p99_ms_max"),
            unit="ms",
            description="p50: per-window p50 weighted by events; p99: the worst window's p99.",
        ),
        Panel(
            "Events and errors per bucket",
            "timeseries",
            _window_series("@events AS events, @errors AS errors"),
            ("time", "events", "errors"),
            unit="short",
        ),
        Panel(
            "Error rate",
            "timeseries",
            _window_series("if(@events = 0, 0, @errors / @events) AS error_rate"),
            ("time", "error_rate"),
            unit="percentunit",
        ),
        Panel(
            "Late events per bucket",
            "timeseries",
            _window_series("@late AS late"),
            ("time", "late"),
        ),
    ),
)

_RES = (
    f"FROM resource_metrics\nWHERE {ORG_FILTER} AND {_DEP} "
    "AND resource IN (${resource:sqlstring}) AND $__timeFilter(ts)\n"
)

RESOURCES = Dashboard(
    uid="driftline-resources",
    title="Driftline / Resources",
    description="CPU, memory, GPU, ... reported by the model servers of one deployment.",
    variables=(ORGANIZATION, DEPLOYMENT, RESOURCE),
    panels=(
        Panel(
            "Mean over instances",
            "timeseries",
            f"SELECT $__timeInterval(ts) AS time, resource, avg(value) AS value\n{_RES}"
            "GROUP BY time, resource ORDER BY time, resource",
            ("time", "resource", "value"),
        ),
        Panel(
            "Highest per instance",
            "timeseries",
            f"SELECT $__timeInterval(ts) AS time, resource, instance, max(value) AS value\n{_RES}"
            "GROUP BY time, resource, instance ORDER BY time, resource, instance",
            ("time", "resource", "instance", "value"),
        ),
        Panel(
            "Latest per instance",
            "table",
            "SELECT instance, resource, argMax(value, ts) AS last, max(ts) AS at, "
            f"max(value) AS max_value\n{_RES}GROUP BY instance, resource "
            "ORDER BY instance, resource",
            ("instance", "resource", "last", "at", "max_value"),
        ),
    ),
)

# -- alerts and dead letters -------------------------------------------------------------

_ALERT_DEP = "deployment IN (${deployment:sqlstring})"
_ALERTS = f"FROM alert_history\nWHERE {ORG_FILTER} AND {_ALERT_DEP} AND $__timeFilter(changed_at)\n"

ALERTS = Dashboard(
    uid="driftline-alerts",
    title="Driftline / Alerts",
    description="Alert state transitions (pending, firing, resolved) and what fires now.",
    variables=(ORGANIZATION, ALERT_DEPLOYMENT),
    time_from="now-7d",
    panels=(
        Panel(
            "Transitions",
            "stat",
            f"SELECT toUInt64(count()) AS transitions {_ALERTS}",
            ("transitions",),
        ),
        Panel(
            "Firing now",
            "stat",
            f"SELECT toUInt64(countIf(state = 'firing')) AS firing FROM ({_firing(_ALERT_DEP)})",
            ("firing",),
        ),
        Panel(
            "Transitions per state",
            "timeseries",
            "SELECT $__timeInterval(changed_at) AS time, state, toUInt64(count()) AS transitions "
            f"{_ALERTS}GROUP BY time, state ORDER BY time, state",
            ("time", "state", "transitions"),
        ),
        Panel(
            "Alerts firing now",
            "table",
            "SELECT dep AS deployment, rule AS rule_id, fingerprint, since, last_value, "
            f"last_message FROM ({_firing(_ALERT_DEP)}) WHERE state = 'firing' "
            "ORDER BY since DESC",
            ("deployment", "rule_id", "fingerprint", "since", "last_value", "last_message"),
        ),
        Panel(
            "Alert history",
            "table",
            "SELECT changed_at, state, deployment, rule_id, alert_id, fingerprint, value, message "
            f"{_ALERTS}ORDER BY changed_at DESC, alert_id LIMIT 1000",
            (
                "changed_at",
                "state",
                "deployment",
                "rule_id",
                "alert_id",
                "fingerprint",
                "value",
                "message",
            ),
        ),
    ),
)

_DEAD = f"FROM dead_letters\nWHERE {ORG_FILTER} AND $__timeFilter(received_at)\n"

DEAD_LETTERS = Dashboard(
    uid="driftline-dead-letters",
    title="Driftline / Dead letters",
    description="Events the pipeline refused, with the reason, source and raw payload.",
    variables=(ORGANIZATION,),
    panels=(
        Panel("Dead letters", "stat", f"SELECT toUInt64(count()) AS letters {_DEAD}", ("letters",)),
        Panel(
            "Dead letters per source",
            "timeseries",
            "SELECT $__timeInterval(received_at) AS time, source, toUInt64(count()) AS letters "
            f"{_DEAD}GROUP BY time, source ORDER BY time, source",
            ("time", "source", "letters"),
        ),
        Panel(
            "By reason",
            "table",
            "SELECT source, reason, toUInt64(count()) AS letters, min(received_at) AS first_seen, "
            f"max(received_at) AS last_seen {_DEAD}GROUP BY source, reason "
            "ORDER BY letters DESC, source, reason LIMIT 100",
            ("source", "reason", "letters", "first_seen", "last_seen"),
        ),
        Panel(
            "Latest",
            "table",
            "SELECT received_at, source, deployment, reason, "
            f"substring(payload, 1, 256) AS payload_head {_DEAD}"
            "ORDER BY received_at DESC LIMIT 500",
            ("received_at", "source", "deployment", "reason", "payload_head"),
            description="The first 256 bytes of each payload.",
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (
    FLEET,
    DRIFT_DASHBOARD,
    PERFORMANCE,
    LATENCY,
    RESOURCES,
    ALERTS,
    DEAD_LETTERS,
)


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard, as committed under deploy/grafana."""
    out: dict[str, str] = {}
    for dashboard in DASHBOARDS:
        data: dict[str, Any] = dashboard.render()
        out[f"{dashboard.uid}.json"] = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return out


def write_all(folder: Path) -> list[Path]:
    """Write every dashboard's JSON into ``folder``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a developer command
    for written_path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written_path)
