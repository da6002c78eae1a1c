"""Channel secrets encrypted at rest, on SQLite and PostgreSQL: nothing readable in the
database, signatures still right, plaintext rows from before still working, key rotation."""

import json
import stat
import uuid

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from typer.testing import CliRunner

from control_api.app import create_app
from control_api.auth.tokens import ConfigurationError
from driftline.cli import app as cli
from storage.models import AlertChannel
from storage.secretbox import KEY_FILE, PREFIX, SecretBox, SecretsError
from storage.tenancy import scope_to
from tests.control_api.conftest import SECRETS_KEY, make_settings
from tests.engine import alerts_support

receiver = alerts_support.receiver  # a real HTTP receiver on 127.0.0.1
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _stored(app) -> dict[str, dict[str, object]]:
    """Every channel's ``secrets`` column as the database holds it (raw SQL, no ORM)."""
    with app.state.ctx.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, secrets FROM alert_channels")).all()
    return {name: json.loads(raw) if isinstance(raw, str) else raw for name, raw in rows}


def _test_message(api, headers, channel_id):
    return api.client.post(f"/v1/channels/{channel_id}/test", headers=headers)


def test_secrets_are_sealed_at_rest_and_delivery_still_signs(api, app, receiver):
    owner = api.owner()
    slack_url = receiver.url + "/services/T0001/B0001/xoxb-token-of-the-team"
    hook = api.client.post(
        "/v1/channels",
        headers=owner,
        json={
            "name": "hook",
            "kind": "webhook",
            "config": {"url": receiver.url + "/hook"},
            "secrets": {"signing_secrets": [SECRET]},
        },
    ).json()
    slack = api.client.post(
        "/v1/channels",
        headers=owner,
        json={"name": "slack", "kind": "slack", "secrets": {"url": slack_url}},
    ).json()
    stored = _stored(app)
    text = json.dumps(stored)
    assert SECRET not in text
    assert "xoxb-token" not in text
    assert stored["hook"]["signing_secrets"].startswith(PREFIX)
    assert stored["slack"]["url"].startswith(PREFIX)
    for channel in (hook, slack):  # write-only in the API
        read = api.client.get(f"/v1/channels/{channel['id']}", headers=owner)
        assert "secrets" not in read.json()
        assert SECRET not in read.text
        assert "xoxb-token" not in read.text
    assert hook["secret_fields"] == ["signing_secrets"]

    assert _test_message(api, owner, hook["id"]).json()["delivered"] is True
    assert _test_message(api, owner, slack["id"]).json()["delivered"] is True
    signed, chat = receiver.received
    assert Webhook(SECRET).verify(signed.body, signed.headers)["type"] == "alert.firing"
    assert chat.path == "/services/T0001/B0001/xoxb-token-of-the-team"

    # a change without secrets keeps them (sealed again), and they still sign
    renamed = api.client.patch(f"/v1/channels/{hook['id']}", headers=owner, json={"name": "h2"})
    assert renamed.json()["secret_fields"] == ["signing_secrets"]
    assert _stored(app)["h2"]["signing_secrets"] != stored["hook"]["signing_secrets"]
    assert _test_message(api, owner, hook["id"]).json()["delivered"] is True
    assert Webhook(SECRET).verify(receiver.received[-1].body, receiver.received[-1].headers)


def test_plaintext_rows_keep_working_and_rotation_reseals_every_channel(
    api, app, receiver, tmp_path, db_url, chdb_url
):
    owner = api.owner()
    org = api.client.get("/v1/me", headers=owner).json()["org_id"]
    sealed = api.client.post(
        "/v1/channels",
        headers=owner,
        json={"name": "sealed", "kind": "mattermost", "secrets": {"url": receiver.url + "/mm"}},
    ).json()
    legacy_id = str(uuid.uuid4())
    with scope_to(app.state.ctx.sessions(), org) as session:  # a row from before encryption
        session.add(
            AlertChannel(
                id=legacy_id,
                org_id=org,
                name="legacy",
                kind="webhook",
                config={"url": receiver.url + "/legacy"},
                secrets={"signing_secrets": [SECRET]},
            )
        )
        session.commit()
    assert _test_message(api, owner, legacy_id).json()["delivered"] is True
    assert Webhook(SECRET).verify(receiver.received[-1].body, receiver.received[-1].headers)

    before = _stored(app)
    new = Fernet.generate_key().decode()
    env = {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "cli"),
        "DRIFTLINE_DATABASE_URL": db_url,
        "DRIFTLINE_SECRETS_KEY": Fernet.generate_key().decode(),  # opens nothing stored
    }
    refused = CliRunner().invoke(cli, ["admin", "rotate-secrets-key"], env=env)
    assert refused.exit_code == 1
    assert "nothing changed" in refused.output
    assert _stored(app) == before
    env["DRIFTLINE_SECRETS_KEY"] = f"{new},{SECRETS_KEY}"
    rotated = CliRunner().invoke(cli, ["admin", "rotate-secrets-key"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "secrets of 2 channels and webhooks" in rotated.output

    stored = _stored(app)
    assert SECRET not in json.dumps(stored)
    assert SecretBox([new]).open(stored["legacy"]) == {"signing_secrets": [SECRET]}
    assert SecretBox([new]).open(stored["sealed"]) == {"url": receiver.url + "/mm"}
    with pytest.raises(SecretsError):
        SecretBox([SECRETS_KEY]).open(stored["sealed"])
    # this app only knows the old key now: the channel answers 409, the new key's app sends
    assert _test_message(api, owner, sealed["id"]).status_code == 409
    settings = make_settings(
        tmp_path / "new", database_url=db_url, clickhouse_url=chdb_url, secrets_key=new
    )
    with TestClient(create_app(settings)) as client:
        sent = client.post(f"/v1/channels/{legacy_id}/test", headers=owner)
    assert sent.json()["delivered"] is True
    assert Webhook(SECRET).verify(receiver.received[-1].body, receiver.received[-1].headers)


@pytest.mark.parametrize("key", ["", "not-a-fernet-key"])
def test_the_api_refuses_to_start_without_a_usable_key_outside_development(tmp_path, key):
    with pytest.raises(ConfigurationError, match="DRIFTLINE_SECRETS_KEY"):
        create_app(make_settings(tmp_path, secrets_key=key))


def test_development_keeps_a_local_key_across_restarts(tmp_path):
    settings = make_settings(tmp_path, secrets_key="", environment="development")
    first = create_app(settings).state.ctx.secret_box
    key_file = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = create_app(settings).state.ctx.secret_box
    assert second.open(first.seal({"password": "hunter22"})) == {"password": "hunter22"}
