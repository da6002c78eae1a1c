"""The alerting resources over HTTP, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import httpx
import orjson
from standardwebhooks import Webhook

from engine.alerts.delivery import Deliverer
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import MemoryHistory
from engine.alerts.notifiers import build_notifier
from tests.engine import alerts_support
from tests.engine.alerts_support import window

receiver = alerts_support.receiver  # a real HTTP receiver on 127.0.0.1

RULE = {
    "name": "psi-x",
    "deployment": "d",
    "condition": {"kind": "drift_statistic", "statistic": "psi", "features": ["x"]},
    "for_windows": 2,
    "severity": "critical",
    "annotations": {"summary": "PSI {{ '%.2f'|format(value) }} >= {{ threshold }}"},
}
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _org_id(api, headers):
    return api.client.get("/v1/me", headers=headers).json()["org_id"]


def test_rule_crud_with_if_match_and_validation(api):
    owner = api.owner()
    created = api.client.post("/v1/alert-rules", headers=owner, json=RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["condition"]["threshold"] is None
    assert rule["version"] == 1
    path = f"/v1/alert-rules/{rule['id']}"
    assert api.client.post("/v1/alert-rules", headers=owner, json=RULE).status_code == 409
    bad = dict(RULE, name="bad", condition={"kind": "error_rate", "threshold": 3})
    assert api.client.post("/v1/alert-rules", headers=owner, json=bad).status_code == 422
    assert api.client.patch(path, headers=owner, json={"for_windows": 3}).status_code == 428
    changed = api.client.patch(
        path, headers=owner | {"If-Match": '"1"'}, json={"for_windows": 3, "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["for_windows"], changed.json()["enabled"]) == (3, False)
    assert changed.headers["etag"] == '"2"'
    stale = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"for_windows": 4})
    assert stale.status_code == 412
    listed = api.client.get("/v1/alert-rules", headers=owner, params={"deployment": "d"}).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(path, headers=other).status_code == 404  # another tenant's
    assert api.client.delete(path, headers=owner).status_code == 204
    assert api.client.get(path, headers=owner).status_code == 404


def test_channels_keep_secrets_write_only_and_test_message(api, receiver):
    owner = api.owner()
    body = {
        "name": "hook",
        "kind": "webhook",
        "config": {"url": receiver.url + "/hook"},
        "secrets": {"signing_secrets": [SECRET]},
    }
    created = api.client.post("/v1/channels", headers=owner, json=body)
    assert created.status_code == 201, created.text
    channel = created.json()
    assert "secrets" not in channel
    assert channel["secret_fields"] == ["signing_secrets"]
    assert SECRET not in api.client.get(f"/v1/channels/{channel['id']}", headers=owner).text
    wrong = {"name": "s", "kind": "slack", "config": {}, "secrets": {}}
    refused = api.client.post("/v1/channels", headers=owner, json=wrong)
    assert refused.status_code == 422
    assert "url" in refused.json()["detail"]

    sent = api.client.post(f"/v1/channels/{channel['id']}/test", headers=owner)
    assert sent.json() == {"delivered": True, "status_code": 200, "error": "", "retryable": None}
    (got,) = receiver.received
    assert (
        Webhook(SECRET).verify(got.body, got.headers)["data"]["alerts"][0]["labels"]["alertname"]
        == "DriftlineTest"
    )
    receiver.answer(404)
    failed = api.client.post(f"/v1/channels/{channel['id']}/test", headers=owner).json()
    assert (failed["delivered"], failed["status_code"], failed["retryable"]) == (False, 404, False)

    renamed = api.client.patch(
        f"/v1/channels/{channel['id']}",
        headers=owner,
        json={"name": "hook2", "send_resolved": False},
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["send_resolved"]) == ("hook2", False)
    assert renamed.json()["secret_fields"] == ["signing_secrets"]  # kept
    page = api.client.get("/v1/channels", headers=owner).json()
    assert [c["name"] for c in page["items"]] == ["hook2"]


def test_routing_tree_and_silences(api):
    owner = api.owner()
    assert api.client.get("/v1/alert-routing", headers=owner).json()["version"] == 0
    channel = api.client.post(
        "/v1/channels",
        headers=owner,
        json={"name": "am", "kind": "alertmanager", "config": {"url": "http://127.0.0.1:9"}},
    ).json()
    tree = {
        "channels": [channel["id"]],
        "group_by": ["alertname"],
        "routes": [
            {
                "matchers": [{"name": "severity", "value": "critical"}],
                "continue": True,
                "group_wait_ms": 0,
            }
        ],
    }
    put = api.client.put("/v1/alert-routing", headers=owner, json={"tree": tree})
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1
    got = api.client.get("/v1/alert-routing", headers=owner).json()
    assert got["tree"]["routes"][0]["continue"] is True
    unknown = {"tree": {"channels": ["nope"]}}
    assert api.client.put("/v1/alert-routing", headers=owner, json=unknown).status_code == 422

    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    silence = api.client.post(
        "/v1/silences",
        headers=owner,
        json={
            "matchers": [{"name": "deployment", "value": "d"}],
            "ends_at": ends,
            "comment": "rollout",
        },
    )
    assert silence.status_code == 201, silence.text
    assert silence.json()["comment"] == "rollout"
    bad = {"matchers": [{"name": "a", "op": "=~", "value": "("}], "ends_at": ends}
    assert api.client.post("/v1/silences", headers=owner, json=bad).status_code == 422
    # found by schemathesis: times that overflow in UTC were 500s
    for body in (
        {"starts_at": "0001-01-01T00:00:00+01:00"},
        {"ends_at": "9999-12-31T23:59:00-01:00"},
        {"starts_at": "9999-12-31T23:00:00+00:00"},
    ):
        refused = api.client.post("/v1/silences", headers=owner, json=body)
        assert refused.status_code == 422, refused.text
    active = api.client.get("/v1/silences", headers=owner, params={"active": True}).json()
    assert len(active["items"]) == 1
    sid = silence.json()["id"]
    assert api.client.delete(f"/v1/silences/{sid}", headers=owner).status_code == 204
    assert (
        api.client.get("/v1/silences", headers=owner, params={"active": True}).json()["items"] == []
    )


def test_alerts_list_filter_acknowledge_and_delivery_log(api, app, receiver):
    owner = api.owner()
    org = _org_id(api, owner)
    editor = api.member(owner, "editor")
    viewer = api.member(owner, "viewer")
    rule = api.client.post("/v1/alert-rules", headers=owner, json=RULE).json()
    channel = api.client.post(
        "/v1/channels",
        headers=owner,
        json={"name": "hook", "kind": "webhook", "config": {"url": receiver.url}},
    ).json()
    api.client.put(
        "/v1/alert-routing",
        headers=owner,
        json={"tree": {"channels": [channel["id"]], "group_wait_ms": 0}},
    )
    sessions = app.state.ctx.sessions
    evaluator = AlertEvaluator(sessions, org, MemoryHistory())
    evaluator.on_window_closed(window(0, psi=0.3))
    pending = api.client.get("/v1/alerts", headers=viewer, params={"state": "pending"}).json()
    (alert,) = pending["items"]
    assert alert["rule_id"] == rule["id"]
    assert alert["annotations"]["summary"] == "PSI 0.30 >= 0.2"
    evaluator.on_window_closed(window(1, psi=0.4))
    firing = api.client.get(
        "/v1/alerts", headers=viewer, params={"state": "firing", "severity": "critical"}
    ).json()["items"]
    assert [a["id"] for a in firing] == [alert["id"]]
    assert (
        api.client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=viewer).status_code == 403
    )
    acked = api.client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=editor)
    assert acked.status_code == 200
    assert acked.json()["acknowledged_by"]
    assert (
        api.client.get("/v1/alerts", headers=viewer, params={"acknowledged": False}).json()["items"]
        == []
    )
    assert api.client.get(f"/v1/alerts/{alert['id']}", headers=viewer).json()["state"] == "firing"

    with httpx.Client(timeout=2) as client:
        deliverer = Deliverer(
            sessions, org, lambda ch: build_notifier(ch.kind, ch.config, ch.secrets, client=client)
        )
        assert deliverer.run_once().sent == 1
    assert orjson.loads(receiver.received[0].body)["data"]["alerts"][0]["value"] == 0.4
    log = api.client.get(f"/v1/channels/{channel['id']}/deliveries", headers=owner).json()
    assert [(d["attempt"], d["outcome"], d["status_code"]) for d in log["items"]] == [
        (1, "delivered", 200)
    ]
    evaluator.on_window_closed(window(2, psi=0.0))
    resolved = api.client.get(f"/v1/alerts/{alert['id']}", headers=viewer).json()
    assert resolved["state"] == "resolved"
    again = api.client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=editor)
    assert again.status_code == 409
