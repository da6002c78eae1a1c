"""Queueing, counters, envelopes, retries and shutdown, over a small in-memory transport."""

from __future__ import annotations

import asyncio
import atexit
import threading
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import orjson
import pytest

from driftline.client import (
    AsyncDriftlineClient,
    ClientConfig,
    Delivery,
    DriftlineClient,
    Envelope,
    PermanentError,
    TransientError,
)
from driftline.client.envelopes import envelopes
from driftline.client.events import EncodedEvent, encode_event, prediction_event


class Recorder:
    """A transport that keeps what it is sent; ``script`` lists errors to raise first."""

    def __init__(self, keyed=False, script=(), gate: threading.Event | None = None):
        self.keyed = keyed
        self.script = list(script)
        self.sent: list[Envelope] = []
        self.gate = gate
        self.closed = False

    async def send(self, envelope: Envelope) -> Delivery:
        if self.gate is not None:
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
        if self.script:
            raise self.script.pop(0)
        self.sent.append(envelope)
        return Delivery(accepted=envelope.count)

    async def aclose(self) -> None:
        self.closed = True

    def events(self) -> list[dict]:
        return [e for env in self.sent for e in orjson.loads(env.body)["events"]]


def test_a_full_queue_drops_the_newest_and_counts_it():
    gate = threading.Event()  # hold the sender so the queue fills
    transport = Recorder(gate=gate)
    config = ClientConfig(max_queue=3, batch_size=100, flush_interval_seconds=60)
    client = DriftlineClient(transport, deployment="d", config=config, register_atexit=False)
    results = [client.log_prediction({"x": i}, 0, event_id=f"e{i}") for i in range(5)]
    assert results == [True, True, True, False, False]
    assert (client.stats().dropped, client.stats().queued) == (2, 3)
    gate.set()
    assert client.close(timeout=10)
    assert [e["event_id"] for e in transport.events()] == ["e0", "e1", "e2"]
    assert transport.closed
    stats = client.stats()
    assert (stats.enqueued, stats.sent, stats.dropped, stats.queued) == (3, 3, 2, 0)


def test_bad_events_are_counted_as_invalid_never_raised():
    client = DriftlineClient(Recorder(), config=ClientConfig(), register_atexit=False)
    assert client.log_prediction({"x": 1.0}, 0.1) is False  # no deployment anywhere
    assert client.log_prediction({"x": object()}, 0.1, deployment="d") is False
    assert client.log_prediction({"x": "y" * 70_000}, 0.1, deployment="d") is False
    assert client.log_label("", 1, deployment="d") is False
    assert client.log_resources(cpu=0.1, memory_mb=1, deployment="d")
    client.close()
    assert (client.stats().invalid, client.stats().sent) == (4, 1)


def test_close_flushes_everything_and_is_idempotent():
    transport = Recorder()
    config = ClientConfig(batch_size=10, flush_interval_seconds=60)
    client = DriftlineClient(transport, deployment="d", config=config)
    for i in range(25):
        client.log_prediction({"x": np.float32(i)}, np.int64(1), event_id=str(i), ts=i)
    assert client.close()
    assert client.close() is False
    assert [e["event_id"] for e in transport.events()] == [str(i) for i in range(25)]
    assert atexit.unregister(client.close) is None  # unregistered by close: nothing left


def test_a_full_batch_wakes_the_sender_before_the_interval():
    transport = Recorder()
    config = ClientConfig(batch_size=5, flush_interval_seconds=60)
    with DriftlineClient(transport, deployment="d", config=config) as client:
        for i in range(5):
            client.log_prediction({"x": i}, 0)
        for _ in range(200):
            if transport.sent:
                break
            threading.Event().wait(0.01)
        assert client.stats().sent == 5


def test_transient_failures_are_retried_then_counted():
    errors = [TransientError("503", retry_after=0.01), TransientError("down")]
    errors += [TransientError("x"), TransientError("y")]
    transport = Recorder(script=errors)
    config = ClientConfig(max_retries=2, backoff_seconds=0.001, max_backoff_seconds=0.01)
    with DriftlineClient(transport, deployment="d", config=config) as client:
        client.log_prediction({"x": 1}, 0)
        client.flush()
        client.log_prediction({"x": 2}, 0)  # the last scripted error, then success
    stats = client.stats()
    assert (stats.retries, stats.failed_batches, stats.failed_events, stats.sent) == (3, 1, 1, 1)


def test_permanent_and_unexpected_failures_are_not_retried():
    transport = Recorder(script=[PermanentError("403"), RuntimeError("bug")])
    with DriftlineClient(transport, deployment="d") as client:
        client.log_prediction({"x": 1}, 0)
        client.flush()
        client.log_prediction({"x": 2}, 0)
    stats = client.stats()
    assert (stats.retries, stats.failed_batches, stats.sent) == (0, 2, 0)


def test_close_out_of_time_drops_and_counts_what_is_left():
    gate = threading.Event()  # never opened: the transport hangs
    client = DriftlineClient(Recorder(gate=gate), deployment="d", register_atexit=False)
    for i in range(3):
        client.log_prediction({"x": i}, 0)
    assert client.flush(timeout=0.2) is False
    assert client.close(timeout=0.2) is False
    stats = client.stats()
    assert (stats.dropped, stats.sent, stats.queued) == (3, 0, 0)


def test_async_client_starts_lazily_and_flushes_on_aclose():
    transport = Recorder(keyed=True)

    async def run() -> AsyncDriftlineClient:
        client = AsyncDriftlineClient(transport, deployment="d")
        client.log_prediction({"x": 1}, 0)  # starts the sender on this loop
        client.log_label("r", 1, deployment="other")
        assert await client.flush(timeout=10)
        client.log_resources(cpu=1, memory_mb=2)
        assert await client.aclose()
        assert await client.aclose() is False
        return client

    client = asyncio.run(run())
    assert sorted(env.key for env in transport.sent) == ["d", "d", "other"]
    assert client.stats().sent == 3
    assert client.closed


def test_envelopes_split_by_size_and_go_columnar_per_type():
    def item(i, kind="prediction", deployment="d"):
        event = prediction_event(deployment=deployment, features={"x": i}, prediction=0, ts=i)
        return EncodedEvent(kind, deployment, orjson.dumps({**event, "type": kind}))

    events = [item(i) for i in range(100)]
    small = envelopes(events, keyed=False, columnar_threshold=1000, max_bytes=2000)
    assert len(small) > 1
    assert all(len(e.body) <= 2000 for e in small)
    assert sum(e.count for e in small) == 100
    mixed = [*events[:3], item(7, "label", "e")]
    parts = envelopes(mixed, keyed=True, columnar_threshold=3, max_bytes=10_000)
    assert [(p.key, p.count) for p in parts] == [("d", 3), ("e", 1)]
    assert orjson.loads(parts[0].body)["columns"]["features"] == {"x": [0, 1, 2]}


def test_timestamps_and_sizes():
    aware = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    event = prediction_event(deployment="d", features={}, prediction=1, ts=aware)
    assert event["ts"] == "2026-01-02T01:04:05Z"
    naive = prediction_event(deployment="d", features={}, prediction=1, ts=datetime(2026, 1, 2))
    assert naive["ts"] == "2026-01-02T00:00:00Z"
    assert isinstance(prediction_event(deployment="d", features={}, prediction=1)["ts"], int)
    assert encode_event(event, max_bytes=1000).deployment == "d"
    assert datetime.now(UTC).year >= 2026


@pytest.mark.parametrize(
    "bad",
    [
        {"max_queue": 0},
        {"batch_size": -1},
        {"max_envelope_bytes": 10},
        {"max_retries": -1},
    ],
)
def test_config_refuses_nonsense(bad):
    with pytest.raises(ValueError, match="must"):
        ClientConfig(**bad)
