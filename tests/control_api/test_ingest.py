"""POST /v1/ingest: events over HTTP into the embedded engine, per organization."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pyarrow as pa
import pytest

from detectors import ReferenceProfile
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate

T0 = 1_764_237_600_000
MINUTE = 60_000


@pytest.fixture
def monitors_file(tmp_path):
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.fit(
        {"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], size=3000)}
    )
    (tmp_path / "profile.json").write_text(json.dumps(profile.to_dict()))
    path = tmp_path / "monitors.yaml"
    path.write_text(
        "- deployment: loans\n"
        "  reference: profile.json\n"
        "  window: {kind: tumbling, size: 1m}\n"
        "  min_samples: 50\n"
    )
    return path


@pytest.fixture
def engine_api(app_factory, monitors_file, chdb_url):
    from fastapi.testclient import TestClient

    from tests.control_api.conftest import Api

    with connect(chdb_url) as store:  # what `driftline migrate` does before the API starts
        migrate(store, MigrationParams(ttl_days=7300))
    app = app_factory(clickhouse_url=chdb_url, monitors_file=monitors_file)
    with TestClient(app) as client:
        yield Api(client)


def events(minute, count, shift=0.0, start=0):
    rng = np.random.default_rng(minute * 1000 + start)
    return [
        {
            "event_id": f"m{minute}-{start + i}",
            "ts": T0 + minute * MINUTE + i * 100,
            "deployment": "loans",
            "features": {"x": float(rng.normal(shift)), "c": "a" if i % 2 else "b"},
            "prediction": 0.4,
            "latency_ms": 7.5,
        }
        for i in range(count)
    ]


def ndjson(items):
    return b"\n".join(orjson.dumps(e) for e in items)


def post(api, token, body, content_type="application/x-ndjson"):
    return api.client.post(
        "/v1/ingest", content=body, headers=api.bearer(token) | {"Content-Type": content_type}
    )


def ingest_key(api, email="owner@acme.example.com", org="Acme"):
    owner = api.owner(email, org)
    me = api.client.get("/v1/me", headers=owner).json()
    _, token = api.api_key(owner, ["ingest"])
    return token, me


def org_of(me):
    return me.get("org_id") or me["organization"]["id"]


def test_events_are_windowed_and_results_land_in_the_metrics_store(engine_api, chdb_url):
    token, me = ingest_key(engine_api)
    first = post(engine_api, token, ndjson(events(0, 120)))
    assert first.status_code == 202, first.text
    assert first.json() == {
        "accepted": 120, "rejected": 0, "duplicates": 0, "late": 0, "windows_closed": 0,
        "rejections": [],
    }  # fmt: skip
    second = post(engine_api, token, ndjson(events(1, 120, shift=2.0)))
    assert second.json()["windows_closed"] == 1
    third = post(engine_api, token, ndjson(events(2, 10)))
    assert third.json()["windows_closed"] == 1
    with connect(chdb_url) as client:
        rows = client.query_rows(
            "SELECT window_start, feature, statistic, drifted FROM drift_results "
            "WHERE organization = {org:String} ORDER BY window_start, feature, statistic",
            {"org": org_of(me)},
        )
    drifted = {(r[1], r[2]) for r in rows if r[3]}
    assert len({r[0] for r in rows}) == 2
    assert drifted == {("x", "ks"), ("x", "wasserstein_normed")}


def test_bad_events_are_refused_with_reasons_and_dead_lettered(engine_api, chdb_url):
    token, me = ingest_key(engine_api)
    good = events(0, 3)
    body = (
        ndjson(
            [
                *good,
                {**good[0], "event_id": "bad-1", "features": {"x": "high"}},
                {**good[0], "event_id": "bad-2", "deployment": "ghost"},
            ]
        )
        + b"\n{oops\n"
    )
    response = post(engine_api, token, body)
    assert response.status_code == 202
    receipt = response.json()
    assert (receipt["accepted"], receipt["rejected"]) == (3, 3)
    assert sorted(r["reason"] for r in receipt["rejections"]) == [
        "malformed", "unknown_deployment", "wrong_type",
    ]  # fmt: skip
    with connect(chdb_url) as client:
        reasons = client.query_rows(
            "SELECT reason FROM dead_letters WHERE organization = {org:String}",
            {"org": org_of(me)},
        )
    assert len(reasons) == 3


def test_single_events_envelopes_and_arrow_are_read(engine_api):
    token, _ = ingest_key(engine_api)
    one = post(engine_api, token, orjson.dumps(events(0, 1)[0]), "application/json")
    envelope = orjson.dumps({"schema_version": 1, "events": events(0, 5, start=10)})
    many = post(engine_api, token, envelope, "application/json")
    table = pa.table(
        {
            "event_id": ["a1", "a2"],
            "ts": [T0 + 1, T0 + 2],
            "deployment": ["loans", "loans"],
            "features.x": [0.1, 0.2],
            "features.c": ["a", "b"],
        }
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = post(engine_api, token, sink.getvalue(), "application/vnd.apache.arrow.stream")
    assert [r.json()["accepted"] for r in (one, many, arrow)] == [1, 5, 2]


def test_an_unknown_media_type_is_a_415_problem(engine_api):
    token, _ = ingest_key(engine_api)
    response = post(engine_api, token, b"x=1", "text/plain")
    assert response.status_code == 415
    assert response.headers["content-type"].startswith("application/problem+json")


def test_only_keys_with_the_ingest_scope_may_send(engine_api):
    owner = engine_api.owner()
    _, read_token = engine_api.api_key(owner, ["read"])
    assert post(engine_api, read_token, ndjson(events(0, 1))).status_code == 403
    response = engine_api.client.post(
        "/v1/ingest",
        content=ndjson(events(0, 1)),
        headers=owner | {"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 403


def test_each_organization_writes_its_own_results(engine_api, chdb_url):
    acme, acme_me = ingest_key(engine_api)
    globex, globex_me = ingest_key(engine_api, "owner@globex.example.com", "Globex")
    for token, shift in ((acme, 0.0), (globex, 3.0)):
        post(engine_api, token, ndjson(events(0, 100, shift=shift)))
        post(engine_api, token, ndjson(events(1, 5)))
    with connect(chdb_url) as client:
        counts = {
            name: client.query_rows(
                "SELECT countIf(drifted) FROM drift_results WHERE organization = {org:String}",
                {"org": org_of(me)},
            )[0][0]
            for name, me in (("acme", acme_me), ("globex", globex_me))
        }
    assert counts["acme"] == 0
    assert counts["globex"] == 2


def test_an_api_without_the_embedded_engine_answers_503(app_factory):
    from fastapi.testclient import TestClient

    from tests.control_api.conftest import Api

    with TestClient(app_factory(engine_embedded=False)) as client:
        api = Api(client)
        token, _ = ingest_key(api)
        assert post(api, token, ndjson(events(0, 1))).status_code == 503


def test_ingest_bodies_have_their_own_size_limit(app_factory, monitors_file, chdb_url):
    from fastapi.testclient import TestClient

    from tests.control_api.conftest import Api

    with connect(chdb_url) as store:
        migrate(store, MigrationParams(ttl_days=7300))
    app = app_factory(
        clickhouse_url=chdb_url,
        monitors_file=monitors_file,
        max_request_bytes=1024,
        ingest_max_bytes=64 * 1024,
    )
    with TestClient(app) as client:
        api = Api(client)
        token, _ = ingest_key(api)
        body = ndjson(events(0, 60))  # ~10 KB: over the general limit, under the ingest one
        assert len(body) > 1024
        assert post(api, token, body).status_code == 202
        assert post(api, token, ndjson(events(0, 600))).status_code == 413
        owner = api.bearer(api.login("owner@acme.example.com")["access_token"])
        too_big = client.post("/v1/projects", headers=owner, json={"name": "x" * 2000})
        assert too_big.status_code == 413
