"""The Kafka transport against the real broker: consume the topic back, check keys and bodies."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from driftline.client import AsyncDriftlineClient, ClientConfig, DriftlineClient
from engine.kafka.admin import create_topics
from engine.kafka.app import TopicSpec

pytestmark = pytest.mark.kafka


async def _consume(bootstrap: str, topic: str, expected: int) -> list[tuple[str, dict]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[tuple[str, dict]] = []
    try:
        async with asyncio.timeout(60):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                for messages in batch.values():
                    records += [(m.key.decode(), orjson.loads(m.value)) for m in messages]
    finally:
        await consumer.stop()
    return records


def _topic(bootstrap: str) -> str:
    name = f"sdk-{uuid.uuid4().hex[:10]}"
    asyncio.run(create_topics(bootstrap, [TopicSpec(name, 4)]))
    return name


def test_sync_client_produces_row_envelopes_keyed_by_deployment(kafka_bootstrap):
    topic = _topic(kafka_bootstrap)
    with DriftlineClient.kafka(kafka_bootstrap, topic=topic, deployment="loans") as client:
        for i in range(3):
            client.log_prediction({"x": float(i)}, 0.5, event_id=f"l{i}", request_id=f"r{i}")
            client.log_prediction({"x": 1.0}, "yes", event_id=f"c{i}", deployment="cards")
        client.log_label("r1", 1)
        client.log_resources(cpu=0.3, memory_mb=512.0, deployment="cards")
    assert client.stats().sent == 8
    records = asyncio.run(_consume(kafka_bootstrap, topic, 2))
    by_key = dict(records)
    assert sorted(by_key) == ["cards", "loans"]
    for key, envelope in by_key.items():
        assert envelope["schema_version"] == 1
        assert {e["deployment"] for e in envelope["events"]} == {key}
    assert [e["type"] for e in by_key["loans"]["events"]] == ["prediction"] * 3 + ["label"]
    assert [e.get("event_id") for e in by_key["cards"]["events"]] == ["c0", "c1", "c2", None]


def test_async_client_produces_columnar_envelopes_when_large(kafka_bootstrap):
    topic = _topic(kafka_bootstrap)
    config = ClientConfig(columnar_threshold=5, flush_interval_seconds=0.05)

    async def run() -> AsyncDriftlineClient:
        async with AsyncDriftlineClient.kafka(
            kafka_bootstrap, topic=topic, deployment="loans", config=config
        ) as client:
            for i in range(6):
                client.log_prediction({"x": float(i), "c": "a"}, 0.1, event_id=f"e{i}", ts=i)
            client.log_label("r-1", 0, ts=9)
        return client

    client = asyncio.run(run())
    assert client.stats().sent == 7
    records = asyncio.run(_consume(kafka_bootstrap, topic, 2))
    assert {key for key, _ in records} == {"loans"}
    columnar = next(body for _, body in records if "columns" in body)
    assert columnar["type"] == "prediction"
    assert columnar["columns"]["features"] == {"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "c": ["a"] * 6}
    assert columnar["columns"]["event_id"] == [f"e{i}" for i in range(6)]
    rows = next(body for _, body in records if "events" in body)
    assert rows["events"] == [
        {"type": "label", "deployment": "loans", "request_id": "r-1", "label": 0, "ts": 9}
    ]


def test_an_unreachable_broker_is_counted_not_raised():
    config = ClientConfig(max_retries=1, backoff_seconds=0.01)
    client = DriftlineClient.kafka(
        "127.0.0.1:9", topic="predictions", deployment="loans", config=config
    )
    assert client.log_prediction({"x": 1.0}, 0.1)
    assert client.flush(timeout=60)
    client.close(timeout=10)
    stats = client.stats()
    assert (stats.sent, stats.failed_batches, stats.failed_events, stats.retries) == (0, 1, 1, 1)
