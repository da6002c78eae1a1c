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
import email
import email.policy
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from driftline.client import ClientConfig, DriftlineClient
from engine.kafka import TopicSpec, create_topics
from storage.clickhouse.grafana import DASHBOARDS, QueryContext, expand
from tests.control_api.conftest import Api
from tests.control_api.test_e2e_embedded import SECRET, configure
from tests.engine import alerts_support
from tests.engine.kafka_worker_tools import (
    MINUTE,
    WorkerProcess,
    query_folder,
    start_of_run,
)
from tests.servers import free_port, wait_until_healthy

receiver = alerts_support.receiver  # a real HTTP server on 127.0.0.1

PARTITIONS = 2
FEATURES = ["c", "x"]
STATISTICS = ("ks", "wasserstein_normed", "chi2")
T = TypeVar("T")


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `source .ci/services.sh`")
    return value


def _poll(
    what: str,
    check: Callable[[], T | None],
    timeout: float = 90.0,
    state: Callable[[], str] = lambda: "",
) -> T:
    """``check()`` until it answers something, or fail after ``timeout`` seconds (saying
    ``state()``)."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        assert time.monotonic() < deadline, f"{what}: nothing after {timeout:.0f} s\n{state()}"
        time.sleep(0.25)
    return found


@pytest.fixture
def api_process(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`driftline api` (engine off: Kafka workers do it) on the test's database.

    Yields the base URL and the environment a worker needs to share its control plane.
    The API trusts the SMTP sink's certificate (STARTTLS is verified); its log is
    ``tmp_path / "api.log"``.
    """
    shared = {
        "DRIFTLINE_DATABASE_URL": db_url,
        "DRIFTLINE_OBJECTS_DIR": str(tmp_path / "objects"),
        "DRIFTLINE_SECRETS_KEY": Fernet.generate_key().decode(),
        "DRIFTLINE_JWT_SECRET": secrets.token_urlsafe(48),
    }
    port = free_port()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        | shared
        | {
            "DRIFTLINE_DATA_DIR": str(tmp_path / "api"),
            "DRIFTLINE_ENGINE_EMBEDDED": "false",
            "DRIFTLINE_ALERT_DELIVERY_SECONDS": "0.5",
            "DRIFTLINE_ARGON2_TIME_COST": "1",
            "DRIFTLINE_ARGON2_MEMORY_KIB": "64",
            "SSL_CERT_FILE": _env("DRIFTLINE_TEST_SMTP_CAFILE"),
        }
    )
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("driftline")), "api", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base, log_path.read_text)
        yield base, shared
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _mail_to(address: str) -> email.message.EmailMessage | None:
    for path in sorted(Path(_env("DRIFTLINE_TEST_SMTP_MAILDIR")).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            return message
    return None


def _send_through_the_sdk(bootstrap: str, topic: str, deployment: str, t0: int) -> None:
    """A stationary minute, a minute with x shifted by 2 sd, then a few events closing it."""
    rng = np.random.default_rng(5)
    client = DriftlineClient.kafka(
        bootstrap,
        topic=topic,
        deployment=deployment,
        config=ClientConfig(batch_size=100, flush_interval_seconds=0.2),
    )
    for minute, shift, count in ((0, 0.0, 200), (1, 2.0, 200), (2, 0.0, 5)):
        for i in range(count):
            client.log_prediction(
                {"x": float(rng.normal(shift)), "c": "a" if i % 2 else "b"},
                0.5,
                ts=t0 + minute * MINUTE + i * 250,
                latency_ms=4.0,
            )
    assert client.close(timeout=60), client.stats()
    stats = client.stats()
    assert (stats.sent, stats.dropped, stats.failed_batches) == (405, 0, 0), stats


def _grafana(
    folder: Path, org: str, deployment: str, t0: int
) -> tuple[dict[str, list[Any]], dict[str, list[list[Any]]]]:
    """The drift dashboard's variable values and its panels' rows per statistic, run on the
    worker's store as Grafana would over the run's hours (one child process for them all)."""
    (dashboard,) = [d for d in DASHBOARDS if d.uid == "driftline-drift"]
    start = datetime.fromtimestamp(t0 / 1000, UTC) - timedelta(hours=1)

    def context(statistic: str) -> QueryContext:
        variables = {"organization": org, "deployment": deployment, "feature": FEATURES}
        return QueryContext(start, datetime.now(UTC), 60.0, variables | {"statistic": statistic})

    names = [v.name for v in dashboard.variables]
    queries = [expand(v.sql, context("ks")) for v in dashboard.variables]
    for statistic in STATISTICS:
        names += [f"{p.title}/{statistic}" for p in dashboard.panels]
        queries += [expand(p.sql, context(statistic)) for p in dashboard.panels]
    results = dict(zip(names, query_folder(folder, queries), strict=True))
    values = {v.name: [row[0] for row in results.pop(v.name)] for v in dashboard.variables}
    return values, results


@pytest.mark.kafka
@pytest.mark.smtp
@pytest.mark.postgres
@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_configured_over_the_api_events_through_kafka_drift_alert_by_webhook_and_email(
    api_process: tuple[str, dict[str, str]],
    receiver: alerts_support.Receiver,
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    base, shared = api_process
    mailbox = f"oncall-{unique_name}@acme.example"
    with httpx.Client(base_url=base, timeout=30) as http:
        api = Api(http)  # httpx.Client: the interface TestClient has
        ids = configure(api, receiver.url + "/hook")
        owner = {"Authorization": ids["owner"]}
        mail = http.post(
            "/v1/channels",
            headers=owner,
            json={
                "name": "on-call mail",
                "kind": "email",
                "config": {
                    "host": _env("DRIFTLINE_TEST_SMTP_HOST"),
                    "port": int(_env("DRIFTLINE_TEST_SMTP_PORT")),
                    "security": "starttls",
                    "sender": "alerts@driftline.example",
                    "to": [mailbox],
                    "username": _env("DRIFTLINE_TEST_SMTP_USER"),
                },
                "secrets": {"password": _env("DRIFTLINE_TEST_SMTP_PASSWORD")},
            },
        )
        assert mail.status_code == 201, mail.text
        channels = [c["id"] for c in http.get("/v1/channels", headers=owner).json()["items"]]
        assert len(channels) == 2
        routing = http.put(
            "/v1/alert-routing",
            headers=owner,
            json={"tree": {"channels": channels, "group_wait_ms": 0}},
        )
        assert routing.status_code == 200, routing.text

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
            _send_through_the_sdk(kafka_bootstrap, topic, ids["deployment"], t0)

            def delivered() -> Any:
                assert worker.process.poll() is None, worker.log()[-4000:]
                return (receiver.ok() and _mail_to(mailbox)) or None

            def state() -> str:
                alerts = http.get("/v1/alerts", headers=owner).text
                api_log = (tmp_path / "api.log").read_text()[-3000:]
                return f"alerts: {alerts}\nworker: {worker.log()[-3000:]}\napi: {api_log}"

            message = _poll("the alert by webhook and by email", delivered, state=state)
        finally:
            stopped = worker.stop()
        assert stopped == 0, worker.log()[-4000:]
        hook = receiver.ok()[0]
        payload = Webhook(SECRET).verify(hook.body, hook.headers)
        assert payload["type"] == "alert.firing"
        (alert,) = payload["data"]["alerts"]
        assert (alert["labels"]["alertname"], alert["status"]) == ("x-shift", "firing")
        assert message["Subject"].startswith("[FIRING:1] x-shift")
        assert "x-shift" in message.get_body(("plain",)).get_content()
        firing = http.get("/v1/alerts", headers=owner, params={"state": "firing"}).json()
        assert [a["rule_id"] for a in firing["items"]] == [ids["rule"]]

    values, panels = _grafana(tmp_path / "worker", ids["org"], ids["deployment"], t0)
    assert values["organization"] == [ids["org"]]
    assert values["deployment"] == [ids["deployment"]]
    assert values["feature"] == FEATURES
    assert {"ks", "wasserstein_normed", "chi2"} <= set(values["statistic"])
    for statistic in ("ks", "wasserstein_normed"):
        (x,) = panels[f"Features by drift/{statistic}"]  # only numeric x has these statistics
        assert x[:3] == ["x", 2, 1], x  # two closed windows, the shifted one drifted
    (c,) = panels["Features by drift/chi2"]
    assert c[:3] == ["c", 2, 0], c
    timeline = panels["Drifted (any window in the bucket)/ks"]
    assert [row[1:] for row in timeline] == [["x", 0], ["x", 1]]
