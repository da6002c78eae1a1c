"""The end-to-end flow both shapes share, from configuration to the Grafana panels.

tests/test_e2e_kafka.py runs it on the production shape (``driftline api`` on PostgreSQL,
the SDK's Kafka transport, a ``driftline worker``), tests/test_e2e_up.py on the embedded
default (``driftline up``, the SDK's HTTP transport to ``POST /v1/ingest``). Both configure
everything over the REST API (:func:`configure_with_email`), send a stationary minute, a
minute with ``x`` shifted by 2 sd and a few events closing it (:func:`send_drift`), wait
for the alert at the webhook receiver and the SMTP sink (:func:`wait_for_the_alert`), check
it (:func:`check_the_alert`), and after the metrics store's process stopped, run the
Grafana drift dashboard's SQL on its chDB folder (:func:`check_the_dashboard`).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from standardwebhooks import Webhook

from driftline.client import DriftlineClient
from storage.clickhouse.grafana import DASHBOARDS, QueryContext, expand
from tests.control_api.conftest import Api
from tests.control_api.test_e2e_embedded import SECRET, configure
from tests.engine.alerts_support import Receiver
from tests.engine.kafka_worker_tools import MINUTE, query_folder
from tests.servers import free_port, wait_until_healthy

FEATURES = ["c", "x"]
STATISTICS = ("ks", "wasserstein_normed", "chi2")
T = TypeVar("T")


def service_env(name: str) -> str:
    """A test service's setting exported by .ci/services.sh; a missing one fails the test."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `source .ci/services.sh`")
    return value


def poll(
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


def server_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a Driftline server child process: this process's without its
    ``DRIFTLINE_*`` variables, plus ``settings``, cheap Argon2 (1 pass, 64 KiB), the alert
    outbox drained every 0.5 s, and the SMTP sink's certificate trusted (STARTTLS is
    verified against ``SSL_CERT_FILE``)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return (
        inherited
        | {
            "DRIFTLINE_ALERT_DELIVERY_SECONDS": "0.5",
            "DRIFTLINE_ARGON2_TIME_COST": "1",
            "DRIFTLINE_ARGON2_MEMORY_KIB": "64",
            "SSL_CERT_FILE": service_env("DRIFTLINE_TEST_SMTP_CAFILE"),
        }
        | dict(settings)
    )


@contextmanager
def running_server(
    command: Sequence[str], env: Mapping[str, str], log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``driftline COMMAND --port PORT`` as a child process, its output in ``log_path``.

    Yields its base URL and the process once ``/healthz`` answers; at exit sends SIGTERM
    (when it still runs) and waits for the graceful stop (60 s, then SIGKILL).
    """
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("driftline")), *command, "--port", str(port)],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base, log_path.read_text)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
            raise


def configure_with_email(http: httpx.Client, receiver_url: str, mailbox: str) -> dict[str, str]:
    """Everything configured over the REST API (tests/control_api/test_e2e_embedded.py's
    ``configure``: sign-up, reference, model and version, deployment, monitor, webhook
    channel, rule ``x-shift``), plus an email channel to ``mailbox`` through the SMTP sink
    (STARTTLS, AUTH) and a route to both channels; answers ``configure``'s ids."""
    ids = configure(Api(http), receiver_url)  # httpx.Client: the interface TestClient has
    owner = {"Authorization": ids["owner"]}
    mail = http.post(
        "/v1/channels",
        headers=owner,
        json={
            "name": "on-call mail",
            "kind": "email",
            "config": {
                "host": service_env("DRIFTLINE_TEST_SMTP_HOST"),
                "port": int(service_env("DRIFTLINE_TEST_SMTP_PORT")),
                "security": "starttls",
                "sender": "alerts@driftline.example",
                "to": [mailbox],
                "username": service_env("DRIFTLINE_TEST_SMTP_USER"),
            },
            "secrets": {"password": service_env("DRIFTLINE_TEST_SMTP_PASSWORD")},
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
    return ids


def send_drift(client: DriftlineClient, t0: int, seed: int = 5) -> None:
    """Through the SDK: a stationary minute from ``t0``, a minute with x shifted by 2 sd,
    then a few events closing it; the client is closed and must have sent all 405."""
    rng = np.random.default_rng(seed)
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
    assert (stats.sent, stats.dropped, stats.failed_batches, stats.rejected) == (405, 0, 0, 0), (
        stats
    )


def mail_to(address: str) -> email.message.EmailMessage | None:
    """The message the SMTP sink received for ``address``, if any."""
    for path in sorted(Path(service_env("DRIFTLINE_TEST_SMTP_MAILDIR")).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            assert isinstance(message, email.message.EmailMessage)
            return message
    return None


def wait_for_the_alert(
    http: httpx.Client,
    owner: Mapping[str, str],
    receiver: Receiver,
    mailbox: str,
    processes: Mapping[str, tuple[subprocess.Popen[bytes], Path]],
) -> email.message.EmailMessage:
    """Poll (90 s) until the webhook receiver and the SMTP sink both got the alert; answers
    the email. ``processes`` (name: process, log file) must stay alive meanwhile; on failure
    the message shows /v1/alerts, each channel's delivery log, the requests the receiver got
    and the end of each process's log."""

    def tail(log: Path) -> str:
        return log.read_text(errors="replace")[-3000:]

    def delivered() -> email.message.EmailMessage | None:
        for name, (process, log) in processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode}):\n{tail(log)}"
        return mail_to(mailbox) if receiver.ok() else None

    def state() -> str:
        alerts = http.get("/v1/alerts", headers=dict(owner)).text
        channels = http.get("/v1/channels", headers=dict(owner)).json()["items"]
        deliveries = "\n".join(
            f"{c['kind']} deliveries: "
            + http.get(f"/v1/channels/{c['id']}/deliveries", headers=dict(owner)).text
            for c in channels
        )
        logs = "\n".join(f"{name}: {tail(log)}" for name, (_, log) in processes.items())
        return f"alerts: {alerts}\n{deliveries}\nwebhooks: {receiver.received}\n{logs}"

    return poll("the alert by webhook and by email", delivered, state=state)


def check_the_alert(
    http: httpx.Client,
    ids: Mapping[str, str],
    receiver: Receiver,
    message: email.message.EmailMessage,
) -> None:
    """The webhook is signed with the channel's secret (Standard Webhooks) and says
    ``x-shift`` fired; so does the email; the API lists the rule's alert as firing."""
    hook = receiver.ok()[0]
    payload = Webhook(SECRET).verify(hook.body, hook.headers)
    assert payload["type"] == "alert.firing"
    (alert,) = payload["data"]["alerts"]
    assert (alert["labels"]["alertname"], alert["status"]) == ("x-shift", "firing")
    assert message["Subject"].startswith("[FIRING:1] x-shift")
    body = message.get_body(("plain",))
    assert body is not None
    assert "x-shift" in body.get_content()
    firing = http.get(
        "/v1/alerts", headers={"Authorization": ids["owner"]}, params={"state": "firing"}
    ).json()
    assert [a["rule_id"] for a in firing["items"]] == [ids["rule"]]


def _dashboard(
    data_dir: Path, org: str, deployment: str, t0: int
) -> tuple[dict[str, list[Any]], dict[str, list[list[Any]]]]:
    """The drift dashboard's variable values and its panels' rows per statistic, run on
    ``data_dir``'s store as Grafana would over the run's hours (one child process)."""
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
    results = dict(zip(names, query_folder(data_dir, queries), strict=True))
    values = {v.name: [row[0] for row in results.pop(v.name)] for v in dashboard.variables}
    return values, results


def check_the_dashboard(data_dir: Path, ids: Mapping[str, str], t0: int) -> None:
    """The Grafana drift dashboard, expanded as the plugin does and run on the chDB store of
    ``data_dir`` (its process stopped), offers the org, deployment and both features, and
    shows two closed windows: x drifted in the shifted one (KS and normalised Wasserstein),
    c in neither (chi-squared)."""
    values, panels = _dashboard(data_dir, ids["org"], ids["deployment"], t0)
    assert values["organization"] == [ids["org"]]
    assert values["deployment"] == [ids["deployment"]]
    assert values["feature"] == FEATURES
    assert set(STATISTICS) <= set(values["statistic"])
    for statistic in ("ks", "wasserstein_normed"):
        (x,) = panels[f"Features by drift/{statistic}"]  # only numeric x has these statistics
        assert x[:3] == ["x", 2, 1], x  # two closed windows, the shifted one drifted
    (c,) = panels["Features by drift/chi2"]
    assert c[:3] == ["c", 2, 0], c
    timeline = panels["Drifted (any window in the bucket)/ks"]
    assert [row[1:] for row in timeline] == [["x", 0], ["x", 1]]
