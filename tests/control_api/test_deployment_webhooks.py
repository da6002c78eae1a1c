"""Deployment webhooks: subscriptions over HTTP, the transactional outbox, signed delivery.

Messages go to a real HTTP receiver on 127.0.0.1 and are verified with the reference
Standard Webhooks library; on SQLite and PostgreSQL.
"""

import json
import time
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from standardwebhooks import Webhook

from control_api.deployment_webhooks.delivery import WebhookDeliverer
from engine.alerts.delivery import RetryPolicy
from storage.models import DeploymentWebhookOutbox
from storage.tenancy import scope_to
from tests.control_api.conftest import make_settings
from tests.control_api.test_deployments import _deploy
from tests.engine import alerts_support
from tests.engine.alerts_support import Clock

receiver = alerts_support.receiver  # a real HTTP receiver on 127.0.0.1

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_c2VjcmV0LW51bWJlci10d28tZm9yLXJvdGF0aW9u"


@pytest.fixture
def settings(tmp_path, db_url, chdb_url):
    # the app's own delivery loop stays out of the way: these tests drive delivery by hand
    return make_settings(
        tmp_path, database_url=db_url, clickhouse_url=chdb_url, alert_delivery_seconds=300
    )


def _org_id(api, headers):
    return api.client.get("/v1/me", headers=headers).json()["org_id"]


def _model(api, headers, versions=3):
    model = api.client.post("/v1/models", headers=headers, json={"name": "fraud"}).json()
    for number in range(1, versions + 1):
        body = {"artifact_uri": f"s3://models/fraud/{number}"}
        created = api.client.post(f"/v1/models/{model['id']}/versions", headers=headers, json=body)
        assert created.status_code == 201, created.text
    return model


def _act(api, headers, deployment, action, expect=200, **body):
    response = api.client.post(
        f"/v1/deployments/{deployment['id']}/{action}",
        headers=headers | {"If-Match": f'"{deployment["version"]}"'},
        json=body,
    )
    assert response.status_code == expect, response.text
    return response.json()


def _subscribe(api, headers, url, **extra):
    body = {"name": "cd", "url": url, "signing_secrets": [OLD]} | extra
    response = api.client.post("/v1/deployment-webhooks", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deliverer(app, org_id, client, clock=None):
    kwargs = {"clock": clock} if clock is not None else {}
    ctx = app.state.ctx
    return WebhookDeliverer(
        ctx.sessions, org_id, client, ctx.secret_box, retry=RetryPolicy(jitter=0.0), **kwargs
    )


def _verified(received, secret):
    """The received messages' bodies, each verified by the reference library."""
    return [Webhook(secret).verify(r.body, r.headers) for r in received]


def _outbox_rows(app, org_id):
    with app.state.ctx.sessions() as session:
        scope_to(session, org_id)
        return session.scalar(select(func.count()).select_from(DeploymentWebhookOutbox))


def test_subscriptions_keep_secrets_write_only(api, app, receiver):
    owner = api.owner()
    admin = api.member(owner, "admin")
    editor = api.member(owner, "editor")
    viewer = api.member(owner, "viewer")
    model = _model(api, owner, versions=1)
    deployment = _deploy(api, owner, model, 1)
    created = _subscribe(
        api, admin, receiver.url, deployment_id=deployment["id"], events=["promoted"]
    )
    assert created["signing_secrets"] == 1
    assert (created["deployment_id"], created["events"]) == (deployment["id"], ["promoted"])
    path = f"/v1/deployment-webhooks/{created['id']}"
    for headers in (owner, viewer):
        shown = api.client.get(path, headers=headers)
        assert shown.status_code == 200
        assert OLD.removeprefix("whsec_") not in shown.text
    body = {"name": "x", "url": receiver.url, "signing_secrets": [OLD]}
    assert api.client.post("/v1/deployment-webhooks", headers=editor, json=body).status_code == 403
    for bad in (
        {"signing_secrets": []},  # a deployment webhook is always signed
        {"signing_secrets": ["plain-text-secret"]},
        {"signing_secrets": ["whsec_c2hvcnQ="]},  # 5 bytes
        {"signing_secrets": [OLD, NEW, OLD]},  # two at most: new and old while rotating
        {"url": "ftp://example.com/x"},
        {"events": ["exploded"]},
    ):
        refused = api.client.post("/v1/deployment-webhooks", headers=admin, json=body | bad)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == "application/problem+json"
    unknown = api.client.post(
        "/v1/deployment-webhooks", headers=admin, json=body | {"deployment_id": "nope"}
    )
    assert unknown.status_code == 404
    twin = api.client.post("/v1/deployment-webhooks", headers=admin, json=body | {"name": "cd"})
    assert twin.status_code == 409
    rotated = api.client.patch(
        path, headers=admin, json={"signing_secrets": [NEW, OLD], "enabled": False}
    )
    assert rotated.status_code == 200, rotated.text
    assert (rotated.json()["signing_secrets"], rotated.json()["enabled"]) == (2, False)
    with app.state.ctx.sessions() as session:  # encrypted at rest: no secret in the row
        raw = session.execute(sa.text("SELECT secrets FROM deployment_webhooks")).scalar_one()
    raw = raw if isinstance(raw, str) else json.dumps(raw)
    assert OLD.removeprefix("whsec_") not in raw
    assert NEW.removeprefix("whsec_") not in raw
    assert raw.count("fernet:") == 2
    assert api.client.patch(path, headers=editor, json={"enabled": True}).status_code == 403
    listed = api.client.get("/v1/deployment-webhooks", headers=viewer).json()
    assert [h["id"] for h in listed["items"]] == [created["id"]]
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(path, headers=other).status_code == 404
    assert api.client.get(f"{path}/deliveries", headers=other).status_code == 404
    assert api.client.get(f"{path}/deliveries", headers=viewer).status_code == 403
    assert api.client.delete(path, headers=admin).status_code == 204
    assert api.client.get(path, headers=owner).status_code == 404


def test_every_transition_is_written_with_it_and_delivered_signed_in_order(api, app, receiver):
    owner = api.owner()
    org_id = _org_id(api, owner)
    model = _model(api, owner)
    everything = _subscribe(api, owner, receiver.url + "/all")
    first = _deploy(api, owner, model, 1)
    only_rollbacks = _subscribe(
        api,
        owner,
        receiver.url + "/rollbacks",
        name="rollbacks",
        events=["rolled_back", "restored"],
    )
    first = _act(api, owner, first, "promote", reason="initial")
    canary = _deploy(api, owner, model, 2, strategy="canary", traffic_steps=[10, 50])
    canary = _act(api, owner, canary, "traffic", percent=50, reason="healthy")
    canary = _act(api, owner, canary, "promote", reason="canary good")
    restored = _act(api, owner, canary, "rollback", reason="f1 dropped")
    doomed = _deploy(api, owner, model, 3)
    # a promotion that loses the race (stale If-Match) has superseded the active deployment
    # before failing: that transition and its messages are rolled back together
    before = _outbox_rows(app, org_id)
    _act(api, owner, doomed | {"version": 9}, "promote", expect=412)
    _act(api, owner, first, "promote", expect=409)
    assert _outbox_rows(app, org_id) == before
    _act(api, owner, doomed, "fail", reason="image pull error")

    with httpx.Client(timeout=5.0) as client:
        report = _deliverer(app, org_id, client).run_once()
    assert report.sent == len(receiver.received)
    everything_got = [r for r in receiver.received if r.path == "/all"]
    messages = _verified(everything_got, OLD)
    assert [(m["type"], m["data"]["deployment"]["id"]) for m in messages] == [
        ("deployment.created", first["id"]),
        ("deployment.promoted", first["id"]),
        ("deployment.created", canary["id"]),
        ("deployment.traffic_set", canary["id"]),
        ("deployment.superseded", first["id"]),
        ("deployment.promoted", canary["id"]),
        ("deployment.rolled_back", canary["id"]),
        ("deployment.restored", restored["id"]),
        ("deployment.created", doomed["id"]),
        ("deployment.failed", doomed["id"]),
    ]
    promoted = messages[5]["data"]
    user_id = api.client.get("/v1/me", headers=owner).json()["id"]
    assert {k: promoted[k] for k in ("from_state", "to_state", "traffic_percent", "actor")} == {
        "from_state": "pending",
        "to_state": "active",
        "traffic_percent": 100,
        "actor": user_id,
    }
    assert promoted["reason"] == "canary good"
    assert promoted["model"] | {"id": None, "version_id": None} == {
        "id": None,
        "name": "fraud",
        "version": 2,
        "version_id": None,
        "artifact_uri": "s3://models/fraud/2",
    }
    assert promoted["deployment"]["strategy"] == "canary"
    assert messages[7]["data"]["model"]["version"] == 1  # the restored version
    ids = [r.headers["webhook-id"] for r in everything_got]
    assert len(set(ids)) == len(ids)
    assert all(r.headers["user-agent"] == "driftline-webhooks" for r in everything_got)
    rollbacks = _verified([r for r in receiver.received if r.path == "/rollbacks"], OLD)
    assert [m["type"] for m in rollbacks] == ["deployment.rolled_back", "deployment.restored"]

    log = api.client.get(f"/v1/deployment-webhooks/{everything['id']}/deliveries", headers=owner)
    assert log.status_code == 200, log.text
    entries = log.json()["items"]
    assert len(entries) == 10
    assert {(e["outcome"], e["status_code"], e["attempt"]) for e in entries} == {
        ("delivered", 200, 1)
    }
    assert entries[0]["event_type"] == "deployment.failed"  # newest first
    assert only_rollbacks["id"] != everything["id"]
    with httpx.Client(timeout=5.0) as client:  # nothing left: a second pass sends nothing
        assert _deliverer(app, org_id, client).run_once().sent == 0


def test_a_failing_receiver_is_retried_in_order_with_rotated_secrets(api, app, receiver):
    owner = api.owner()
    org_id = _org_id(api, owner)
    model = _model(api, owner)
    hook = _subscribe(api, owner, receiver.url, signing_secrets=[NEW, OLD])
    first = _deploy(api, owner, model, 1)
    _act(api, owner, first, "promote")
    receiver.answer((429, 0.0, {"Retry-After": "7"}), 200, 200)
    clock = Clock()
    clock.now = datetime.now(UTC)
    with httpx.Client(timeout=5.0) as client:
        deliverer = _deliverer(app, org_id, client, clock)
        report = deliverer.run_once()
        assert (report.sent, report.retried) == (0, 1)
        # "promoted" waits behind the failed "created": one request so far
        assert len(receiver.received) == 1
        clock.advance(5)
        assert deliverer.run_once().sent == 0  # Retry-After 7 s is not over
        clock.advance(3)
        assert deliverer.run_once().sent == 2
    first_try, *delivered = receiver.received
    assert first_try.headers["x-answered"] == "429"
    assert delivered[0].headers["webhook-id"] == first_try.headers["webhook-id"]
    # during rotation the receiver may hold either secret
    for secret in (OLD, NEW):
        types = [m["type"] for m in _verified(delivered, secret)]
        assert types == ["deployment.created", "deployment.promoted"]
    assert len(first_try.headers["webhook-signature"].split(" ")) == 2
    log = api.client.get(f"/v1/deployment-webhooks/{hook['id']}/deliveries", headers=owner)
    entries = [
        (e["event_type"], e["attempt"], e["outcome"], e["status_code"]) for e in log.json()["items"]
    ]
    assert entries == [
        ("deployment.promoted", 1, "delivered", 200),
        ("deployment.created", 2, "delivered", 200),
        ("deployment.created", 1, "retry", 429),
    ]


def test_a_permanent_failure_is_dead_and_the_next_message_goes(api, app, receiver):
    owner = api.owner()
    org_id = _org_id(api, owner)
    model = _model(api, owner, versions=1)
    hook = _subscribe(api, owner, receiver.url)
    first = _deploy(api, owner, model, 1)
    _act(api, owner, first, "promote")
    receiver.answer(410, 200)
    with httpx.Client(timeout=5.0) as client:
        report = _deliverer(app, org_id, client).run_once()
    assert (report.sent, report.dead) == (1, 1)
    log = api.client.get(f"/v1/deployment-webhooks/{hook['id']}/deliveries", headers=owner)
    outcomes = [(e["event_type"], e["outcome"]) for e in log.json()["items"]]
    assert outcomes == [("deployment.promoted", "delivered"), ("deployment.created", "dead")]
    assert "HTTP 410" in log.json()["items"][1]["error"]


def test_the_api_delivery_loop_sends_transitions_by_itself(app_factory, receiver, chdb_url):
    from fastapi.testclient import TestClient

    from tests.control_api.conftest import Api

    app = app_factory(clickhouse_url=chdb_url, alert_delivery_seconds=0.1)
    with TestClient(app) as client:
        api = Api(client)
        owner = api.owner()
        model = _model(api, owner, versions=1)
        _subscribe(api, owner, receiver.url)
        _deploy(api, owner, model, 1)
        deadline = time.monotonic() + 10
        while not receiver.ok() and time.monotonic() < deadline:
            time.sleep(0.05)
    (message,) = _verified(receiver.ok(), OLD)
    assert message["type"] == "deployment.created"
    assert orjson.loads(receiver.ok()[0].body)["data"]["model"]["version"] == 1
