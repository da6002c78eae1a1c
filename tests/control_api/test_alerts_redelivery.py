"""Redelivery of a finished notification over HTTP, on SQLite and PostgreSQL: a real
receiver on 127.0.0.1 is down until the message is dead, then up for the redelivery."""

import socket
import time

import pytest
from standardwebhooks import Webhook

from control_api.runtime import AlertDrain, DeliveryLoop
from engine.alerts.delivery import RetryPolicy
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import MemoryHistory
from tests.engine.alerts_support import running_receiver, window

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RULE = {
    "name": "psi-x",
    "deployment": "d",
    "condition": {"kind": "drift_statistic", "statistic": "psi", "features": ["x"]},
}


@pytest.fixture
def settings(settings):
    """The app's own delivery loop waits 300 s: the tests run its passes themselves."""
    return settings.model_copy(update={"alert_delivery_seconds": 300})


def _closed_port() -> int:
    """A port nothing listens on (connections are refused) until a receiver takes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dead_notification_is_redelivered_once_with_the_same_webhook_id(api, app):
    owner = api.owner()
    editor = api.member(owner, "editor")
    org = api.client.get("/v1/me", headers=owner).json()["org_id"]
    port = _closed_port()
    channel = api.client.post(
        "/v1/channels",
        headers=owner,
        json={
            "name": "hook",
            "kind": "webhook",
            "config": {"url": f"http://127.0.0.1:{port}/hook"},
            "secrets": {"signing_secrets": [SECRET]},
        },
    ).json()
    tree = {"channels": [channel["id"]], "group_wait_ms": 0}
    assert (
        api.client.put("/v1/alert-routing", headers=owner, json={"tree": tree}).status_code == 200
    )
    assert api.client.post("/v1/alert-rules", headers=owner, json=RULE).status_code == 201
    ctx = app.state.ctx
    AlertEvaluator(ctx.sessions, org, MemoryHistory()).on_window_closed(window(0, psi=0.5))

    # the receiver is down: three refused attempts, a few milliseconds apart, then dead
    fast = RetryPolicy(base_s=0.01, jitter=0.0, max_attempts=3)
    loop = DeliveryLoop((AlertDrain(ctx.sessions, ctx.secret_box, retry=fast),), timeout_seconds=1)
    deliveries = f"/v1/channels/{channel['id']}/deliveries"
    for _ in range(100):
        loop.run_once()
        log = api.client.get(deliveries, headers=owner).json()["items"]
        if log and log[0]["outcome"] == "dead":
            break
        time.sleep(0.02)
    assert [(d["attempt"], d["outcome"], d["status_code"]) for d in log] == [
        (3, "dead", None),
        (2, "retry", None),
        (1, "retry", None),
    ]
    message = log[0]["notification_id"]
    redeliver = f"{deliveries}/{log[0]['id']}/redeliver"
    assert api.client.post(redeliver, headers=editor).status_code == 403
    assert api.client.post(f"{deliveries}/nope/redeliver", headers=owner).status_code == 404

    with running_receiver(port) as receiver:  # the receiver is back
        queued = api.client.post(redeliver, headers=owner)
        assert queued.status_code == 202, queued.text
        assert (queued.json()["notification_id"], queued.json()["alerts"]) == (message, 1)
        assert api.client.post(redeliver, headers=owner).status_code == 409  # still queued
        assert ctx.delivery.run_once() == 1  # the app's loop, its default retry budget
        assert ctx.delivery.run_once() == 0
        (got,) = receiver.received  # once
        assert got.path == "/hook"
        assert got.headers["webhook-id"] == message  # the same idempotency key
        assert Webhook(SECRET).verify(got.body, got.headers)["type"] == "alert.firing"
        log = api.client.get(deliveries, headers=owner).json()["items"]
        assert [(d["attempt"], d["outcome"], d["status_code"]) for d in log[:2]] == [
            (1, "delivered", 200),
            (0, "requeued", None),
        ]
        # a delivered message may be sent again too
        again = api.client.post(f"{deliveries}/{log[0]['id']}/redeliver", headers=owner)
        assert again.status_code == 202
        assert ctx.delivery.run_once() == 1
        assert [r.headers["webhook-id"] for r in receiver.received] == [message, message]
