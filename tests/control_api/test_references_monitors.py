import io

import numpy as np
import polars as pl

from engine.monitor import Monitor
from tests.control_api.conftest import Api, make_settings


def _frame(rows=300, seed=0):
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "amount": rng.normal(100, 10, rows),
            "age": rng.integers(18, 90, rows),
            "country": rng.choice(["fr", "de", "it"], rows),
        }
    )


def _csv(frame):
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


def _parquet(frame):
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _upload(api, headers, name, filename, content):
    return api.client.post(
        "/v1/references",
        headers=headers,
        data={"name": name},
        files={"file": (filename, content, "application/octet-stream")},
    )


def test_upload_fits_and_versions_a_profile(api):
    owner = api.owner()
    first = _upload(api, owner, "loans", "train.csv", _csv(_frame()))
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["number"], body["rows"], body["file_format"]) == (1, 300, "csv")
    assert body["columns"] == [
        {"name": "amount", "type": "numeric"},
        {"name": "age", "type": "numeric"},
        {"name": "country", "type": "categorical"},
    ]
    second = _upload(api, owner, "loans", "train.parquet", _parquet(_frame(seed=1))).json()
    assert (second["number"], second["file_format"]) == (2, "parquet")
    profile = api.client.get(f"/v1/references/{body['id']}/profile", headers=owner).json()
    assert profile["profile"]["numeric"] == ["amount", "age"]
    assert profile["profile"]["categorical"] == ["country"]
    listed = api.client.get("/v1/references", headers=owner, params={"name": "loans"}).json()
    assert [r["number"] for r in listed["items"]] == [2, 1]
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(f"/v1/references/{body['id']}", headers=other).status_code == 404
    assert api.client.get(f"/v1/references/{body['id']}/profile", headers=other).status_code == 404


def test_bad_files_are_problems(api):
    owner = api.owner()
    cases = [
        ("data.txt", b"a,b\n1,2\n", 415),
        ("data.parquet", b"not parquet at all", 422),
        ("data.csv", b"a,b\n", 422),  # no rows
        ("data.csv", b"a,b\n1,\n2,\n", 422),  # column b has no value
    ]
    for filename, content, status in cases:
        response = _upload(api, owner, "bad", filename, content)
        assert response.status_code == status, (filename, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
    assert api.client.get("/v1/references", headers=owner).json()["items"] == []


def test_size_limit(tmp_path, db_url, chdb_url):
    from fastapi.testclient import TestClient

    from control_api.app import create_app

    settings = make_settings(
        tmp_path, database_url=db_url, clickhouse_url=chdb_url, reference_max_bytes=1000
    )
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        owner = api.owner()
        response = _upload(api, owner, "big", "big.csv", _csv(_frame(rows=200)))
        assert response.status_code == 413
        assert response.json()["type"] == "/problems/reference-too-large"


def _deployment(api, headers, schema=None):
    model = api.client.post("/v1/models", headers=headers, json={"name": "loans"}).json()
    api.client.post(
        f"/v1/models/{model['id']}/versions",
        headers=headers,
        json={"feature_schema": schema or []},
    )
    created = api.client.post(
        "/v1/deployments",
        headers=headers,
        json={"name": "loans", "environment": "prod", "model_id": model["id"], "model_version": 1},
    )
    assert created.status_code == 201, created.text
    return created.json()


SPEC = {
    "features": {"numeric": ["amount"], "categorical": ["country"]},
    "window": {"kind": "tumbling", "size": "15m"},
    "allowed_lateness": "1m",
    "min_samples": 50,
    "drift": {"numeric": ["ks", "psi"], "categorical": ["chi2"], "effect_floor": {}},
    "latency_slo_ms": 250,
}


def test_monitor_crud_and_engine_shape(api):
    owner = api.owner()
    schema = [
        {"name": "amount", "type": "numeric"},
        {"name": "age", "type": "numeric"},
        {"name": "country", "type": "categorical"},
    ]
    deployment = _deployment(api, owner, schema)
    reference = _upload(api, owner, "loans", "train.csv", _csv(_frame())).json()
    body = {"name": "drift", "deployment_id": deployment["id"], "reference_id": reference["id"]}
    created = api.client.post("/v1/monitors", headers=owner, json=body | {"spec": SPEC})
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["spec"]["window"] == {"kind": "tumbling", "size": "15m", "step": None}

    shape = api.client.get(f"/v1/monitors/{monitor['id']}/engine", headers=owner)
    assert shape.status_code == 200, shape.text
    engine_monitor = Monitor.model_validate(shape.json())
    assert engine_monitor.deployment == deployment["id"]
    assert engine_monitor.numeric == ("amount",)
    assert engine_monitor.window.size_ms == 15 * 60_000
    assert engine_monitor.drift.numeric == ("ks", "psi")
    assert engine_monitor.profile.categorical == ("country",)

    path = f"/v1/monitors/{monitor['id']}"
    changed = api.client.patch(
        path, headers=owner | {"If-Match": '"1"'}, json={"spec": SPEC | {"min_samples": 10}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    stale = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={})
    assert stale.status_code == 412
    assert api.client.patch(path, headers=owner, json={}).status_code == 428
    listed = api.client.get(
        "/v1/monitors", headers=owner, params={"deployment_id": deployment["id"]}
    ).json()
    assert [m["spec"]["min_samples"] for m in listed["items"]] == [10]
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(path, headers=other).status_code == 404
    assert api.client.get(f"{path}/engine", headers=other).status_code == 404
    assert api.client.delete(path, headers=other).status_code == 404
    assert api.client.delete(path, headers=owner).status_code == 204
    assert api.client.get(path, headers=owner).status_code == 404


def test_monitor_validation(api):
    owner = api.owner()
    deployment = _deployment(api, owner, [{"name": "amount", "type": "numeric"}])
    reference = _upload(api, owner, "loans", "train.csv", _csv(_frame())).json()
    base = {"name": "m", "deployment_id": deployment["id"], "reference_id": reference["id"]}
    bad_specs = [
        {"features": {"numeric": ["missing"]}},  # not in the schema nor the profile
        {"features": {"categorical": ["country"]}},  # not in the version's schema
        {"drift": {"numeric": ["nonsense"]}},  # unknown statistic
        {"window": {"kind": "hopping", "size": "1h"}},  # hopping without a step
        {"allowed_lateness": "soon"},
        {"unknown_field": 1},
    ]
    for spec in bad_specs:
        response = api.client.post("/v1/monitors", headers=owner, json=base | {"spec": spec})
        assert response.status_code == 422, (spec, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for field in ("deployment_id", "reference_id"):
        response = api.client.post("/v1/monitors", headers=owner, json=base | {field: "nope"})
        assert response.status_code == 422, field
    ok = api.client.post(
        "/v1/monitors", headers=owner, json=base | {"spec": {"features": {"numeric": ["amount"]}}}
    )
    assert ok.status_code == 201, ok.text
