"""``driftline demo``: Driftline on this machine with a model server, a drift and an alert.

Runs ``driftline up`` in-process (API, embedded engine, chDB, SQLite, alert delivery) on a
fresh data folder, starts a local webhook receiver, configures everything through the REST
API as a user would (sign-up, reference upload, model, deployment, monitor, webhook channel,
route, alert rule, API key), then plays a model server that logs predictions through the SDK
(``driftline.client``) in real time. Half-way through, the ``income`` feature shifts by 1.5
reference standard deviations; the next window flags it and the alert reaches the receiver.
Everything it uses is generated here: no download, no server to install.
"""

from __future__ import annotations

import http.server
import io
import json
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import polars as pl
import typer
from pydantic import SecretStr

from driftline.settings import Settings, load_settings

WINDOW = "5s"
DRIFT_SD = 1.5


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it was sent."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Serve on a free port in a daemon thread; return the URL to post alerts to."""
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/alerts"

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()


def _reference(rows: int = 5000) -> bytes:
    rng = np.random.default_rng(7)
    frame = pl.DataFrame(
        {
            "income": rng.normal(5000, 800, rows),
            "age": rng.integers(18, 80, rows).astype(float),
            "score": rng.beta(2, 5, rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


def _configure(api: httpx.Client, receiver_url: str) -> tuple[str, str, str]:
    """Set up the organization over the API; return the deployment id and an ingest key."""
    email, password = "demo@example.com", secrets.token_urlsafe(16)
    api.post(
        "/v1/auth/signup", json={"org_name": "Demo", "email": email, "password": password}
    ).raise_for_status()
    token = api.post("/v1/auth/token", data={"username": email, "password": password})
    api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    reference = api.post(
        "/v1/references",
        data={"name": "credit"},
        files={"file": ("credit.csv", _reference(), "text/csv")},
    ).json()
    model = api.post("/v1/models", json={"name": "credit"}).json()
    schema = [{"name": name, "type": "numeric"} for name in ("income", "age", "score")] + [
        {"name": "region", "type": "categorical"}
    ]
    api.post(
        f"/v1/models/{model['id']}/versions", json={"feature_schema": schema}
    ).raise_for_status()
    deployment = api.post(
        "/v1/deployments",
        json={"name": "credit", "environment": "prod", "model_id": model["id"], "model_version": 1},
    ).json()
    api.post(
        "/v1/monitors",
        json={
            "name": "credit drift",
            "deployment_id": deployment["id"],
            "reference_id": reference["id"],
            "spec": {"window": {"kind": "tumbling", "size": WINDOW}, "min_samples": 100},
        },
    ).raise_for_status()
    channel = api.post(
        "/v1/channels",
        json={"name": "demo hook", "kind": "webhook", "config": {"url": receiver_url}},
    ).json()
    api.put(
        "/v1/alert-routing", json={"tree": {"channels": [channel["id"]], "group_wait_ms": 0}}
    ).raise_for_status()
    api.post(
        "/v1/alert-rules",
        json={
            # the engine's verdict per feature (BH-corrected test and effect floor), so that
            # noise in a small window does not page anyone
            "name": "feature drift",
            "deployment": deployment["id"],
            "condition": {"kind": "drifted_share", "threshold": 0.25},
            "severity": "critical",
            "annotations": {"summary": "{{ '%.0f'|format(value * 100) }}% of the features drifted"},
        },
    ).raise_for_status()
    key = api.post("/v1/api-keys", json={"name": "model server", "scopes": ["ingest"]}).json()
    return deployment["id"], key["id"], key["key"]


def _counter(settings_app: Any, name: str, labels: dict[str, str]) -> float:
    hub = settings_app.state.ctx.engine_hub
    value = hub.metrics.registry.get_sample_value(name, labels) if hub is not None else None
    return float(value or 0.0)


def demo_command(
    duration: Annotated[float, typer.Option(help="Seconds to run before the summary.")] = 60.0,
    port: Annotated[int, typer.Option(help="Port of the demo API.")] = 8765,
    rate: Annotated[float, typer.Option(help="Predictions per second.")] = 400.0,
) -> None:
    """Run Driftline with a simulated model server, a drift half-way and an alert."""
    import uvicorn

    from control_api.app import create_app
    from driftline.cli import run_migrations
    from driftline.client import DriftlineClient
    from storage.secretbox import local_key

    folder = Path(tempfile.mkdtemp(prefix="driftline-demo-"))
    settings: Settings = load_settings(
        data_dir=folder,
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        secrets_key=SecretStr(local_key(folder)),
        engine_embedded=True,
        alert_delivery_seconds=0.5,
        rate_limit_per_second=10_000.0,
        rate_limit_burst=100_000,
    )
    run_migrations(settings)
    receiver = Receiver()
    receiver_url = receiver.start()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    typer.echo(f"Driftline demo: API at {base}/docs, data in {folder}")
    with httpx.Client(base_url=base, timeout=30) as api:
        deployment, key_id, key_secret = _configure(api, receiver_url)
        typer.echo(f"configured over the API: deployment {deployment}, monitor, rule, webhook")
        client = DriftlineClient.http(
            base, key_id=key_id, key_secret=key_secret, deployment=deployment
        )
        rng = np.random.default_rng(1)
        started = time.monotonic()
        drift_at = started + duration / 2
        next_report = started + 5
        sent = 0
        while (now := time.monotonic()) < started + duration:
            shift = DRIFT_SD * 800 if now >= drift_at else 0.0
            for _ in range(max(1, int(rate / 20))):
                client.log_prediction(
                    {
                        "income": float(rng.normal(5000, 800) + shift),
                        "age": float(rng.integers(18, 80)),
                        "score": float(rng.beta(2, 5)),
                        "region": str(rng.choice(["north", "south", "east", "west"])),
                    },
                    float(rng.random()),
                    latency_ms=float(rng.gamma(2.0, 6.0)),
                )
                sent += 1
            if now >= next_report:
                next_report += 5
                windows = sum(
                    _counter(app, "driftline_windows_closed_total", {"outcome": o})
                    for o in ("ok", "drift", "insufficient")
                )
                drifts = _counter(app, "driftline_windows_closed_total", {"outcome": "drift"})
                phase = "drifted" if now >= drift_at else "stationary"
                typer.echo(
                    f"  t={now - started:4.0f}s  {phase:<10} sent {sent:>6}  "
                    f"windows {windows:>3.0f}  with drift {drifts:>3.0f}  "
                    f"alerts delivered {len(receiver.bodies)}"
                )
            time.sleep(0.05)
        client.close(timeout=10)
        time.sleep(1.5)  # the last delivery pass
        summary = {
            "events_ingested": int(_counter(app, "driftline_events_total", {"type": "prediction"})),
            "windows_closed": int(
                sum(
                    _counter(app, "driftline_windows_closed_total", {"outcome": o})
                    for o in ("ok", "drift", "insufficient")
                )
            ),
            "drifts_detected": int(
                _counter(app, "driftline_windows_closed_total", {"outcome": "drift"})
            ),
            "alerts_delivered": len(receiver.bodies),
        }
        alerts = api.get("/v1/alerts", params={"state": "firing"}).json()["items"]
        first = receiver.bodies[0] if receiver.bodies else {}
    server.should_exit = True
    serving.join(timeout=30)
    receiver.stop()
    typer.echo(json.dumps(summary, indent=2))
    if alerts:
        typer.echo(f"firing: {alerts[0]['annotations'].get('summary', alerts[0]['rule_id'])}")
    if first:
        typer.echo(f"the webhook received: {json.dumps(first)[:300]}")
    typer.echo(
        "look next: GET /v1/alerts, GET /v1/deployments/"
        f"{deployment}/metrics/drift, the metrics store in {folder}/metrics"
    )
