import time

import pytest
from jose import jwt

from tests.control_api.conftest import PASSWORD, SECRET


def test_signup_login_me(api):
    created = api.signup("owner@acme.example.com", "Acme Inc")
    assert created["role"] == "owner"
    assert created["org_slug"].startswith("acme-inc-")
    pair = api.login("OWNER@acme.example.com")
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    me = api.client.get("/v1/me", headers=api.bearer(pair["access_token"])).json()
    assert me["email"] == "owner@acme.example.com"
    assert me["role"] == "owner"
    assert me["org_id"] == created["org_id"]
    assert "org:manage" in me["permissions"]


def test_signup_rules(api, app_factory):
    api.signup()
    again = api.client.post(
        "/v1/auth/signup",
        json={"org_name": "X", "email": "owner@acme.example.com", "password": PASSWORD},
    )
    assert again.status_code == 409
    short = api.client.post(
        "/v1/auth/signup", json={"org_name": "X", "email": "s@example.com", "password": "short"}
    )
    assert short.status_code == 422
    from fastapi.testclient import TestClient

    with TestClient(app_factory(signup_enabled=False)) as closed:
        body = {"org_name": "X", "email": "n@example.com", "password": PASSWORD}
        assert closed.post("/v1/auth/signup", json=body).status_code == 403


def test_wrong_password_and_unknown_user_look_alike(api):
    api.signup()
    wrong = api.client.post(
        "/v1/auth/token", data={"username": "owner@acme.example.com", "password": "nope"}
    )
    unknown = api.client.post(
        "/v1/auth/token", data={"username": "ghost@acme.example.com", "password": "nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_login_attempts_are_limited_per_account(api):
    api.signup()
    codes = [
        api.client.post(
            "/v1/auth/token", data={"username": "owner@acme.example.com", "password": "bad"}
        ).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    limited = api.client.post(
        "/v1/auth/token", data={"username": "owner@acme.example.com", "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_refresh_rotates_and_reuse_revokes_the_family(api):
    api.signup()
    first = api.login("owner@acme.example.com")
    second = api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.client.get("/v1/me", headers=api.bearer(second["access_token"])).status_code == 200

    reuse = api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    # the whole family is gone: the newest refresh and access tokens too
    newest = api.client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert newest.status_code == 401
    assert api.client.get("/v1/me", headers=api.bearer(second["access_token"])).status_code == 401
    assert api.client.post("/v1/auth/refresh", json={"refresh_token": "garbage"}).status_code == 401
    access_as_refresh = api.client.post(
        "/v1/auth/refresh", json={"refresh_token": second["access_token"]}
    )
    assert access_as_refresh.status_code == 401


def test_logout_and_sessions(api):
    api.signup()
    one = api.login("owner@acme.example.com")
    two = api.login("owner@acme.example.com")
    h1, h2 = api.bearer(one["access_token"]), api.bearer(two["access_token"])
    sessions = api.client.get("/v1/auth/sessions", headers=h1).json()
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    other = next(s for s in sessions if not s["current"])
    assert api.client.delete(f"/v1/auth/sessions/{other['id']}", headers=h1).status_code == 204
    assert api.client.get("/v1/me", headers=h2).status_code == 401
    assert api.client.delete(f"/v1/auth/sessions/{other['id']}", headers=h1).status_code == 404

    assert api.client.post("/v1/auth/logout", headers=h1).status_code == 204
    assert api.client.get("/v1/me", headers=h1).status_code == 401
    refreshed = api.client.post("/v1/auth/refresh", json={"refresh_token": one["refresh_token"]})
    assert refreshed.status_code == 401

    three = api.bearer(api.login("owner@acme.example.com")["access_token"])
    assert api.client.delete("/v1/auth/sessions", headers=three).status_code == 204
    assert api.client.get("/v1/me", headers=three).status_code == 401


def _claims(api, **changes):
    api.signup()
    token = api.login("owner@acme.example.com")["access_token"]
    claims = jwt.get_unverified_claims(token)
    claims.update(changes)
    return claims, token


@pytest.mark.parametrize(
    "mutation",
    ["alg_none", "bad_signature", "wrong_audience", "wrong_issuer", "expired", "no_jti", "hs512"],
)
def test_forged_or_stale_tokens_get_401(api, mutation):
    claims, _ = _claims(api)
    key, alg = SECRET, "HS256"
    if mutation == "alg_none":
        token = jwt.encode(claims, "", algorithm="HS256")
        _header, payload, _sig = token.split(".")
        import base64

        none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
        token = f"{none_header.decode()}.{payload}."
    else:
        if mutation == "bad_signature":
            key = "x" * 48
        elif mutation == "wrong_audience":
            claims["aud"] = "someone-else"
        elif mutation == "wrong_issuer":
            claims["iss"] = "evil"
        elif mutation == "expired":
            claims["iat"] = int(time.time()) - 3600
            claims["exp"] = int(time.time()) - 60
        elif mutation == "no_jti":
            claims.pop("jti")
        elif mutation == "hs512":
            alg = "HS512"
        token = jwt.encode(claims, key, algorithm=alg)
    response = api.client.get("/v1/me", headers=api.bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_removed_user_token_gets_401(api):
    owner = api.owner()
    viewer_email = "viewer@acme.example.com"
    viewer = api.member(owner, "viewer", viewer_email)
    user_id = api.client.get("/v1/me", headers=viewer).json()["id"]
    assert api.client.delete(f"/v1/users/{user_id}", headers=owner).status_code == 204
    assert api.client.get("/v1/me", headers=viewer).status_code == 401


def test_token_for_another_org_cannot_reach_it(api):
    api.owner("owner@acme.example.com", "Acme")
    globex = api.owner("owner@globex.example.com", "Globex")
    globex_org = api.client.get("/v1/me", headers=globex).json()["org_id"]
    token = api.login("owner@acme.example.com")["access_token"]
    forged = jwt.get_unverified_claims(token) | {"org": globex_org}
    response = api.client.get("/v1/me", headers=api.bearer(jwt.encode(forged, SECRET)))
    assert response.status_code == 401  # no session of this user in that organization


def test_a_remembered_token_is_still_checked_for_kind_and_expiry():
    from control_api.auth.tokens import LEEWAY_SECONDS, TokenCodec, TokenError

    now = [time.time()]
    codec = TokenCodec(
        algorithm="HS256",
        signing_key=SECRET,
        verify_key=SECRET,
        issuer="driftline",
        audience="driftline-api",
        clock=lambda: now[0],
    )
    token, _ = codec.issue(sub="u1", org="o1", role="owner", typ="access", ttl_seconds=60)
    assert codec.decode(token, typ="access").sub == "u1"
    assert codec.decode(token, typ="access").sub == "u1"  # from the verified tokens
    with pytest.raises(TokenError, match="expected a refresh token"):
        codec.decode(token, typ="refresh")
    now[0] += 60 + LEEWAY_SECONDS + 1
    with pytest.raises(TokenError, match="expired"):
        codec.decode(token, typ="access")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):  # a token that failed is checked in full every time
        with pytest.raises(TokenError):
            codec.decode(forged, typ="access")
