"""Fixtures of the control-plane tests: an app on a migrated database, SQLite or PostgreSQL.

``db_url`` is parametrized, so every test that uses ``client`` runs on both databases (the
PostgreSQL run is marked ``postgres``). Each test gets a fresh database copied from a
template migrated once per session with Alembic, the way ``driftline migrate`` does it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from control_api.app import create_app
from driftline.settings import Settings

SECRET = "s" * 48
SECRETS_KEY = "k6nLqyTRV-XnL2u1SbtcAVvtpTnrl7jfgeQKNLCtATQ="  # a Fernet key for channel secrets
PASSWORD = "correct horse battery"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings: strong secrets, cheap Argon2, no Redis unless given."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "jwt_secret": SECRET,
        "secrets_key": SECRETS_KEY,
        "environment": "production",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "redis_url": "",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, chdb_url: str) -> Settings:
    return make_settings(tmp_path, database_url=db_url, clickhouse_url=chdb_url)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


class Api:
    """Small helpers over a TestClient: sign up, log in, make members and keys."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def signup(self, email: str = "owner@acme.example.com", org: str = "Acme") -> dict[str, Any]:
        response = self.client.post(
            "/v1/auth/signup", json={"org_name": org, "email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.client.post(
            "/v1/auth/token", data={"username": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def owner(self, email: str = "owner@acme.example.com", org: str = "Acme") -> dict[str, str]:
        """Sign up an organization and return its owner's auth header."""
        self.signup(email, org)
        return self.bearer(self.login(email)["access_token"])

    def member(self, admin: dict[str, str], role: str, email: str | None = None) -> dict[str, str]:
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@acme.example.com"
        response = self.client.post(
            "/v1/users", headers=admin, json={"email": email, "password": PASSWORD, "role": role}
        )
        assert response.status_code == 201, response.text
        return self.bearer(self.login(email)["access_token"])

    def api_key(self, admin: dict[str, str], scopes: list[str]) -> tuple[dict[str, Any], str]:
        """Create a key; return it and an access token got by client credentials."""
        created = self.client.post(
            "/v1/api-keys", headers=admin, json={"name": "server", "scopes": scopes}
        )
        assert created.status_code == 201, created.text
        key = dict(created.json())
        token = self.client.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": key["id"],
                "client_secret": key["key"],
            },
        )
        assert token.status_code == 200, token.text
        return key, token.json()["access_token"]

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def app_factory(tmp_path: Path, db_url: str) -> Callable[..., FastAPI]:
    """Build an app on this test's database with settings overridden."""

    def build(**overrides: Any) -> FastAPI:
        return create_app(make_settings(tmp_path, database_url=db_url, **overrides))

    return build
