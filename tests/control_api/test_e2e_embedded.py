"""The embedded default end to end, configured only through the REST API.

Sign-up, a reference upload, a model and version, a deployment, a monitor, a webhook
channel, a route and an alert rule; then a model server's events over POST /v1/ingest with
an API key; the drift is detected in the engine inside the API process, written to the
metrics store, the rule fires and the alert reaches a real HTTP receiver, signed.
"""

from __future__ import annotations

import io
import time

import numpy as np
import orjson
import polars as pl
import pytest
from fastapi.testclient import TestClient

from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from tests.control_api.conftest import Api
from tests.engine import alerts_support

receiver = alerts_support.receiver  # a real HTTP server on 127.0.0.1

T0 = 1_764_237_600_000
MINUTE = 60_000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _reference_csv() -> bytes:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], size=2000)})
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


def _events(deployment: str, minute: int, count: int, shift: float) -> bytes:
    rng = np.random.default_rng(minute)
    return b"\n".join(
        orjson.dumps(
            {
                "event_id": f"{minute}-{i}",
                "ts": T0 + minute * MINUTE + i * 100,
                "deployment": deployment,
                "features": {"x": float(rng.normal(shift)), "c": "a" if i % 2 else "b"},
                "prediction": 0.5,
                "latency_ms": 4.0,
            }
        )
        for i in range(count)
    )


@pytest.fixture
def embedded(app_factory, chdb_url):
    with connect(chdb_url) as store:  # `driftline migrate` before the API starts
        migrate(store, MigrationParams(ttl_days=7300))
    app = app_factory(clickhouse_url=chdb_url, alert_delivery_seconds=0.2)
    with TestClient(app) as client:
        yield Api(client)


def configure(api: Api, receiver_url: str) -> dict[str, str]:
    """Everything a user sets up over the REST API; returns the ids the tests need."""
    owner = api.owner()
    org = api.client.get("/v1/me", headers=owner).json()["org_id"]
    reference = api.client.post(
        "/v1/references",
        headers=owner,
        data={"name": "loans"},
        files={"file": ("train.csv", _reference_csv(), "text/csv")},
    )
    assert reference.status_code == 201, reference.text
    model = api.client.post("/v1/models", headers=owner, json={"name": "loans"}).json()
    schema = [{"name": "x", "type": "numeric"}, {"name": "c", "type": "categorical"}]
    version = api.client.post(
        f"/v1/models/{model['id']}/versions", headers=owner, json={"feature_schema": schema}
    )
    assert version.status_code == 201, version.text
    deployment = api.client.post(
        "/v1/deployments",
        headers=owner,
        json={"name": "loans", "environment": "prod", "model_id": model["id"], "model_version": 1},
    ).json()
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
    channel = api.client.post(
        "/v1/channels",
        headers=owner,
        json={
            "name": "hook",
            "kind": "webhook",
            "config": {"url": receiver_url},
            "secrets": {"signing_secrets": [SECRET]},
        },
    ).json()
    routing = api.client.put(
        "/v1/alert-routing",
        headers=owner,
        json={"tree": {"channels": [channel["id"]], "group_wait_ms": 0}},
    )
    assert routing.status_code == 200, routing.text
    rule = api.client.post(
        "/v1/alert-rules",
        headers=owner,
        json={
            "name": "x-shift",
            "deployment": deployment["id"],
            "condition": {"kind": "drift_statistic", "statistic": "wasserstein_normed"},
            "severity": "critical",
        },
    )
    assert rule.status_code == 201, rule.text
    return {
        "org": org,
        "deployment": deployment["id"],
        "rule": rule.json()["id"],
        "owner": owner["Authorization"],
    }


def test_configure_by_api_then_events_drift_and_the_alert_is_delivered(
    embedded, receiver, chdb_url
):
    api = embedded
    ids = configure(api, receiver.url + "/hook")
    owner = {"Authorization": ids["owner"]}
    org, deployment, rule_id = ids["org"], {"id": ids["deployment"]}, ids["rule"]
    _, token = api.api_key(owner, ["ingest"])
    key = api.bearer(token) | {"Content-Type": "application/x-ndjson"}

    for minute, shift, count in ((0, 0.0, 200), (1, 2.0, 200), (2, 0.0, 5)):
        sent = api.client.post(
            "/v1/ingest", headers=key, content=_events(deployment["id"], minute, count, shift)
        )
        assert sent.status_code == 202, sent.text
        assert sent.json()["rejected"] == 0

    deadline = time.monotonic() + 30
    while not receiver.ok():
        assert time.monotonic() < deadline, "no alert reached the webhook receiver"
        time.sleep(0.2)
    delivered = receiver.ok()[0]
    assert delivered.path == "/hook"
    assert delivered.headers["webhook-signature"].startswith("v1,")
    assert b"x-shift" in delivered.body
    firing = api.client.get("/v1/alerts", headers=owner, params={"state": "firing"}).json()
    assert [a["rule_id"] for a in firing["items"]] == [rule_id]
    with connect(chdb_url) as store:
        drifted = store.query_rows(
            "SELECT countIf(drifted) FROM drift_results WHERE organization = {org:String}",
            {"org": org},
        )[0][0]
    assert drifted >= 2  # the shifted minute: x by KS and by normalised Wasserstein


def test_a_kafka_worker_runs_the_monitors_and_rules_configured_over_the_api(
    embedded, receiver, chdb_url
):
    """`driftline worker`'s wiring (monitors, alert evaluator) without a broker."""
    from driftline.worker_command import control_plane_wiring
    from engine.deadletter import MemoryDeadLetters
    from engine.pipeline import Pipeline
    from engine.sinks import MemorySink

    api = embedded
    ids = configure(api, receiver.url + "/hook")
    settings = api.client.app.state.ctx.settings.model_copy(
        update={"kafka_organization": ids["org"]}
    )
    with connect(chdb_url) as client:
        wiring = control_plane_wiring(settings, client)
        try:
            assert [m.deployment for m in wiring.monitors] == [ids["deployment"]]
            pipeline = Pipeline(
                organization=ids["org"],
                monitors=wiring.monitors,
                sink=MemorySink(),
                dead_letters=MemoryDeadLetters(),
                listener=wiring.listener,
                clock=lambda: T0 + 10 * MINUTE,
            )
            for minute, shift, count in ((0, 0.0, 200), (1, 2.0, 200), (2, 0.0, 5)):
                payloads = _events(ids["deployment"], minute, count, shift).split(b"\n")
                pipeline.ingest(payloads, source="kafka:test/0")
        finally:
            wiring.close()
    deadline = time.monotonic() + 30  # the API's delivery loop drains the worker's outbox
    while not receiver.ok():
        assert time.monotonic() < deadline, "no alert reached the webhook receiver"
        time.sleep(0.2)
    assert b"x-shift" in receiver.ok()[0].body
