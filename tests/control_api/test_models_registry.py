import uuid

import pytest

from tests.control_api.conftest import make_settings


def _model(api, headers, name="fraud", **extra):
    response = api.client.post("/v1/models", headers=headers, json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def _version(api, headers, model_id, **extra):
    response = api.client.post(f"/v1/models/{model_id}/versions", headers=headers, json=extra)
    assert response.status_code == 201, response.text
    return response.json()


SCHEMA = [{"name": "amount", "type": "numeric"}, {"name": "country", "type": "categorical"}]


def _run(api, headers):
    """A run to register versions from (a version's source run must be one of the org's)."""
    experiment = api.client.post("/v1/experiments", headers=headers, json={"name": "train"})
    run = api.client.post(
        f"/v1/experiments/{experiment.json()['id']}/runs", headers=headers, json={}
    )
    assert run.status_code == 201, run.text
    return run.json()["id"]


def test_versions_are_numbered_per_model(api):
    owner = api.owner()
    a, b = _model(api, owner, "a", tags={"team": "risk"}), _model(api, owner, "b")
    numbers = [_version(api, owner, a["id"])["number"] for _ in range(3)]
    assert numbers == [1, 2, 3]
    run_id = _run(api, owner)
    first_b = _version(
        api, owner, b["id"], source_run=run_id, artifact_uri="s3://m/b/1", feature_schema=SCHEMA
    )
    assert first_b["number"] == 1
    assert first_b["feature_schema"] == SCHEMA
    assert api.client.get(f"/v1/models/{a['id']}", headers=owner).json()["latest_number"] == 3
    page = api.client.get(f"/v1/models/{a['id']}/versions", headers=owner, params={"limit": 2})
    assert [v["number"] for v in page.json()["items"]] == [3, 2]
    rest = api.client.get(
        f"/v1/models/{a['id']}/versions",
        headers=owner,
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
    )
    assert [v["number"] for v in rest.json()["items"]] == [1]
    got = api.client.get(f"/v1/models/{b['id']}/versions/1", headers=owner).json()
    assert got["source_run"] == run_id
    no_run = api.client.post(
        f"/v1/models/{a['id']}/versions", headers=owner, json={"source_run": "run-1"}
    )
    assert no_run.status_code == 422
    listed = api.client.get("/v1/models", headers=owner, params={"name_prefix": "a"}).json()
    assert [m["name"] for m in listed["items"]] == ["a"]
    assert api.client.post("/v1/models", headers=owner, json={"name": "a"}).status_code == 409
    duplicate = [SCHEMA[0], SCHEMA[0]]
    bad = api.client.post(
        f"/v1/models/{a['id']}/versions", headers=owner, json={"feature_schema": duplicate}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    unknown_project = api.client.post(
        "/v1/models", headers=owner, json={"name": "c", "project_id": "nope"}
    )
    assert unknown_project.status_code == 422


def test_champion_needs_an_approval_or_passing_evaluation(api):
    owner = api.owner()
    editor = api.member(owner, "editor")
    model = _model(api, owner)
    for _ in range(2):
        _version(api, owner, model["id"])
    base = f"/v1/models/{model['id']}"
    refused = api.client.put(f"{base}/aliases/champion", headers=editor, json={"version": 1})
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/promotion-refused"
    # any other alias is free
    challenger = api.client.put(f"{base}/aliases/challenger", headers=editor, json={"version": 2})
    assert challenger.status_code == 200, challenger.text
    # a failed evaluation does not count; editors cannot approve
    failed = api.client.post(
        f"{base}/versions/1/evaluations", headers=editor, json={"passed": False}
    )
    assert failed.status_code == 201
    assert (
        api.client.put(f"{base}/aliases/champion", headers=editor, json={"version": 1}).status_code
        == 409
    )
    assert (
        api.client.post(
            f"{base}/versions/1/approvals", headers=editor, json={"passed": True}
        ).status_code
        == 403
    )
    approved = api.client.post(
        f"{base}/versions/1/approvals", headers=owner, json={"passed": True, "note": "ok"}
    )
    assert approved.status_code == 201
    promoted = api.client.put(
        f"{base}/aliases/champion", headers=editor, json={"version": 1, "reason": "approved"}
    )
    assert promoted.status_code == 200, promoted.text
    evaluation = api.client.post(
        f"{base}/versions/2/evaluations",
        headers=editor,
        json={"passed": True, "metrics": {"auc": 0.91}},
    )
    assert evaluation.status_code == 201
    moved = api.client.put(
        f"{base}/aliases/champion", headers=editor, json={"version": 2, "reason": "better auc"}
    )
    assert moved.status_code == 200
    aliases = api.client.get(f"{base}/aliases", headers=owner).json()
    assert {a["alias"]: a["version"] for a in aliases} == {"challenger": 2, "champion": 2}
    reviews = api.client.get(f"{base}/versions/1/reviews", headers=owner).json()
    assert [(r["kind"], r["passed"]) for r in reviews] == [
        ("evaluation", False),
        ("approval", True),
    ]

    history = api.client.get(f"{base}/history", headers=owner).json()["items"]
    moves = [
        (e["alias"], e["from_number"], e["to_number"], e["reason"])
        for e in history
        if e["action"] == "alias_set"
    ]
    assert moves[0] == ("champion", 1, 2, "better auc")
    assert ("champion", None, 1, "approved") in moves

    # archive: refused while an alias points at the version, then allowed
    assert api.client.post(f"{base}/versions/2/archive", headers=editor).status_code == 409
    assert api.client.delete(f"{base}/aliases/challenger", headers=editor).status_code == 204
    assert api.client.delete(f"{base}/aliases/challenger", headers=editor).status_code == 404
    archived = api.client.post(f"{base}/versions/1/archive", headers=editor)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    back = api.client.put(f"{base}/aliases/champion", headers=editor, json={"version": 1})
    assert back.status_code == 409
    actions = [
        e["action"] for e in api.client.get(f"{base}/history", headers=owner).json()["items"]
    ]
    assert actions[:2] == ["version_archived", "alias_removed"]


def test_another_organization_sees_nothing(api):
    owner = api.owner()
    model = _model(api, owner)
    _version(api, owner, model["id"])
    other = api.owner("owner@other.example.com", "Other")
    base = f"/v1/models/{model['id']}"
    for path in (base, f"{base}/versions", f"{base}/versions/1", f"{base}/aliases"):
        assert api.client.get(path, headers=other).status_code == 404, path
    assert api.client.post(f"{base}/versions", headers=other, json={}).status_code == 404
    assert api.client.get("/v1/models", headers=other).json()["items"] == []
    # the same name is free in another organization
    assert _model(api, other)["name"] == "fraud"


def test_import_without_mlflow_is_refused(api):
    owner = api.owner()
    assert api.client.post("/v1/models/import-mlflow", headers=owner).status_code == 422


@pytest.mark.mlflow
def test_registry_is_mirrored_in_mlflow_and_imported(tmp_path, db_url, chdb_url, mlflow_uri):
    from fastapi.testclient import TestClient
    from mlflow import MlflowClient

    from control_api.app import create_app
    from tests.control_api.conftest import Api

    settings = make_settings(
        tmp_path, database_url=db_url, clickhouse_url=chdb_url, mlflow_tracking_uri=mlflow_uri
    )
    org = f"Org {uuid.uuid4().hex[:8]}"
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        signup = api.signup("owner@mlflow.example.com", org)
        slug = signup["org_slug"]
        owner = api.bearer(api.login("owner@mlflow.example.com")["access_token"])
        model = _model(api, owner, "churn", description="churn model", tags={"team": "growth"})
        v1 = _version(api, owner, model["id"], artifact_uri="s3://models/churn/1", tags={"k": "v"})
        _version(api, owner, model["id"])
        assert v1["number"] == 1
        base = f"/v1/models/{model['id']}"
        assert client.post(f"{base}/versions/1/approvals", headers=owner, json={"passed": True})
        assert client.put(f"{base}/aliases/champion", headers=owner, json={"version": 1})
        assert client.post(f"{base}/versions/2/archive", headers=owner).status_code == 200

        remote = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
        name = f"{slug}.churn"
        registered = remote.get_registered_model(name)
        assert registered.description == "churn model"
        assert registered.tags == {"team": "growth"}
        assert registered.aliases == {"champion": "1"}
        first = remote.get_model_version(name, "1")
        assert first.source == "s3://models/churn/1"
        assert first.tags == {"k": "v"}
        assert remote.get_model_version(name, "2").tags["driftline.archived"] == "true"

        # a model made in MLflow directly, in this organization's namespace, is imported
        remote.create_registered_model(f"{slug}.legacy", description="old")
        remote.create_model_version(f"{slug}.legacy", source="s3://models/legacy/1")
        remote.create_model_version(f"{slug}.legacy", source="s3://models/legacy/2")
        remote.set_registered_model_alias(f"{slug}.legacy", "champion", "2")
        remote.create_registered_model(f"x{uuid.uuid4().hex[:6]}.foreign")  # another namespace
        imported = client.post("/v1/models/import-mlflow", headers=owner)
        assert imported.status_code == 200, imported.text
        assert imported.json() == {"models_created": 1, "versions_created": 2, "aliases_set": 1}
        again = client.post("/v1/models/import-mlflow", headers=owner).json()
        assert again == {"models_created": 0, "versions_created": 0, "aliases_set": 0}
        names = [m["name"] for m in client.get("/v1/models", headers=owner).json()["items"]]
        assert names == ["churn", "legacy"]
        legacy = next(
            m
            for m in client.get("/v1/models", headers=owner).json()["items"]
            if m["name"] == "legacy"
        )
        aliases = client.get(f"/v1/models/{legacy['id']}/aliases", headers=owner).json()
        assert [(a["alias"], a["version"]) for a in aliases] == [("champion", 2)]
        v2 = client.get(f"/v1/models/{legacy['id']}/versions/2", headers=owner).json()
        assert v2["artifact_uri"] == "s3://models/legacy/2"
