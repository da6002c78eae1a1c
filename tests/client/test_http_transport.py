"""The HTTP transport against the real API served by uvicorn (embedded engine, chDB)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from control_api.app import create_app
from driftline.client import (
    AsyncDriftlineClient,
    ClientConfig,
    DriftlineClient,
    Envelope,
    HttpTransport,
    PermanentError,
)
from storage.clickhouse.client import connect
from tests.client.support import Stack, serve, sign_up

T0 = 1_764_237_600_000
MINUTE = 60_000


def log_minute(client: DriftlineClient | AsyncDriftlineClient, minute: int, count: int, shift=0.0):
    rng = np.random.default_rng(minute)
    for i in range(count):
        queued = client.log_prediction(
            {"x": rng.normal(shift), "c": "a" if i % 2 else "b"},  # numpy floats are fine
            0.4,
            event_id=f"m{minute}-{i}",
            ts=T0 + minute * MINUTE + i * 100,
            latency_ms=7.5,
            request_id=f"r{minute}-{i}",
        )
        assert queued


def test_events_arrive_and_windows_land_in_the_metrics_store(stack: Stack):
    client = DriftlineClient.http(
        stack.url, key_id=stack.key_id, key_secret=stack.key_secret, deployment="loans"
    )
    with client:
        log_minute(client, 0, 120)
        assert client.flush(timeout=60)
        log_minute(client, 1, 120, shift=2.0)
        assert client.flush(timeout=60)
        log_minute(client, 2, 10)
        client.log_label("ghost", 1, ts=T0 + 2 * MINUTE + 500)  # joins no prediction
        client.log_resources(cpu=0.6, memory_mb=812, ts=T0 + 2 * MINUTE + 600)
    stats = client.stats()
    # delivered, and the engine's receipt says it refused the unmatched label
    assert (stats.enqueued, stats.sent, stats.rejected) == (252, 252, 1)
    assert (stats.dropped, stats.failed_batches, stats.retries, stats.queued) == (0, 0, 0, 0)
    with connect(stack.settings.clickhouse_url) as store:
        rows = store.query_rows(
            "SELECT window_start, feature, statistic, drifted FROM drift_results "
            "WHERE organization = {org:String}",
            {"org": stack.org_id},
        )
    assert len({r[0] for r in rows}) == 2
    assert {(r[1], r[2]) for r in rows if r[3]} == {("x", "ks"), ("x", "wasserstein_normed")}


def test_async_client_sends_columnar_envelopes_the_engine_accepts(stack: Stack):
    async def run() -> AsyncDriftlineClient:
        config = ClientConfig(columnar_threshold=10, batch_size=40, flush_interval_seconds=0.05)
        client = AsyncDriftlineClient.http(
            stack.url,
            key_id=stack.key_id,
            key_secret=stack.key_secret,
            deployment="loans",
            config=config,
        )
        async with client:
            log_minute(client, 0, 100)
            client.log_prediction({"x": 0.1}, 0.3, ts=T0 + 1)  # no "c": null in its column
            client.log_resources(cpu=0.5, memory_mb=100.0, gpu=0.1, replicas=2, ts=T0 + 2)
            assert await client.flush(timeout=60)
        return client

    client = asyncio.run(run())
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.failed_batches) == (102, 0, 0)


def test_a_stopped_server_makes_failures_counted_not_raised(stack: Stack):
    config = ClientConfig(max_retries=2, backoff_seconds=0.01, max_backoff_seconds=0.02)
    with serve(create_app(stack.settings)) as url:
        own = sign_up(url, stack.settings)
        client = DriftlineClient.http(
            url, key_id=own.key_id, key_secret=own.key_secret, deployment="loans", config=config
        )
        log_minute(client, 0, 5)
        assert client.flush(timeout=60)
        assert client.stats().sent == 5
    log_minute(client, 1, 7)  # the server is gone: queueing still works
    assert client.flush(timeout=60)
    assert client.close(timeout=10)
    stats = client.stats()
    assert (stats.sent, stats.failed_batches, stats.failed_events, stats.retries) == (5, 1, 7, 2)
    assert client.log_prediction({"x": 1.0}, 0.1) is False  # closed: dropped and counted
    assert client.stats().dropped == 1


def test_the_token_is_refreshed_before_it_expires(stack: Stack):
    now = [0.0]
    paths: list[str] = []

    async def record(request):
        paths.append(request.url.path)

    async def run() -> None:
        transport = HttpTransport(
            stack.url,
            key_id=stack.key_id,
            key_secret=stack.key_secret,
            clock=lambda: now[0],
            http_options={"event_hooks": {"request": [record]}},
        )
        envelope = Envelope(key=None, body=b'{"schema_version":1,"events":[]}', count=0)
        try:
            await transport.send(envelope)
            await transport.send(envelope)
            now[0] = stack.settings.access_token_ttl_seconds - 59.0  # inside the margin
            await transport.send(envelope)
        finally:
            await transport.aclose()

    asyncio.run(run())
    token, ingest = "/v1/auth/token", "/v1/ingest"
    assert paths == [token, ingest, ingest, token, ingest]


def test_a_wrong_secret_is_a_permanent_failure(stack: Stack):
    async def run() -> None:
        transport = HttpTransport(stack.url, key_id=stack.key_id, key_secret="wrong")
        try:
            with pytest.raises(PermanentError, match="401"):
                await transport.send(Envelope(key=None, body=b"{}", count=0))
        finally:
            await transport.aclose()

    asyncio.run(run())
    config = ClientConfig(max_retries=3)
    with DriftlineClient.http(
        stack.url, key_id=stack.key_id, key_secret="wrong", deployment="loans", config=config
    ) as client:
        client.log_prediction({"x": 1.0}, 0.2)
        assert client.flush(timeout=30)
    stats = client.stats()
    assert (stats.failed_batches, stats.failed_events, stats.retries, stats.sent) == (1, 1, 0, 0)
