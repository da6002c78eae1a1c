"""Feature statistics, resources, custom metrics and the drift plot over HTTP, on chDB.

The series read what the metrics writer stored; the plot reads what the embedded engine
stored for events sent to POST /v1/ingest.
"""

import io
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch
from tests.control_api.conftest import Api
from tests.control_api.test_e2e_embedded import MINUTE, T0, _events, _reference_csv
from tests.storage.test_clickhouse_reader import INJECTIONS

RANGE = {"start": "2024-03-01T00:00:00Z", "end": "2024-03-01T02:00:00Z", "step": 3600}


def _deployment(api, headers, name="m"):
    model = api.client.post("/v1/models", headers=headers, json={"name": name}).json()
    api.client.post(f"/v1/models/{model['id']}/versions", headers=headers, json={})
    body = {"name": name, "environment": "prod", "model_id": model["id"], "model_version": 1}
    return api.client.post("/v1/deployments", headers=headers, json=body).json()


def _write(settings, org_id, deployment_id, scale=1.0):
    """Four half-hour windows of feature statistics, resources and custom metrics."""
    starts = np.datetime64("2024-03-01T00:00", "ms") + np.arange(4) * np.timedelta64(30, "m")
    window = {"deployment": [deployment_id] * 4, "window_start": starts,
              "window_end": starts + np.timedelta64(30, "m")}  # fmt: skip
    tables = {
        MetricsTable.FEATURE_WINDOW_STATS: window
        | {
            "feature": ["age"] * 4,
            "count": [10, 30, 20, 20],
            "null_count": [1, 0, 0, 2],
            **{k: np.array([40.0, 44.0, 50.0, 50.0]) * scale for k in ("mean", "p50")},
            **{k: [2.0, 2.0, 1.0, 1.0] for k in ("std", "p05", "p25", "p75", "p95")},
            "min": [30.0, 35.0, 45.0, 46.0],
            "max": [50.0, 55.0, 60.0, 61.0],
        },
        MetricsTable.WINDOW_AGGREGATES: window
        | {
            **{k: [10] * 4 for k in ("event_count", "error_count")},
            **{k: [1.0] * 4 for k in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")},
            **{k: [0.0] * 4 for k in ("prediction_mean", "prediction_std")},
            "custom_metrics": [{"ctr": 0.1 * scale}, {"ctr": 0.3 * scale}, {}, {"ctr": 0.5}],
        },
        MetricsTable.RESOURCE_METRICS: {
            "deployment": [deployment_id] * 4,
            "ts": starts,
            "resource": ["cpu", "memory", "cpu", "gpu"],
            "value": np.array([0.5, 1024.0, 0.7, 0.9]) * scale,
        },
    }
    with connect(settings.clickhouse_url, default_database=settings.clickhouse_database) as c:
        migrate(c, MigrationParams(ttl_days=3650, dedup_window=1000))
        for table, columns in tables.items():
            write_batch(c, table, organization=org_id, batch_id=org_id, columns=columns)


def test_feature_resource_and_custom_series_are_the_tenants_own(api, settings):
    owner = api.owner()
    org_id = api.client.get("/v1/me", headers=owner).json()["org_id"]
    deployment = _deployment(api, owner)
    _write(settings, org_id, deployment["id"])
    _write(settings, "someone-else", deployment["id"], scale=1000.0)  # same id, other tenant
    base = f"/v1/deployments/{deployment['id']}/metrics"

    features = api.client.get(f"{base}/features", headers=owner, params=RANGE)
    assert features.status_code == 200, features.text
    first, second = features.json()["points"]
    assert (first["feature"], first["windows"], first["count"], first["null_count"]) == (
        "age",
        2,
        40,
        1,
    )
    assert first["mean"] == pytest.approx((40 * 10 + 44 * 30) / 40)
    assert (first["min"], first["max"]) == (30.0, 55.0)
    assert second["mean"] == pytest.approx(50.0)
    assert second["std"] == pytest.approx(1.0)
    raw = api.client.get(f"{base}/features", headers=owner, params=RANGE | {"step": 1800})
    assert [p["mean"] for p in raw.json()["points"]] == [40.0, 44.0, 50.0, 50.0]

    resources = api.client.get(f"{base}/resources", headers=owner, params=RANGE)
    assert resources.status_code == 200, resources.text
    assert [(p["name"], p["points"], p["value_max"]) for p in resources.json()["points"]] == [
        ("cpu", 1, 0.5),
        ("cpu", 1, 0.7),
        ("gpu", 1, 0.9),
        ("memory", 1, 1024.0),
    ]
    cpu = api.client.get(f"{base}/resources", headers=owner, params=RANGE | {"resource": "cpu"})
    assert {p["name"] for p in cpu.json()["points"]} == {"cpu"}

    custom = api.client.get(f"{base}/custom", headers=owner, params=RANGE | {"metric": "ctr"})
    assert custom.status_code == 200, custom.text
    assert [(p["points"], p["value_avg"]) for p in custom.json()["points"]] == [
        (2, pytest.approx(0.2)),
        (1, 0.5),
    ]

    other = api.owner("owner@other.example.com", "Other")
    for kind in ("features", "resources", "custom"):
        assert api.client.get(f"{base}/{kind}", headers=other, params=RANGE).status_code == 404
    backwards = RANGE | {"start": RANGE["end"], "end": RANGE["start"]}
    refused = api.client.get(f"{base}/features", headers=owner, params=backwards)
    assert refused.status_code == 422


@pytest.mark.parametrize("evil", INJECTIONS[:5])  # NUL is refused earlier, by the HTTP layer
def test_injection_strings_through_every_query_parameter(api, settings, evil):
    owner = api.owner()
    org_id = api.client.get("/v1/me", headers=owner).json()["org_id"]
    deployment = _deployment(api, owner)
    _write(settings, org_id, deployment["id"])
    base = f"/v1/deployments/{deployment['id']}/metrics"
    for kind, name in (("features", "feature"), ("resources", "resource"), ("custom", "metric")):
        response = api.client.get(f"{base}/{kind}", headers=owner, params=RANGE | {name: evil})
        assert response.status_code == 200, response.text
        assert response.json()["points"] == []
    plot = api.client.get(
        f"{base}/drift/plot",
        headers=owner,
        params={"feature": evil, "window": RANGE["start"], "statistic": evil},
    )
    assert plot.status_code == 404
    evil_path = api.client.get(
        f"/v1/deployments/{evil}/metrics/features", headers=owner, params=RANGE
    )
    assert evil_path.status_code == 404
    with connect(settings.clickhouse_url, default_database=settings.clickhouse_database) as c:
        assert c.query_rows("SELECT count() FROM feature_window_stats") == [(4,)]


@pytest.fixture
def embedded(app_factory, chdb_url):
    with connect(chdb_url) as store:
        migrate(store, MigrationParams(ttl_days=7300))
    app = app_factory(clickhouse_url=chdb_url)
    with TestClient(app) as client:
        yield Api(client)


def _configure(api):
    owner = api.owner()
    reference = api.client.post(
        "/v1/references",
        headers=owner,
        data={"name": "loans"},
        files={"file": ("train.csv", _reference_csv(), "text/csv")},
    )
    assert reference.status_code == 201, reference.text
    deployment = _deployment(api, owner, "loans")
    monitor = api.client.post(
        "/v1/monitors",
        headers=owner,
        json={
            "name": "drift",
            "deployment_id": deployment["id"],
            "reference_id": reference.json()["id"],
            "spec": {"window": {"kind": "tumbling", "size": "1m"}, "min_samples": 50},
        },
    )
    assert monitor.status_code == 201, monitor.text
    _, token = api.api_key(owner, ["ingest"])
    key = api.bearer(token) | {"Content-Type": "application/x-ndjson"}
    for minute, shift, count in ((0, 0.0, 200), (1, 2.0, 200), (2, 0.0, 5)):
        sent = api.client.post(
            "/v1/ingest", headers=key, content=_events(deployment["id"], minute, count, shift)
        )
        assert sent.status_code == 202, sent.text
    return owner, deployment


def _stored(chdb_url, deployment_id, feature, start_ms):
    with connect(chdb_url) as store:
        return store.query_rows(
            "SELECT statistic, value, p_value, drifted FROM drift_results "
            "WHERE deployment = {d:String} AND feature = {f:String} "
            "AND window_start = fromUnixTimestamp64Milli({t:Int64}, 'UTC') ORDER BY statistic",
            {"d": deployment_id, "f": feature, "t": start_ms},
        )


def test_drift_plot_of_a_window_the_engine_stored(embedded, chdb_url):
    api = embedded
    owner, deployment = _configure(api)
    shifted = T0 + MINUTE  # the window of minute 1, where x moved by two standard deviations
    deadline = time.monotonic() + 30
    while not _stored(chdb_url, deployment["id"], "x", shifted):
        assert time.monotonic() < deadline, "the engine stored no drift result"
        time.sleep(0.2)
    path = f"/v1/deployments/{deployment['id']}/metrics/drift/plot"
    window = datetime.fromtimestamp(shifted / 1000, tz=UTC).isoformat()
    response = api.client.get(path, headers=owner, params={"feature": "x", "window": window})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert (image.format, image.size) == ("PNG", (800, 450))
    # the title is the stored result: the test's statistic (with a p-value), its value
    stored = {row[0]: row for row in _stored(chdb_url, deployment["id"], "x", shifted)}
    statistic = response.headers["x-drift-statistic"]
    _, value, p_value, drifted = stored[statistic]
    assert p_value is not None
    assert float(response.headers["x-drift-value"]) == value
    assert float(response.headers["x-drift-p-value"]) == p_value
    assert response.headers["x-drift-drifted"] == ("true" if drifted else "false")
    assert drifted
    title = image.text["Title"]
    assert title == response.headers["x-drift-title"]
    assert title.startswith(f"x: {statistic.upper()} {value:.3g} (p={p_value:.2g})")
    assert title.endswith("drifted")
    # another statistic of the same window, asked by name, in milliseconds
    distance = next(name for name, row in stored.items() if row[2] is None)
    by_name = api.client.get(
        path,
        headers=owner,
        params={"feature": "x", "window": shifted, "statistic": distance},
    )
    assert by_name.status_code == 200, by_name.text
    assert by_name.headers["x-drift-statistic"] == distance
    assert float(by_name.headers["x-drift-value"]) == stored[distance][1]
    assert "x-drift-p-value" not in by_name.headers
    # a categorical feature: bars per category
    categorical = api.client.get(path, headers=owner, params={"feature": "c", "window": window})
    assert categorical.status_code == 200, categorical.text
    assert Image.open(io.BytesIO(categorical.content)).text["Title"].startswith("c: ")

    for params in (
        {"feature": "x", "window": "2020-01-01T00:00:00Z"},  # no such window
        {"feature": "nope", "window": window},  # no such feature
        {"feature": "x", "window": window, "statistic": "nope"},
    ):
        missing = api.client.get(path, headers=owner, params=params)
        assert missing.status_code == 404, params
        assert missing.headers["content-type"] == "application/problem+json"
    other = api.owner("owner@other.example.com", "Other")
    params = {"feature": "x", "window": window}
    assert api.client.get(path, headers=other, params=params).status_code == 404
