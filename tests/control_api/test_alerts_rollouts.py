"""Alerting that follows model rollouts, over HTTP on SQLite and PostgreSQL: rules targeting
a model alias, and silences scoped to a deployment's rollout."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from control_api.deployments.service import TRANSITIONS
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import MemoryHistory
from engine.alerts.silence import ROLLOUT_STATES
from engine.alerts.targets import SERVING_STATES
from tests.engine import alerts_support
from tests.engine.alerts_support import window

receiver = alerts_support.receiver  # a real HTTP receiver on 127.0.0.1
PSI = {"kind": "drift_statistic", "statistic": "psi", "features": ["x"]}


@pytest.fixture
def settings(settings):
    """The app's own delivery loop waits 300 s: the tests run its passes themselves."""
    return settings.model_copy(update={"alert_delivery_seconds": 300})


def _org(api, headers):
    return api.client.get("/v1/me", headers=headers).json()["org_id"]


def _model(api, headers, versions):
    model = api.client.post("/v1/models", headers=headers, json={"name": "fraud-model"}).json()
    for number in range(1, versions + 1):
        path = f"/v1/models/{model['id']}/versions"
        assert api.client.post(path, headers=headers, json={}).status_code == 201
        approval = api.client.post(
            f"{path}/{number}/approvals", headers=headers, json={"passed": True}
        )
        assert approval.status_code == 201, approval.text
    return model


def _deploy(api, headers, model, number, environment, **extra):
    body = {"name": "fraud-api", "environment": environment, "model_id": model["id"]}
    created = api.client.post(
        "/v1/deployments", headers=headers, json=body | {"model_version": number} | extra
    )
    assert created.status_code == 201, created.text
    return created.json()


def _act(api, headers, deployment, action, **body):
    done = api.client.post(
        f"/v1/deployments/{deployment['id']}/{action}",
        headers=headers | {"If-Match": f'"{deployment["version"]}"'},
        json=body,
    )
    assert done.status_code == 200, done.text
    return done.json()


def _champion(api, headers, model, number):
    moved = api.client.put(
        f"/v1/models/{model['id']}/aliases/champion", headers=headers, json={"version": number}
    )
    assert moved.status_code == 200, moved.text


def _alerts(api, headers):
    items = api.client.get("/v1/alerts", headers=headers).json()["items"]
    return {a["deployment"]: (a["state"], a["evaluated_at_ms"]) for a in items}


def test_the_engine_states_match_the_deployment_state_machine():
    assert set(SERVING_STATES) | set(ROLLOUT_STATES) <= set(TRANSITIONS)
    assert set(ROLLOUT_STATES) <= set(SERVING_STATES)


def test_a_rule_targeting_an_alias_follows_it_when_it_moves(api, app):
    owner = api.owner()
    org = _org(api, owner)
    model = _model(api, owner, versions=2)
    eu = _act(api, owner, _deploy(api, owner, model, 1, "prod-eu"), "promote")
    us = _act(api, owner, _deploy(api, owner, model, 2, "prod-us"), "promote")
    _champion(api, owner, model, 1)

    def rule(**subject):
        body = {"name": "psi", "condition": PSI, "severity": "critical"}
        return api.client.post("/v1/alert-rules", headers=owner, json=body | subject)

    assert rule(target="nope@champion").status_code == 422  # no such model
    assert rule(target="fraud-model").status_code == 422  # no alias
    assert rule().status_code == 422  # neither a deployment nor a target
    assert rule(deployment=eu["id"], target="fraud-model@champion").status_code == 422
    created = rule(target="fraud-model@champion")
    assert created.status_code == 201, created.text
    assert (created.json()["target"], created.json()["deployment"]) == (
        "fraud-model@champion",
        None,
    )

    evaluator = AlertEvaluator(app.state.ctx.sessions, org, MemoryHistory())
    for deployment in (eu, us):
        evaluator.on_window_closed(window(0, psi=0.5, deployment=deployment["id"]))
    first_end = window(0).end_ms
    assert _alerts(api, owner) == {eu["id"]: ("firing", first_end)}  # champion is version 1

    _champion(api, owner, model, 2)  # the alias moves: so does the rule
    for deployment in (eu, us):
        evaluator.on_window_closed(window(1, psi=0.5, deployment=deployment["id"]))
    second_end = window(1).end_ms
    assert _alerts(api, owner) == {
        eu["id"]: ("resolved", second_end),  # no longer watched: let go at its next window
        us["id"]: ("firing", second_end),
    }
    (fired,) = [
        a for a in api.client.get("/v1/alerts", headers=owner).json()["items"]
        if a["deployment"] == us["id"]
    ]  # fmt: skip
    assert fired["labels"]["deployment"] == us["id"]

    # a deployment superseded in its slot no longer serves the version: the new one does
    successor = _act(api, owner, _deploy(api, owner, model, 2, "prod-us"), "promote")
    for deployment in (us, successor):
        evaluator.on_window_closed(window(2, psi=0.5, deployment=deployment["id"]))
    alerts = _alerts(api, owner)
    assert alerts[us["id"]] == ("resolved", window(2).end_ms)
    assert alerts[successor["id"]] == ("firing", window(2).end_ms)
    evaluator.on_window_closed(window(3, psi=0.5, deployment=eu["id"]))  # nothing to let go
    assert _alerts(api, owner)[eu["id"]] == ("resolved", second_end)

    # setting one subject clears the other
    path = f"/v1/alert-rules/{created.json()['id']}"
    pinned = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"deployment": "d"})
    assert (pinned.json()["deployment"], pinned.json()["target"]) == ("d", None)
    both = {"deployment": "d", "target": "fraud-model@champion"}
    assert api.client.patch(path, headers=owner | {"If-Match": '"2"'}, json=both).status_code == 422
    unknown = api.client.patch(
        path, headers=owner | {"If-Match": '"2"'}, json={"target": "other@champion"}
    )
    assert unknown.status_code == 422
    back = api.client.patch(
        path, headers=owner | {"If-Match": '"2"'}, json={"target": "fraud-model@champion"}
    )
    assert (back.json()["deployment"], back.json()["target"]) == (None, "fraud-model@champion")


def test_a_rollout_silence_mutes_the_canary_until_it_is_promoted(api, app, receiver):
    owner = api.owner()
    org = _org(api, owner)
    model = _model(api, owner, versions=2)
    stable = _act(api, owner, _deploy(api, owner, model, 1, "prod"), "promote")
    canary = _deploy(api, owner, model, 2, "prod", strategy="canary", traffic_steps=[10, 50])
    channel = api.client.post(
        "/v1/channels",
        headers=owner,
        json={"name": "hook", "kind": "webhook", "config": {"url": receiver.url}},
    ).json()
    tree = {"channels": [channel["id"]], "group_wait_ms": 0}
    assert (
        api.client.put("/v1/alert-routing", headers=owner, json={"tree": tree}).status_code == 200
    )
    rule = {"name": "canary-psi", "deployment": canary["id"], "condition": PSI}
    assert api.client.post("/v1/alert-rules", headers=owner, json=rule).status_code == 201

    def silence(**body):
        return api.client.post("/v1/silences", headers=owner, json=body)

    assert silence(rollout_of=stable["id"]).status_code == 409  # active: not rolling out
    assert silence(rollout_of="no-such-deployment").status_code == 422
    assert silence(comment="neither matchers nor a rollout").status_code == 422
    created = silence(rollout_of=canary["id"], comment="canary of v2")
    assert created.status_code == 201, created.text
    muted = created.json()
    assert muted["rollout_of"] == canary["id"]
    assert muted["matchers"] == [{"name": "deployment", "op": "=", "value": canary["id"]}]
    ends = datetime.fromisoformat(muted["ends_at"])
    assert timedelta(days=6) < ends - datetime.now(UTC) <= timedelta(days=7)

    def active_silences():
        page = api.client.get("/v1/silences", headers=owner, params={"active": True}).json()
        return [s["id"] for s in page["items"]]

    assert active_silences() == [muted["id"]]
    evaluator = AlertEvaluator(app.state.ctx.sessions, org, MemoryHistory())
    delivery = app.state.ctx.delivery
    evaluator.on_window_closed(window(0, psi=0.5, deployment=canary["id"]))
    assert delivery.run_once() == 0  # firing, muted by the rollout silence
    canary = _act(api, owner, canary, "traffic", percent=50, reason="healthy")
    evaluator.on_window_closed(window(1, psi=0.5, deployment=canary["id"]))
    assert delivery.run_once() == 0  # a later traffic step is still the rollout
    assert receiver.received == []

    canary = _act(api, owner, canary, "promote", reason="rollout done")
    assert (canary["state"], canary["traffic_percent"]) == ("active", 100)
    assert active_silences() == []  # ended by itself with the rollout
    ended = api.client.get("/v1/silences", headers=owner, params={"active": False}).json()
    assert [s["id"] for s in ended["items"]] == [muted["id"]]
    evaluator.on_window_closed(window(2, psi=0.5, deployment=canary["id"]))
    assert delivery.run_once() == 1
    (got,) = receiver.received
    (alert,) = orjson.loads(got.body)["data"]["alerts"]
    assert alert["labels"]["deployment"] == canary["id"]
    assert silence(rollout_of=canary["id"]).status_code == 409  # its rollout is over


def test_a_rollout_silence_ends_when_the_rollout_fails(api):
    owner = api.owner()
    model = _model(api, owner, versions=1)
    pending = _deploy(api, owner, model, 1, "staging")
    created = api.client.post("/v1/silences", headers=owner, json={"rollout_of": pending["id"]})
    assert created.status_code == 201, created.text
    listed = api.client.get("/v1/silences", headers=owner, params={"active": True}).json()
    assert [s["id"] for s in listed["items"]] == [created.json()["id"]]
    _act(api, owner, pending, "fail", reason="pods crash")
    assert api.client.get("/v1/silences", headers=owner, params={"active": True}).json() == {
        "items": [],
        "next_cursor": None,
    }
