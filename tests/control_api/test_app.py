import gc
import json
import logging

import pytest
from fastapi.testclient import TestClient

from control_api.app import create_app
from control_api.auth.tokens import ConfigurationError
from control_api.observability import JsonFormatter, request_id
from tests.control_api.conftest import SECRETS_KEY, make_settings


@pytest.mark.parametrize("secret", ["", "short", "changethis", "secret"])
def test_refuses_to_start_without_a_strong_secret(tmp_path, secret):
    with pytest.raises(ConfigurationError):
        create_app(make_settings(tmp_path, jwt_secret=secret))


def test_development_may_start_without_a_secret(tmp_path):
    app = create_app(make_settings(tmp_path, jwt_secret="", environment="development"))
    assert app.state.ctx.codec.algorithm == "HS256"


def test_rs256_needs_a_key_pair_and_works(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with pytest.raises(ConfigurationError):
        create_app(make_settings(tmp_path, jwt_algorithm="RS256"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    app = create_app(
        make_settings(
            tmp_path, jwt_algorithm="RS256", jwt_private_key=private, jwt_public_key=public
        )
    )
    codec = app.state.ctx.codec
    token, _ = codec.issue(sub="u", org="o", role="viewer", typ="access", ttl_seconds=60)
    assert codec.decode(token, typ="access").sub == "u"


def test_the_objects_made_at_startup_are_frozen_out_of_the_collector_while_serving(tmp_path):
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert gc.get_freeze_count() > 10_000  # the modules, routes and schemas at least
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0  # back in the collector's sight after shutdown


def test_problem_json_everywhere(client):
    unknown = client.get("/nope")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    body = unknown.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance", "request_id"}
    assert body["instance"] == "/nope"
    assert client.put("/v1/projects").status_code == 405
    invalid = client.post("/v1/auth/signup", json={"email": 3})
    assert invalid.status_code == 422
    assert invalid.json()["type"] == "/problems/validation"
    assert {tuple(e["loc"]) for e in invalid.json()["errors"]} >= {("body", "org_name")}
    assert client.get("/v1/me").status_code == 401


def test_unexpected_errors_show_no_trace(app):
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in response.text
    assert response.json()["request_id"] == "abc-123"


def test_request_id_and_security_headers(client):
    given = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    assert given.headers["x-request-id"] == "req-42"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-content-type-options"] == "nosniff"
    assert made.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in made.headers["content-security-policy"]
    assert "content-security-policy" not in client.get("/docs").headers


def test_body_size_limit(app_factory, chdb_url):
    with TestClient(app_factory(max_request_bytes=1024, clickhouse_url=chdb_url)) as client:
        big = {"org_name": "x" * 2000, "email": "a@example.com", "password": "p" * 12}
        declared = client.post("/v1/auth/signup", json=big)
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"

        def chunks():
            yield b'{"org_name": "'
            yield b"x" * 2000
            yield b'"}'

        streamed = client.post(
            "/v1/auth/signup", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "skipped", "metrics_store": "ok"}
    client.get("/v1/projects/abc")
    client.get("/v1/projects/def")
    text = client.get("/metrics").text
    assert 'route="/v1/projects/{project_id}"' in text
    assert "/v1/projects/abc" not in text
    assert "driftline_http_request_duration_seconds_bucket" in text


def test_readiness_fails_when_a_dependency_is_down(app_factory, tmp_path):
    app = app_factory(
        clickhouse_url="http://127.0.0.1:9/driftline", redis_url="redis://127.0.0.1:9/0"
    )
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"] == {
        "database": "ok",
        "redis": "error",
        "metrics_store": "error",
    }


def test_cors_is_configurable(app_factory, chdb_url):
    app = app_factory(cors_origins=["https://ui.example.com"], clickhouse_url=chdb_url)
    with TestClient(app) as client:
        response = client.options(
            "/v1/projects",
            headers={
                "Origin": "https://ui.example.com",
                "Access-Control-Request-Method": "GET",
            },
        )
    assert response.headers["access-control-allow-origin"] == "https://ui.example.com"


def test_json_log_lines_carry_the_request_id():
    token = request_id.set("rid-7")
    try:
        record = logging.LogRecord("driftline.api", logging.INFO, "", 0, "hi %s", ("x",), None)
        record.route = "/v1/me"
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hi x"
    assert line["request_id"] == "rid-7"
    assert line["route"] == "/v1/me"


def test_openapi_declares_the_problem_schema_and_oauth2(client):
    document = client.get("/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    assert (
        document["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"][
            "tokenUrl"
        ]
        == "/v1/auth/token"
    )


def test_cli_api_refuses_a_weak_secret(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from driftline.cli import app as cli

    monkeypatch.setenv("DRIFTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_JWT_SECRET", "short")
    monkeypatch.setenv("DRIFTLINE_ENVIRONMENT", "production")
    result = CliRunner().invoke(cli, ["api", "--port", "0"])
    assert result.exit_code == 2
    assert "DRIFTLINE_JWT_SECRET" in result.output


def test_asgi_entry_point_reads_the_environment(monkeypatch, tmp_path):
    from control_api.asgi import app_from_env

    monkeypatch.setenv("DRIFTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_JWT_SECRET", "k" * 40)
    monkeypatch.setenv("DRIFTLINE_SECRETS_KEY", SECRETS_KEY)
    assert app_from_env().state.ctx.settings.data_dir == tmp_path
