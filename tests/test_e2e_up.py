"""The embedded default end to end: REST API -> SDK over HTTP -> engine -> metrics -> alerts.

A real ``driftline up`` process on a fresh ``DRIFTLINE_DATA_DIR`` (control API, engine,
HTTP ingest, chDB, SQLite, local objects and alert delivery in that one process, its keys
made in the folder) is configured over its REST API only, as tests/test_e2e_kafka.py
configures the production shape (sign-up, reference upload, model and version, deployment,
monitor, webhook and email channels, route, alert rule), and given an ingest-scoped API key.
The SDK's HTTP transport sends a stationary minute and a drifted one to ``POST /v1/ingest``;
the engine closes the windows, the rule fires, and the process delivers the alert to an HTTP
receiver (its Standard Webhooks signature verified) and by STARTTLS to the SMTP sink. Last,
with ``driftline up`` stopped (its chDB folder serves one process), the Grafana drift
dashboard's SQL, expanded as the plugin does, runs on its store in a child process and
shows x drifted, c not.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from driftline.client import ClientConfig, DriftlineClient
from tests.end_to_end import (
    check_the_alert,
    check_the_dashboard,
    configure_with_email,
    running_server,
    send_drift,
    server_environment,
    wait_for_the_alert,
)
from tests.engine import alerts_support
from tests.engine.kafka_worker_tools import start_of_run

receiver = alerts_support.receiver  # a real HTTP server on 127.0.0.1


@pytest.mark.smtp
def test_driftline_up_configured_over_the_api_events_over_http_alert_by_webhook_and_email(
    receiver: alerts_support.Receiver, unique_name: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "driftline-data"
    log_path = tmp_path / "up.log"
    mailbox = f"oncall-{unique_name}@acme.example"
    env = server_environment({"DRIFTLINE_DATA_DIR": str(data_dir)})
    t0 = start_of_run()
    with (
        running_server(["up"], env, log_path) as (base, up),
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        ids = configure_with_email(http, receiver.url + "/hook", mailbox)
        owner = {"Authorization": ids["owner"]}
        key = http.post(
            "/v1/api-keys", headers=owner, json={"name": "model-server", "scopes": ["ingest"]}
        )
        assert key.status_code == 201, key.text
        client = DriftlineClient.http(
            base,
            key_id=key.json()["id"],
            key_secret=key.json()["key"],
            deployment=ids["deployment"],
            config=ClientConfig(batch_size=100, flush_interval_seconds=0.2),
        )
        send_drift(client, t0)
        message = wait_for_the_alert(http, owner, receiver, mailbox, {"up": (up, log_path)})
        check_the_alert(http, ids, receiver, message)
    # uvicorn drains, then re-raises the SIGTERM it caught: a graceful stop ends as -15
    assert up.returncode in (0, -signal.SIGTERM), log_path.read_text()[-4000:]

    check_the_dashboard(data_dir, ids, t0)
