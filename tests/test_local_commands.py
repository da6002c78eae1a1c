"""`driftline admin create-user` and `driftline up` (a real subprocess on a fresh folder)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys

import httpx
from typer.testing import CliRunner

from driftline.cli import app
from driftline.local_commands import SECRET_FILE, local_signing_key
from tests.servers import free_port, wait_until_healthy

PASSWORD = "a long enough password"


def test_create_user_makes_an_organization_then_adds_members(tmp_path, chdb_url):
    env = {
        "DRIFTLINE_DATA_DIR": str(tmp_path),
        "DRIFTLINE_CLICKHOUSE_URL": chdb_url,
        "DRIFTLINE_JWT_SECRET": "s" * 48,
        "ADMIN_PASSWORD": PASSWORD,
    }
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    first = runner.invoke(
        app,
        ["admin", "create-user", "--email", "Ann@Example.com", "--org", "Acme",
         "--password-env", "ADMIN_PASSWORD"],
        env=env,
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "user Ann@Example.com created in organization Acme" in first.output
    second = runner.invoke(
        app,
        ["admin", "create-user", "--email", "bob@example.com", "--org", "Acme",
         "--role", "viewer", "--password-env", "ADMIN_PASSWORD"],
        env=env,
    )  # fmt: skip
    assert second.exit_code == 0, second.output
    again = runner.invoke(
        app,
        ["admin", "create-user", "--email", "ann@example.com", "--org", "Acme",
         "--password-env", "ADMIN_PASSWORD"],
        env=env,
    )  # fmt: skip
    assert "already exists" in again.output
    missing = runner.invoke(
        app, ["admin", "create-user", "--email", "c@example.com", "--password-env", "NOPE"], env=env
    )
    assert missing.exit_code != 0
    assert "NOPE" in missing.output


def test_the_local_signing_key_is_made_once_and_private(tmp_path):
    key = local_signing_key(tmp_path)
    assert len(key) >= 48
    assert local_signing_key(tmp_path) == key
    mode = stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode)
    assert mode == 0o600


def test_up_serves_the_api_on_a_fresh_folder_with_a_bootstrap_owner(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")} | {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        "DRIFTLINE_BOOTSTRAP_EMAIL": "owner@example.com",
        "DRIFTLINE_BOOTSTRAP_PASSWORD": PASSWORD,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "driftline.cli", "up", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base, lambda: process.stdout.read() if process.stdout else "")
        token = httpx.post(
            f"{base}/v1/auth/token",
            data={"username": "owner@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
        assert (tmp_path / "data" / SECRET_FILE).exists()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    # uvicorn drains, then re-raises the SIGTERM it caught: a graceful stop ends as -15
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"API docs:   {base}/docs" in output
    assert "owner@example.com" in output


def test_demo_detects_the_injected_drift_and_delivers_the_alert(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "demo", "--duration", "24",
         "--port", str(free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    block = re.search(r"^\{\n.*?^\}", done.stdout, flags=re.DOTALL | re.MULTILINE)
    assert block is not None, done.stdout
    summary = json.loads(block.group(0))
    assert summary["events_ingested"] > 5000
    assert summary["windows_closed"] >= 3
    assert summary["drifts_detected"] >= 1
    assert summary["alerts_delivered"] >= 1
    assert "% of the features drifted" in done.stdout
