"""Helpers of the SDK tests: serve the real API with uvicorn in a thread, sign up."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

from detectors import ReferenceProfile
from driftline.settings import Settings

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Stack:
    """A served API with an organization and its ingest key."""

    url: str
    settings: Settings
    org_id: str
    key_id: str
    key_secret: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in a thread; stop it on exit."""
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "uvicorn did not stop"


def write_monitors(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.fit(
        {"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], size=3000)}
    )
    (folder / "profile.json").write_text(json.dumps(profile.to_dict()))
    path = folder / "monitors.yaml"
    path.write_text(
        "- deployment: loans\n"
        "  reference: profile.json\n"
        "  window: {kind: tumbling, size: 1m}\n"
        "  min_samples: 50\n"
    )
    return path


def sign_up(url: str, settings: Settings) -> Stack:
    """A new organization on the served API and an ingest key of it."""
    email = f"owner-{uuid.uuid4().hex[:8]}@acme.example.com"
    with httpx.Client(base_url=url, timeout=30) as http:
        created = http.post(
            "/v1/auth/signup", json={"org_name": "Acme", "email": email, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        login = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        owner = {"Authorization": f"Bearer {login.json()['access_token']}"}
        key = http.post(
            "/v1/api-keys", headers=owner, json={"name": "model-server", "scopes": ["ingest"]}
        )
        assert key.status_code == 201, key.text
    return Stack(
        url=url,
        settings=settings,
        org_id=created.json()["org_id"],
        key_id=key.json()["id"],
        key_secret=key.json()["key"],
    )
