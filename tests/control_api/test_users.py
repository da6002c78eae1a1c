from tests.control_api.conftest import PASSWORD


def test_admin_manages_members(api):
    owner = api.owner()
    admin = api.member(owner, "admin", "admin@acme.example.com")
    created = api.client.post(
        "/v1/users",
        headers=admin,
        json={"email": "ed@acme.example.com", "password": PASSWORD, "role": "editor"},
    )
    assert created.status_code == 201
    user = created.json()
    assert user["role"] == "editor"
    listed = api.client.get("/v1/users", headers=admin, params={"limit": 2}).json()
    assert len(listed["items"]) == 2
    rest = api.client.get(
        "/v1/users", headers=admin, params={"limit": 2, "cursor": listed["next_cursor"]}
    ).json()
    emails = {u["email"] for u in listed["items"] + rest["items"]}
    assert emails == {"owner@acme.example.com", "admin@acme.example.com", "ed@acme.example.com"}
    editors = api.client.get("/v1/users", headers=admin, params={"role": "editor"}).json()
    assert [u["email"] for u in editors["items"]] == ["ed@acme.example.com"]

    path = f"/v1/users/{user['id']}"
    assert api.client.patch(path, headers=admin, json={"role": "viewer"}).json()["role"] == "viewer"
    assert api.client.get(path, headers=admin).json()["role"] == "viewer"
    assert api.client.delete(path, headers=admin).status_code == 204
    assert api.client.get(path, headers=admin).status_code == 404
    duplicate = api.client.post(
        "/v1/users",
        headers=admin,
        json={"email": "admin@acme.example.com", "password": PASSWORD, "role": "viewer"},
    )
    assert duplicate.status_code == 409


def test_nobody_acts_above_their_rank_and_one_owner_stays(api):
    owner = api.owner()
    admin = api.member(owner, "admin", "admin@acme.example.com")
    owner_id = api.client.get("/v1/me", headers=owner).json()["id"]
    make_owner = api.client.post(
        "/v1/users",
        headers=admin,
        json={"email": "o2@acme.example.com", "password": PASSWORD, "role": "owner"},
    )
    assert make_owner.status_code == 403
    assert api.client.delete(f"/v1/users/{owner_id}", headers=admin).status_code == 403
    demote = api.client.patch(f"/v1/users/{owner_id}", headers=owner, json={"role": "admin"})
    assert demote.status_code == 409
    assert api.client.delete(f"/v1/users/{owner_id}", headers=owner).status_code == 409


def test_other_orgs_members_are_invisible(api):
    acme = api.owner("owner@acme.example.com", "Acme")
    globex = api.owner("owner@globex.example.com", "Globex")
    globex_id = api.client.get("/v1/me", headers=globex).json()["id"]
    assert api.client.get(f"/v1/users/{globex_id}", headers=acme).status_code == 404
    assert api.client.delete(f"/v1/users/{globex_id}", headers=acme).status_code == 404
    emails = [u["email"] for u in api.client.get("/v1/users", headers=acme).json()["items"]]
    assert emails == ["owner@acme.example.com"]
