from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from control_api.auth.service import hash_api_secret
from storage.models import ApiKey
from storage.tenancy import unscoped


def test_key_shown_once_hashed_at_rest_and_scoped(api, app):
    owner = api.owner()
    key, token = api.api_key(owner, ["read"])
    assert key["key"].startswith(f"dl_{key['prefix']}_")
    listed = api.client.get("/v1/api-keys", headers=owner).json()["items"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]
    with app.state.ctx.sessions() as session, unscoped(session):
        stored = session.scalars(select(ApiKey)).one()
        assert stored.secret_hash == hash_api_secret(key["key"])
        assert key["key"] not in str(vars(stored))

    reader = api.bearer(token)
    assert api.client.get("/v1/projects", headers=reader).status_code == 200
    assert api.client.post("/v1/projects", headers=reader, json={"name": "x"}).status_code == 403
    me = api.client.get("/v1/me", headers=reader).json()
    assert me["kind"] == "api_key"
    # a read key reads every kind of resource and writes none
    assert "projects:read" in me["permissions"]
    assert all(p.endswith(":read") for p in me["permissions"]), me["permissions"]
    after = api.client.get("/v1/api-keys", headers=owner).json()["items"][0]
    assert after["last_used_at"] is not None


def test_revoked_and_expired_keys_get_401(api, app):
    owner = api.owner()
    key, token = api.api_key(owner, ["ingest"])
    assert api.client.delete(f"/v1/api-keys/{key['id']}", headers=owner).status_code == 204
    assert api.client.delete(f"/v1/api-keys/{key['id']}", headers=owner).status_code == 204
    assert api.client.get("/v1/me", headers=api.bearer(token)).status_code == 401
    again = api.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key["id"],
            "client_secret": key["key"],
        },
    )
    assert again.status_code == 401
    assert api.client.get("/v1/api-keys", headers=owner).json()["items"] == []
    revoked = api.client.get("/v1/api-keys", headers=owner, params={"include_revoked": True})
    assert revoked.json()["items"][0]["revoked_at"] is not None

    key2, token2 = api.api_key(owner, ["ingest"])
    with app.state.ctx.sessions() as session, unscoped(session):
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(ApiKey).where(ApiKey.id == key2["id"]).values(expires_at=past))
        session.commit()
    assert api.client.get("/v1/me", headers=api.bearer(token2)).status_code == 401
    expired = api.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key2["id"],
            "client_secret": key2["key"],
        },
    )
    assert expired.status_code == 401


def test_wrong_secret_and_other_org_key(api):
    acme = api.owner("owner@acme.example.com", "Acme")
    globex = api.owner("owner@globex.example.com", "Globex")
    key, _ = api.api_key(acme, ["read"])
    wrong = api.client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": key["id"], "client_secret": "dl_x"},
    )
    assert wrong.status_code == 401
    assert api.client.delete(f"/v1/api-keys/{key['id']}", headers=globex).status_code == 404
    created = api.client.post(
        "/v1/api-keys", headers=acme, json={"name": "t", "scopes": ["ingest"], "expires_in_days": 3}
    ).json()
    assert created["expires_at"] is not None
