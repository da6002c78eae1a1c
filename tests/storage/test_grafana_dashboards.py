"""The Grafana dashboards: structure, provisioning, macro expansion, and every panel's SQL
run against chDB holding sample data written through storage's own writer."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from storage.clickhouse.client import connect
from storage.clickhouse.grafana import DASHBOARDS, MacroError, QueryContext, expand, render_all
from storage.clickhouse.grafana.model import DATASOURCE, PLUGIN_ID, SCHEMA_VERSION, Panel
from storage.clickhouse.grafana.sql import DRIFT, LEVELS, ORG_FILTER, WINDOWS, GatedQuery
from storage.clickhouse.migrations import migrate
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch

from .conftest import NO_WAIT, PARAMS

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
ORG, OTHER = "acme", "globex"  # every string of OTHER's data contains "globex"
DEPLOYMENTS = {ORG: ["fraud-v1", "fraud-v2", "churn"], OTHER: ["globex-dep"]}
FEATURES = {ORG: ["amount", "age", "country", "o'clock"], OTHER: ["globex_f"]}
DAYS = 4
T0 = datetime(2024, 3, 1, tzinfo=UTC)
T_END = T0 + timedelta(days=DAYS)
RAW_TABLES = {str(table) for table in MetricsTable}
TABLES = RAW_TABLES | {
    f"{prefix}_{level}" for prefix in ("drift_rollup", "window_rollup") for level in ("hour", "day")
}
PANELS = [(d, p) for d in DASHBOARDS for p in d.panels]

# (name, range, interval): raw windows, hourly roll-up, daily roll-up
CONTEXTS = {
    "raw-6h": (T_END - timedelta(hours=6), T_END, 60.0),
    "hour-4d": (T0, T_END, 1800.0),
    "day-4d": (T0, T_END, 86_400.0),
}


def _context(name: str, org: str = ORG) -> QueryContext:
    start, end, interval = CONTEXTS[name]
    return QueryContext(
        start=start,
        end=end,
        interval_seconds=interval,
        variables={
            "organization": org,
            "deployment": DEPLOYMENTS[org][0],
            "feature": FEATURES[org],
            "statistic": "ks",
            "metric": ["accuracy", "f1"] if org == ORG else ["globex_m"],
            "resource": ["cpu", "memory"] if org == ORG else ["globex_r"],
        },
    )


def _alert_context(ctx: QueryContext, org: str) -> QueryContext:
    variables = dict(ctx.variables) | {"deployment": [*DEPLOYMENTS[org], ""]}
    return QueryContext(ctx.start, ctx.end, ctx.interval_seconds, variables)


def _expanded(dashboard_uid: str, sql: str, name: str, org: str = ORG) -> str:
    ctx = _context(name, org)
    if dashboard_uid == "driftline-alerts":
        ctx = _alert_context(ctx, org)
    return expand(sql, ctx)


# -- sample data -------------------------------------------------------------------------


def _windows(deployment: str, minutes: int = 5) -> tuple[int, np.ndarray]:
    n = DAYS * 24 * 60 // minutes
    starts = np.datetime64(T0.replace(tzinfo=None), "ms") + np.arange(n) * np.timedelta64(
        minutes, "m"
    )
    return n, starts


def _load(client, org: str) -> None:
    rng = np.random.default_rng(len(org))
    features = FEATURES[org]
    for d, deployment in enumerate(DEPLOYMENTS[org]):
        n, starts = _windows(deployment)
        ends = starts + np.timedelta64(5, "m")
        write_batch(
            client,
            MetricsTable.WINDOW_AGGREGATES,
            organization=org,
            batch_id=f"w/{deployment}",
            columns={
                "deployment": np.full(n, deployment, dtype=object),
                "window_start": starts,
                "window_end": ends,
                "event_count": rng.integers(50, 150, n).astype(np.uint64),
                "error_count": rng.integers(0, 5, n).astype(np.uint64),
                "late_count": rng.integers(0, 2, n).astype(np.uint64),
                "latency_p50_ms": rng.uniform(5, 10, n),
                "latency_p90_ms": rng.uniform(10, 20, n),
                "latency_p99_ms": rng.uniform(20, 80, n),
                "prediction_mean": rng.uniform(0, 1, n),
                "prediction_std": rng.uniform(0, 1, n),
            },
        )
        for statistic in ("ks", "psi"):
            rows = n * len(features)
            value = rng.uniform(0, 0.3, rows)
            write_batch(
                client,
                MetricsTable.DRIFT_RESULTS,
                organization=org,
                batch_id=f"d/{deployment}/{statistic}",
                columns={
                    "deployment": np.full(rows, deployment, dtype=object),
                    "window_start": np.repeat(starts, len(features)),
                    "window_end": np.repeat(ends, len(features)),
                    "feature": np.tile(np.array(features, dtype=object), n),
                    "statistic": np.full(rows, statistic, dtype=object),
                    "value": value,
                    "p_value": rng.uniform(0, 1, rows)
                    if statistic == "ks"
                    else np.full(rows, np.nan),
                    "threshold": np.full(rows, 0.2),
                    "drifted": value > 0.2 + 0.05 * d,
                    "reference_size": np.full(rows, 1000, np.uint64),
                    "current_size": np.full(rows, 100, np.uint64),
                },
            )
        metrics = ["accuracy", "f1"] if org == ORG else ["globex_m"]
        rows = n * len(metrics)
        write_batch(
            client,
            MetricsTable.PERFORMANCE_METRICS,
            organization=org,
            batch_id=f"p/{deployment}",
            columns={
                "deployment": np.full(rows, deployment, dtype=object),
                "window_start": np.repeat(starts, len(metrics)),
                "window_end": np.repeat(ends, len(metrics)),
                "metric": np.tile(np.array(metrics, dtype=object), n),
                "value": rng.uniform(0.7, 0.95, rows),
                "sample_count": rng.integers(10, 40, rows).astype(np.uint64),
            },
        )
        resources = ["cpu", "memory"] if org == ORG else ["globex_r"]
        instances = ["pod-0", "pod-1"] if org == ORG else ["globex-pod"]
        pairs = [(r, i) for r in resources for i in instances]
        rows = n * len(pairs)
        write_batch(
            client,
            MetricsTable.RESOURCE_METRICS,
            organization=org,
            batch_id=f"r/{deployment}",
            columns={
                "deployment": np.full(rows, deployment, dtype=object),
                "ts": np.repeat(starts, len(pairs)),
                "resource": np.tile(np.array([r for r, _ in pairs], dtype=object), n),
                "instance": np.tile(np.array([i for _, i in pairs], dtype=object), n),
                "value": rng.uniform(0, 100, rows),
            },
        )
    # alerts: three fingerprints walk pending -> firing (-> resolved); the last stays firing
    states, fingerprints, deps, times = [], [], [], []
    for k, deployment in enumerate(DEPLOYMENTS[org]):
        walk = (
            ["pending", "firing", "resolved"]
            if k < len(DEPLOYMENTS[org]) - 1
            else [
                "pending",
                "firing",
            ]
        )
        for step, state in enumerate(walk):
            states.append(state)
            fingerprints.append(f"{org}-fp-{k}")
            deps.append(deployment)
            times.append(
                # in the last 6 hours of the data: every context's range holds them
                np.datetime64(T_END.replace(tzinfo=None), "ms")
                - np.timedelta64(5, "h")
                + np.timedelta64(k * 60 + step * 10, "m")
            )
    m = len(states)
    write_batch(
        client,
        MetricsTable.ALERT_HISTORY,
        organization=org,
        batch_id="alerts",
        columns={
            "alert_id": np.array([f"{org}-alert-{i}" for i in range(m)], dtype=object),
            "rule_id": np.array([f"{org}-rule-{fp[-1]}" for fp in fingerprints], dtype=object),
            "deployment": np.array(deps, dtype=object),
            "fingerprint": np.array(fingerprints, dtype=object),
            "state": np.array(states, dtype=object),
            "changed_at": np.array(times, dtype="datetime64[ms]"),
            "value": rng.uniform(0, 1, m),
            "message": np.array([f"{org} drift on {d}" for d in deps], dtype=object),
        },
    )
    letters = 40
    write_batch(
        client,
        MetricsTable.DEAD_LETTERS,
        organization=org,
        batch_id="dead",
        columns={
            "received_at": np.datetime64(T0.replace(tzinfo=None), "ms")
            + np.arange(letters) * np.timedelta64(DAYS * 24 * 60 // letters, "m")
            + np.timedelta64(1, "m"),
            "source": np.array([f"{org}-{s}" for s in ("http", "kafka")] * (letters // 2), object),
            "reason": np.array([f"{org} bad {i % 3}" for i in range(letters)], dtype=object),
            "payload": [f"{org} payload {i}".encode() for i in range(letters)],
            "deployment": np.array(
                [DEPLOYMENTS[org][i % 2 % len(DEPLOYMENTS[org])] for i in range(letters)], object
            ),
        },
    )


@pytest.fixture(scope="module")
def sample(chdb_folder):
    database = f"grafana_{uuid.uuid4().hex[:10]}"
    with connect(f"chdb://{chdb_folder}?database={database}", retry=NO_WAIT) as client:
        migrate(client, PARAMS)
        _load(client, ORG)
        _load(client, OTHER)
        yield client
        client.command(f"DROP DATABASE IF EXISTS {database}")


def _describe(client, sql: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in client.query_rows(f"DESCRIBE TABLE ({sql})")]


def _base(type_name: str) -> str:
    for wrapper in ("Nullable", "LowCardinality"):
        if type_name.startswith(f"{wrapper}("):
            return _base(type_name[len(wrapper) + 1 : -1])
    return type_name


def _numeric(type_name: str) -> bool:
    return re.fullmatch(r"U?Int\d+|Float\d+|Decimal.*|Bool", _base(type_name)) is not None


def _time(type_name: str) -> bool:
    return _base(type_name).startswith("DateTime")


def _string(type_name: str) -> bool:
    return _base(type_name) == "String"


# -- files and structure -----------------------------------------------------------------


def test_committed_json_matches_the_code():
    rendered = render_all()
    on_disk = {
        p.name: p.read_text(encoding="utf-8") for p in (GRAFANA / "dashboards").glob("*.json")
    }
    assert on_disk == rendered, (
        "run: python -m storage.clickhouse.grafana.dashboards deploy/grafana/dashboards"
    )


def test_dashboards_are_well_formed():
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert len(files) == 7
    uids = set()
    for path in files:
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] not in uids
        uids.add(board["uid"])
        assert board["schemaVersion"] == SCHEMA_VERSION
        assert board["title"]
        assert "id" not in board  # provisioning assigns ids
        variables = [v["name"] for v in board["templating"]["list"]]
        assert variables[0] == "organization"
        assert len(set(variables)) == len(variables)
        for variable in board["templating"]["list"]:
            assert variable["datasource"] == DATASOURCE
            assert variable["query"].strip().upper().startswith("SELECT")
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board["panels"]:
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE
                assert target["editorType"] == "sql"
                assert target["format"] == (
                    0 if panel["type"] in {"timeseries", "state-timeline"} else 1
                )
                assert target["rawSql"]
                used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}", target["rawSql"]))
                assert used <= set(variables), (panel["title"], used - set(variables))
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24
    assert len(uids) == len(DASHBOARDS)


def test_provisioning_files_use_the_plugin_and_no_secrets():
    sources = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/driftline-clickhouse.yaml").read_text()
    )
    (source,) = sources["datasources"]
    assert source["type"] == PLUGIN_ID
    assert source["uid"] == DATASOURCE["uid"]
    for section in ("jsonData", "secureJsonData"):
        for key, value in source[section].items():
            if key != "protocol":
                assert re.fullmatch(r"\$\{DRIFTLINE_GRAFANA_\w+\}", str(value)), (key, value)
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/driftline.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_every_query_filters_on_the_organization():
    queries = [(p.title, p.sql) for _, p in PANELS]
    queries += [
        (v.name, v.sql) for d in DASHBOARDS for v in d.variables if v.name != "organization"
    ]
    for title, sql in queries:
        reads = re.findall(r"\bFROM\s+(\w+)", sql)
        tables = [t for t in reads if t in TABLES]
        assert tables, title
        assert len(tables) == len(reads), (title, reads)  # no table this test does not know
        assert sql.count(ORG_FILTER) == len(tables), title  # one filter per table read


# -- the macro expander ------------------------------------------------------------------

CTX = QueryContext(
    start=datetime(2024, 3, 1, 0, 0, 0, 500_000, tzinfo=UTC),
    end=datetime(2024, 3, 2, tzinfo=UTC),
    interval_seconds=0.2,
    variables={"org": "o'x", "features": ["a", "b'c"], "one": "dep"},
)


def test_macros_expand_as_the_plugin_does():
    assert expand("$__timeFilter(ts)", CTX) == (
        "ts >= toDateTime(1709251200) AND ts <= toDateTime(1709337600)"
    )
    assert expand("$__timeFilter_ms( ts )", CTX) == (
        "ts >= fromUnixTimestamp64Milli(1709251200500) "
        "AND ts <= fromUnixTimestamp64Milli(1709337600000)"
    )
    assert expand("$__fromTime $__toTime $__fromTime_ms $__toTime_ms", CTX) == (
        "toDateTime(1709251200) toDateTime(1709337600) "
        "fromUnixTimestamp64Milli(1709251200500) fromUnixTimestamp64Milli(1709337600000)"
    )
    assert expand("$__timeInterval(toDate(x, 'UTC'))", CTX) == (
        "toStartOfInterval(toDateTime(toDate(x, 'UTC')), INTERVAL 1 second)"
    )
    assert expand("$__interval_s", CTX) == "1"


def test_variables_expand_in_grafana_formats():
    assert expand("${org:sqlstring}", CTX) == "'o''x'"
    assert expand("(${features:sqlstring})", CTX) == "('a','b''c')"
    assert expand("${features:singlequote}", CTX) == "'a','b\\'c'"
    assert expand("${features}", CTX) == "'a','b'c'"  # the plugin's own format: no escaping
    assert expand("$one = ${one}", CTX) == "dep = dep"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__timeGroup(ts, 1m)", "unknown macro"),
        ("$__unixEpochFilter(ts)", "unknown macro"),
        ("${missing}", "not defined"),
        ("$missing", "not defined"),
        ("${org:csv}", "not supported"),
        ("${__from}", "unexpanded"),
        ("$__timeFilter(a, b)", "expects 1 argument"),
        ("$__timeInterval", "expects 1 argument"),
        ("$__interval_s(x)", "takes no arguments"),
        ("$__timeFilter(ts", "unbalanced"),
        ("$__timeFilter($__fromTime)", "nested"),
    ],
)
def test_expander_refuses_what_it_cannot_expand_exactly(sql, message):
    with pytest.raises(MacroError, match=message):
        expand(sql, CTX)


# -- every panel against chDB ------------------------------------------------------------


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize(
    ("dashboard", "panel"), PANELS, ids=[f"{d.uid}/{p.title}" for d, p in PANELS]
)
def test_panel_sql_returns_the_shape_its_panel_expects(sample, dashboard, panel: Panel, context):
    sql = _expanded(dashboard.uid, panel.sql, context)
    columns = _describe(sample, sql)
    assert tuple(name for name, _ in columns) == panel.columns
    rows = sample.query_rows(sql)
    assert rows, "sample data should give every panel rows"
    if panel.time_series:
        assert panel.columns[0] == "time"
        assert _time(columns[0][1]), columns
        rest = columns[1:]
        labels = [n for n, t in rest if _string(t)]
        values = [n for n, t in rest if _numeric(t)]
        assert values, "a time series needs a numeric value"
        assert len(labels) + len(values) == len(rest), columns
        assert [n for n, _ in rest] == labels + values, "labels first, then values"
        times = [row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC) for row in rows]
        assert times == sorted(times), "the plugin's long-to-wide needs ascending time"
        assert all(
            CONTEXTS[context][0] - timedelta(days=1) <= t <= CONTEXTS[context][1] for t in times
        )
    elif panel.kind == "stat":
        assert len(rows) == 1
        assert all(_numeric(t) for _, t in columns), columns
    else:
        assert len(rows) <= 1000


@pytest.mark.parametrize(
    ("dashboard", "panel"), PANELS, ids=[f"{d.uid}/{p.title}" for d, p in PANELS]
)
def test_panels_show_one_organization_only(sample, dashboard, panel):
    for context in CONTEXTS:
        for org, foreign in ((ORG, OTHER), (OTHER, ORG)):
            rows = sample.query_rows(_expanded(dashboard.uid, panel.sql, context, org))
            assert foreign not in repr(rows)


def test_variable_queries_list_the_organizations_values(sample):
    by_name = {v.name: v for d in DASHBOARDS for v in d.variables if v.name != "deployment"}
    ctx = _context("hour-4d")
    orgs = sample.query_rows(expand(by_name["organization"].sql, ctx))
    assert [r[0] for r in orgs] == sorted([ORG, OTHER])
    features = sample.query_rows(expand(by_name["feature"].sql, ctx))
    assert [r[0] for r in features] == sorted(FEATURES[ORG])
    assert [r[0] for r in sample.query_rows(expand(by_name["statistic"].sql, ctx))] == ["ks", "psi"]
    for dashboard in DASHBOARDS:
        for variable in dashboard.variables:
            values = sample.query_rows(_expanded(dashboard.uid, variable.sql, "hour-4d"))
            assert values, variable.name
            assert "globex" not in repr(values) or variable.name == "organization"


@pytest.mark.parametrize("query", [WINDOWS, DRIFT], ids=["windows", "drift"])
def test_gates_pick_exactly_one_level_and_rollups_agree_with_raw(sample, query):
    measure = "events" if query is WINDOWS else "value_avg"
    gated = GatedQuery(
        query,
        f"@bucket AS time, @{measure} AS v",
        "time",
        "time",
        "deployment = ${deployment:sqlstring}",
    )
    for name, level in (("raw-6h", "raw"), ("hour-4d", "hour"), ("day-4d", "day")):
        ctx = _context(name)
        assert sample.query_rows(expand(gated.sql(), ctx)) == sample.query_rows(
            expand(gated.sql(force=level), ctx)
        )
    # at a whole-hour step, the hourly and daily roll-ups give the raw windows' numbers
    for step, level in ((3600.0, "hour"), (86_400.0, "day")):
        ctx = QueryContext(T0, T_END, step, _context("hour-4d").variables)
        raw = sample.query_rows(expand(gated.sql(force="raw"), ctx))
        rolled = sample.query_rows(expand(gated.sql(force=level), ctx))
        assert [r[0] for r in raw] == [r[0] for r in rolled]
        assert np.allclose([float(r[1]) for r in raw], [float(r[1]) for r in rolled])
    assert len(LEVELS) == 3
