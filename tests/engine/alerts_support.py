"""Shared pieces of the alerting tests: a migrated control database (SQLite or PostgreSQL)
with one organization, window results, and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine.results import DriftRow, WindowResult
from storage.db import create_db_engine, session_factory
from storage.models import AlertChannel, AlertRouting, AlertRule, Organization
from storage.tenancy import scope_to

T0 = 1_764_237_600_000
MINUTE = 60_000


@dataclass
class Db:
    sessions: sessionmaker[Session]
    org: str
    engine: sa.Engine

    def session(self) -> Session:
        return scope_to(self.sessions(), self.org)

    def add(self, *rows: Any) -> None:
        with self.session() as s:
            s.add_all(rows)
            s.commit()

    def rule(self, condition: dict[str, Any], **extra: Any) -> AlertRule:
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "org_id": self.org,
            "name": "drift",
            "deployment": "d",
            "condition": condition,
            "for_windows": 1,
            "for_ms": 0,
            "keep_firing_for_ms": 0,
            "severity": "warning",
            "labels": {},
            "annotations": {"summary": "{{ rule }} {{ '%.2f'|format(value) }}"},
            "enabled": True,
        }
        values.update(extra)
        rule = AlertRule(**values)
        self.add(rule)
        return rule

    def channel(
        self,
        kind: str,
        config: dict[str, Any],
        secrets: dict[str, Any] | None = None,
        name: str | None = None,
        send_resolved: bool = True,
    ) -> AlertChannel:
        channel = AlertChannel(
            id=str(uuid.uuid4()),
            org_id=self.org,
            name=name or f"{kind}-{uuid.uuid4().hex[:6]}",
            kind=kind,
            config=config,
            secrets=secrets or {},
            send_resolved=send_resolved,
        )
        self.add(channel)
        return channel

    def routing(self, tree: dict[str, Any]) -> None:
        self.add(AlertRouting(id=str(uuid.uuid4()), org_id=self.org, tree=tree, version=1))


@pytest.fixture
def db(db_url: str) -> Iterator[Db]:
    """A migrated database (SQLite, and PostgreSQL under the postgres marker) with one org."""
    engine = create_db_engine(db_url)
    sessions = session_factory(engine)
    org = str(uuid.uuid4())
    with sessions() as s:
        s.add(Organization(id=org, slug=f"o-{org[:8]}", name="Acme"))
        s.commit()
    yield Db(sessions, org, engine)
    engine.dispose()


def window(
    i: int,
    *,
    psi: float = 0.0,
    p: float = 0.5,
    events: int = 500,
    errors: int = 0,
    latency_p99: float = 50.0,
    performance: tuple[tuple[str, float, int], ...] = (),
    phase: str = "window",
    deployment: str = "d",
) -> WindowResult:
    """The ``i``-th one-minute window; feature ``x`` with PSI ``psi`` (threshold 0.2) and a KS
    p-value ``p``, feature ``y`` quiet."""
    rows = (
        DriftRow("x", "psi", psi, None, None, 0.2, psi >= 0.2, 1000, events, False),
        DriftRow("x", "ks", 0.1, p, p, 0.05, p <= 0.05, 1000, events, False),
        DriftRow("y", "psi", 0.01, None, None, 0.2, False, 1000, events, False),
        DriftRow("y", "ks", 0.01, 0.9, 0.9, 0.05, False, 1000, events, False),
    )
    return WindowResult(
        organization="acme",
        deployment=deployment,
        start_ms=T0 + i * MINUTE,
        end_ms=T0 + (i + 1) * MINUTE,
        events=events,
        errors=errors,
        late=0,
        insufficient=False,
        drift=rows,
        features=(),
        latency_ms=(10.0, 20.0, latency_p99),
        prediction_mean=0.3,
        prediction_std=0.1,
        class_counts={},
        custom_metrics={},
        performance=performance,
        phase=phase,  # type: ignore[arg-type]
    )


class Clock:
    """A settable clock for the delivery pipeline."""

    def __init__(self) -> None:
        self.now = datetime(2025, 11, 27, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that answers from a script of (status, delay_s,
    headers) and records every request (answered ones and failed ones alike)."""

    server: http.server.ThreadingHTTPServer
    script: list[tuple[int, float, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, *statuses: int | tuple[int, float, dict[str, str]]) -> None:
        for item in statuses:
            self.script.append(item if isinstance(item, tuple) else (item, 0.0, {}))

    def ok(self) -> list[Received]:
        return [r for r in self.received if r.headers.get("x-answered") == "2xx"]


@contextmanager
def running_receiver(port: int = 0) -> Iterator[Receiver]:
    """A :class:`Receiver` listening on 127.0.0.1:``port`` (0: any free port) until exit."""
    state: dict[str, Receiver] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, delay, extra = rec.script.pop(0) if rec.script else (200, 0.0, {})
            headers = {k.lower(): v for k, v in self.headers.items()}
            headers["x-answered"] = "2xx" if 200 <= status < 300 else str(status)
            rec.received.append(Received(self.path, headers, body))
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
