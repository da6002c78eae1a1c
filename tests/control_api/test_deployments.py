import pytest

from control_api.deployments.autorollback import AutoRollback, RollbackHook


def _registry(api, headers, versions=3):
    model = api.client.post("/v1/models", headers=headers, json={"name": "fraud"}).json()
    for _ in range(versions):
        created = api.client.post(f"/v1/models/{model['id']}/versions", headers=headers, json={})
        assert created.status_code == 201
    return model


def _deploy(api, headers, model, number, **extra):
    body = {"name": "fraud-api", "environment": "prod", "model_id": model["id"]}
    response = api.client.post(
        "/v1/deployments", headers=headers, json=body | {"model_version": number} | extra
    )
    assert response.status_code == 201, response.text
    return response.json()


def _act(api, headers, deployment, action, etag=None, **body):
    tag = etag if etag is not None else f'"{deployment["version"]}"'
    return api.client.post(
        f"/v1/deployments/{deployment['id']}/{action}",
        headers=headers | {"If-Match": tag},
        json=body,
    )


def test_promote_supersedes_and_rollback_restores(api):
    owner = api.owner()
    model = _registry(api, owner)
    first = _deploy(api, owner, model, 1)
    assert (first["state"], first["traffic_percent"]) == ("pending", 0)
    first = _act(api, owner, first, "promote", reason="initial").json()
    assert (first["state"], first["traffic_percent"], first["version"]) == ("active", 100, 2)

    canary = _deploy(api, owner, model, 2, strategy="canary", traffic_steps=[5, 25, 50])
    assert canary["traffic_percent"] == 5
    stepped = _act(api, owner, canary, "traffic", percent=25, reason="healthy")
    assert stepped.status_code == 200, stepped.text
    assert stepped.headers["etag"] == '"2"'
    canary = _act(api, owner, stepped.json(), "promote", reason="canary good").json()
    assert (canary["state"], canary["previous_id"]) == ("active", first["id"])
    old = api.client.get(f"/v1/deployments/{first['id']}", headers=owner).json()
    assert (old["state"], old["traffic_percent"]) == ("superseded", 0)

    restored = _act(api, owner, canary, "rollback", reason="accuracy dropped")
    assert restored.status_code == 200, restored.text
    restored = restored.json()
    assert restored["id"] not in (first["id"], canary["id"])
    assert restored["model_version_id"] == first["model_version_id"]
    assert (restored["state"], restored["traffic_percent"]) == ("active", 100)
    rolled = api.client.get(f"/v1/deployments/{canary['id']}", headers=owner).json()
    assert rolled["state"] == "rolled_back"

    trail = api.client.get(f"/v1/deployments/{canary['id']}/events", headers=owner).json()
    assert [(e["action"], e["from_state"], e["to_state"], e["traffic_percent"]) for e in trail] == [
        ("created", None, "pending", 5),
        ("traffic_set", "pending", "pending", 25),
        ("promoted", "pending", "active", 100),
        ("rolled_back", "active", "rolled_back", 0),
    ]
    assert trail[-1]["reason"] == "accuracy dropped"
    assert {e["actor"] for e in trail} == {trail[0]["actor"]}
    # nothing before the first deployment: rolling it back has nowhere to go
    assert _act(api, owner, restored, "rollback").status_code == 409

    listed = api.client.get("/v1/deployments", headers=owner, params={"state": "active"}).json()
    assert [d["id"] for d in listed["items"]] == [restored["id"]]


def test_illegal_transitions_answer_409(api):
    owner = api.owner()
    model = _registry(api, owner)
    direct = _deploy(api, owner, model, 1)
    assert _act(api, owner, direct, "traffic", percent=10).status_code == 409
    failed = _act(api, owner, direct, "fail", reason="image pull error").json()
    assert failed["state"] == "failed"
    for action in ("promote", "rollback", "fail"):
        response = _act(api, owner, failed, action)
        assert response.status_code == 409, action
        assert response.json()["type"] == "/problems/illegal-transition"
    canary = _deploy(api, owner, model, 2, strategy="canary", traffic_steps=[10])
    canary = _act(api, owner, canary, "promote").json()
    assert _act(api, owner, canary, "traffic", percent=50).status_code == 409
    assert _act(api, owner, canary, "promote").status_code == 409
    # bad bodies are 422 problems
    for extra in (
        {"strategy": "canary"},
        {"traffic_steps": [5]},
        {"strategy": "canary", "traffic_steps": [50, 5]},
    ):
        bad = api.client.post(
            "/v1/deployments",
            headers=owner,
            json={"name": "x", "environment": "prod", "model_id": model["id"], "model_version": 1}
            | extra,
        )
        assert bad.status_code == 422, extra
    missing = api.client.post(
        "/v1/deployments",
        headers=owner,
        json={"name": "x", "environment": "prod", "model_id": model["id"], "model_version": 9},
    )
    assert missing.status_code == 404


def test_two_operators_cannot_both_promote(api):
    owner = api.owner()
    editor = api.member(owner, "editor")
    model = _registry(api, owner)
    pending = _deploy(api, owner, model, 1)
    assert _act(api, owner, pending, "promote", etag=None).status_code == 200
    late = _act(api, editor, pending, "promote")  # read the same version 1
    assert late.status_code in (409, 412)
    # two candidates of one slot, both read while version 1 is active
    a = _deploy(api, owner, model, 2)
    b = _deploy(api, owner, model, 3)
    assert _act(api, owner, a, "promote").status_code == 200
    stale = _act(api, editor, a, "promote")
    assert stale.status_code == 409
    b_now = _act(api, editor, b, "promote")
    assert b_now.status_code == 200  # b supersedes a, which is now the active one
    active = api.client.get("/v1/deployments", headers=owner, params={"state": "active"}).json()
    assert [d["id"] for d in active["items"]] == [b["id"]]
    no_tag = api.client.post(f"/v1/deployments/{b['id']}/rollback", headers=owner, json={})
    assert no_tag.status_code == 428
    assert _act(api, owner, b, "rollback", etag='"1"').status_code == 412


def test_archived_versions_cannot_be_deployed_and_tenants_are_apart(api):
    owner = api.owner()
    model = _registry(api, owner, versions=1)
    archived = api.client.post(f"/v1/models/{model['id']}/versions/1/archive", headers=owner)
    assert archived.status_code == 200
    body = {"name": "a", "environment": "prod", "model_id": model["id"], "model_version": 1}
    assert api.client.post("/v1/deployments", headers=owner, json=body).status_code == 422
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.post("/v1/deployments", headers=other, json=body).status_code == 404


def test_auto_rollback_hook(api, app):
    owner = api.owner()
    model = _registry(api, owner)
    policy = {"enabled": True, "on": ["degradation"]}
    stable = _act(api, owner, _deploy(api, owner, model, 1), "promote").json()
    canary = _deploy(
        api, owner, model, 2, strategy="canary", traffic_steps=[10], rollback_policy=policy
    )
    org_id = api.client.get("/v1/me", headers=owner).json()["org_id"]
    hook: RollbackHook = AutoRollback(app.state.ctx.sessions)
    assert (
        hook.on_alert_firing(
            org_id=org_id, deployment_id=canary["id"], alert_kind="drift", reason="psi"
        )
        is None
    )
    assert (
        hook.on_alert_firing(
            org_id=org_id, deployment_id="missing", alert_kind="degradation", reason="x"
        )
        is None
    )
    serving = hook.on_alert_firing(
        org_id=org_id, deployment_id=canary["id"], alert_kind="degradation", reason="f1 < 0.8"
    )
    assert serving is not None
    assert serving.id == stable["id"]
    trail = api.client.get(f"/v1/deployments/{canary['id']}/events", headers=owner).json()
    assert (trail[-1]["actor"], trail[-1]["reason"], trail[-1]["to_state"]) == (
        "auto-rollback",
        "f1 < 0.8",
        "rolled_back",
    )
    # once rolled back, another alert changes nothing
    assert (
        hook.on_alert_firing(
            org_id=org_id, deployment_id=canary["id"], alert_kind="degradation", reason="again"
        )
        is None
    )
    # an active deployment with a policy goes back to the version it superseded
    second = _deploy(api, owner, model, 3, rollback_policy=policy)
    second = _act(api, owner, second, "promote").json()
    serving = hook.on_alert_firing(
        org_id=org_id, deployment_id=second["id"], alert_kind="degradation", reason="mae up"
    )
    assert serving is not None
    assert serving.model_version_id == stable["model_version_id"]
    # another organization's id is unknown to this one
    other = api.owner("owner@other.example.com", "Other")
    other_org = api.client.get("/v1/me", headers=other).json()["org_id"]
    assert (
        hook.on_alert_firing(
            org_id=other_org, deployment_id=serving.id, alert_kind="degradation", reason="x"
        )
        is None
    )


@pytest.mark.parametrize("strategy", ["blue_green", "shadow"])
def test_blue_green_and_shadow_start_idle(api, strategy):
    owner = api.owner()
    model = _registry(api, owner, versions=1)
    created = _deploy(api, owner, model, 1, strategy=strategy)
    assert (created["strategy"], created["traffic_percent"]) == (strategy, 0)
    assert _act(api, owner, created, "promote").json()["traffic_percent"] == 100
