"""The production shape end to end: REST API -> SDK -> Kafka -> worker -> metrics -> alerts.

Everything is configured over the REST API of a real ``driftline api`` process (sign-up,
reference upload, model and version, deployment, monitor, webhook and email channels, route,
alert rule) on a PostgreSQL control database. A ``driftline worker`` process, sharing that
database and the object folder (the reference profile), consumes a fresh topic on the real
broker. The SDK's Kafka transport sends a stationary minute and a drifted one; the worker
closes the windows, evaluates the rule configured over the API and writes the outbox; the
API's delivery loop sends the alert to an HTTP receiver (its Standard Webhooks signature
verified) and by STARTTLS to the SMTP sink. Last, the Grafana drift dashboard's SQL,
expanded as the plugin does, runs on the worker's metrics store and shows the drift.

A chDB folder serves one process: the worker owns its store, read after it stopped by a
child process (the test process holds the session's folder).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from driftline.client import ClientConfig, DriftlineClient
from engine.kafka import TopicSpec, create_topics
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
from tests.engine.kafka_worker_tools import WorkerProcess, start_of_run

receiver = alerts_support.receiver  # a real HTTP server on 127.0.0.1

PARTITIONS = 2


@pytest.fixture
def api_process(
    db_url: str, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes]]]:
    """`driftline api` (engine off: Kafka workers do it) on the test's database.

    Yields the base URL, the environment a worker needs to share its control plane, and the
    process. The API trusts the SMTP sink's certificate (STARTTLS is verified); its log is
    ``tmp_path / "api.log"``.
    """
    shared = {
        "DRIFTLINE_DATABASE_URL": db_url,
        "DRIFTLINE_OBJECTS_DIR": str(tmp_path / "objects"),
        "DRIFTLINE_SECRETS_KEY": Fernet.generate_key().decode(),
        "DRIFTLINE_JWT_SECRET": secrets.token_urlsafe(48),
    }
    env = server_environment(
        shared | {"DRIFTLINE_DATA_DIR": str(tmp_path / "api"), "DRIFTLINE_ENGINE_EMBEDDED": "false"}
    )
    with running_server(["api"], env, tmp_path / "api.log") as (base, process):
        yield base, shared, process


@pytest.mark.kafka
@pytest.mark.smtp
@pytest.mark.postgres
@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_configured_over_the_api_events_through_kafka_drift_alert_by_webhook_and_email(
    api_process: tuple[str, dict[str, str], subprocess.Popen[bytes]],
    receiver: alerts_support.Receiver,
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    base, shared, api = api_process
    mailbox = f"oncall-{unique_name}@acme.example"
    with httpx.Client(base_url=base, timeout=30) as http:
        ids = configure_with_email(http, receiver.url + "/hook", mailbox)
        topic, dead = f"events-{unique_name}", f"dead-{unique_name}"
        asyncio.run(
            create_topics(
                kafka_bootstrap, [TopicSpec(topic, PARTITIONS), TopicSpec(dead, PARTITIONS)]
            )
        )
        worker = WorkerProcess.start(
            tmp_path / "worker",
            shared
            | {
                "DRIFTLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "DRIFTLINE_KAFKA_ORGANIZATION": ids["org"],
                "DRIFTLINE_KAFKA_EVENTS_TOPIC": topic,
                "DRIFTLINE_KAFKA_DEAD_LETTER_TOPIC": dead,
                "DRIFTLINE_KAFKA_GROUP_ID": f"driftline-e2e-{unique_name}",
                "DRIFTLINE_KAFKA_PARTITIONS": str(PARTITIONS),
                "DRIFTLINE_KAFKA_BATCH_SIZE": "200",
                "DRIFTLINE_KAFKA_BATCH_SECONDS": "0.2",
            },
        )
        t0 = start_of_run()
        try:
            client = DriftlineClient.kafka(
                kafka_bootstrap,
                topic=topic,
                deployment=ids["deployment"],
                config=ClientConfig(batch_size=100, flush_interval_seconds=0.2),
            )
            send_drift(client, t0)
            owner = {"Authorization": ids["owner"]}
            processes = {
                "api": (api, tmp_path / "api.log"),
                "worker": (worker.process, worker.log_path),
            }
            message = wait_for_the_alert(http, owner, receiver, mailbox, processes)
        finally:
            stopped = worker.stop()
        assert stopped == 0, worker.log()[-4000:]
        check_the_alert(http, ids, receiver, message)

    check_the_dashboard(tmp_path / "worker", ids, t0)
