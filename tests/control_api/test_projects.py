from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from control_api.app import create_app
from storage.models import Project
from storage.tenancy import TenancyError, scope_to, unscoped


def _create(api, headers, name, description=""):
    response = api.client.post(
        "/v1/projects", headers=headers, json={"name": name, "description": description}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_crud_with_etag_and_if_match(api):
    owner = api.owner()
    project = _create(api, owner, "fraud", "fraud model")
    assert project["version"] == 1
    got = api.client.get(f"/v1/projects/{project['id']}", headers=owner)
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    assert got.json()["description"] == "fraud model"

    path = f"/v1/projects/{project['id']}"
    missing = api.client.patch(path, headers=owner, json={"name": "x"})
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"
    updated = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"name": "fraud2"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "fraud2"
    assert updated.json()["version"] == 2
    assert updated.headers["etag"] == '"2"'
    stale = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"name": "lost"})
    assert stale.status_code == 412
    assert api.client.patch(path, headers=owner | {"If-Match": "nope"}, json={}).status_code == 412

    assert api.client.delete(path, headers=owner).status_code == 204
    assert api.client.get(path, headers=owner).status_code == 404


def test_duplicate_name_conflicts(api):
    owner = api.owner()
    _create(api, owner, "a")
    other = _create(api, owner, "b")
    assert api.client.post("/v1/projects", headers=owner, json={"name": "a"}).status_code == 409
    renamed = api.client.patch(
        f"/v1/projects/{other['id']}", headers=owner | {"If-Match": '"1"'}, json={"name": "a"}
    )
    assert renamed.status_code == 409


def test_cursor_pagination_sorting_and_filter(api):
    owner = api.owner()
    names = [f"p{i:02d}" for i in range(7)] + ["other"]
    for name in names:
        _create(api, owner, name)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "name", "name_prefix": "p"}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/v1/projects", headers=owner, params=params).json()
        seen += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(n for n in names if n.startswith("p"))

    desc = api.client.get("/v1/projects", headers=owner, params={"sort": "-name"}).json()
    assert [p["name"] for p in desc["items"]] == sorted(names, reverse=True)

    first = api.client.get(
        "/v1/projects", headers=owner, params={"limit": 4, "sort": "-created_at"}
    ).json()
    rest = api.client.get(
        "/v1/projects",
        headers=owner,
        params={"limit": 50, "sort": "-created_at", "cursor": first["next_cursor"]},
    ).json()
    ids = [p["id"] for p in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == len(names)

    bad = api.client.get("/v1/projects", headers=owner, params={"cursor": "!!!"})
    assert bad.status_code == 400
    assert bad.json()["type"] == "/problems/invalid-cursor"


def test_another_orgs_project_is_exactly_a_missing_one(api):
    acme = api.owner("owner@acme.example.com", "Acme")
    globex = api.owner("owner@globex.example.com", "Globex")
    secret = _create(api, globex, "globex-secret")
    assert api.client.get("/v1/projects", headers=acme).json()["items"] == []

    mine = api.client.get(f"/v1/projects/{secret['id']}", headers=acme)
    missing = api.client.get("/v1/projects/no-such-id", headers=acme)
    assert mine.status_code == missing.status_code == 404

    def strip(body):
        return {k: v for k, v in body.items() if k not in {"instance", "request_id"}}

    assert strip(mine.json()) == strip(missing.json())
    path = f"/v1/projects/{secret['id']}"
    assert api.client.patch(path, headers=acme | {"If-Match": '"1"'}, json={}).status_code == 404
    assert api.client.delete(path, headers=acme).status_code == 404
    assert api.client.get(path, headers=globex).status_code == 200


def test_a_forgotten_filter_cannot_leak(api, app):
    acme = api.owner("owner@acme.example.com", "Acme")
    globex = api.owner("owner@globex.example.com", "Globex")
    _create(api, acme, "acme-1")
    _create(api, globex, "globex-1")
    acme_org = api.client.get("/v1/me", headers=acme).json()["org_id"]
    sessions = app.state.ctx.sessions
    with sessions() as session:
        with pytest.raises(TenancyError):
            session.scalars(select(Project)).all()
        scope_to(session, acme_org)
        assert [p.name for p in session.scalars(select(Project))] == ["acme-1"]
        with unscoped(session):
            assert len(session.scalars(select(Project)).all()) == 2
        # ORM-enabled bulk UPDATE is scoped too
        from sqlalchemy import update

        session.execute(
            update(Project)
            .values(description="touched", updated_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        session.commit()
        with unscoped(session):
            touched = {p.name: p.description for p in session.scalars(select(Project))}
    assert touched == {"acme-1": "touched", "globex-1": ""}


def test_app_factory_builds_independent_apps(settings):
    first, second = create_app(settings), create_app(settings)
    assert first.state.ctx.metrics is not second.state.ctx.metrics
