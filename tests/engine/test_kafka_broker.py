"""The real Kafka broker: keyed partitioning with aiokafka, and a faust table with a changelog.

These tests prove the stack the engine stands on (the broker from ``.ci/kafka.sh``,
aiokafka, faust-streaming) works together here; the engine's pipeline is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from engine.kafka import (
    KafkaAdminError,
    TopicSpec,
    build_app,
    create_topics,
    faust_broker_urls,
    topic_partitions,
)

PARTITIONS = 4
DEPLOYMENTS = [f"deployment-{i}".encode() for i in range(12)]


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, topic: str, count: int, *, timeout: float = 30.0
) -> list[tuple[int, bytes, bytes]]:
    """``count`` records of ``topic`` from the beginning, as (partition, key, value)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[tuple[int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, batch in batches.items():
                    records.extend((tp.partition, r.key, r.value) for r in batch)
    finally:
        await consumer.stop()
    return records


@pytest.mark.kafka
def test_keyed_round_trip_keeps_each_deployment_on_one_partition(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"predictions-{unique_name}"
    messages = [(key, f"{key.decode()}:{n}".encode()) for n in range(10) for key in DEPLOYMENTS]

    async def scenario() -> tuple[list[str], list[str], int | None, list[tuple[int, bytes, bytes]]]:
        spec = TopicSpec(topic, PARTITIONS)
        created = await create_topics(kafka_bootstrap, [spec])
        again = await create_topics(kafka_bootstrap, [spec])
        partitions = await topic_partitions(kafka_bootstrap, topic)
        await _produce(kafka_bootstrap, topic, messages)
        return created, again, partitions, await _consume(kafka_bootstrap, topic, len(messages))

    created, again, partitions, records = asyncio.run(scenario())

    assert created == [topic]
    assert again == []  # creating an existing topic is a no-op
    assert partitions == PARTITIONS
    assert sorted((k, v) for _, k, v in records) == sorted(messages)
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for partition, key, _ in records:
        partitions_of[key].add(partition)
    # Sticky: every deployment on exactly one partition, the one Java clients pick too
    # (murmur2 of the key, as in Kafka's default partitioner).
    assert {key: len(p) for key, p in partitions_of.items()} == dict.fromkeys(DEPLOYMENTS, 1)
    for key, p in partitions_of.items():
        assert p == {(murmur2(key) & 0x7FFFFFFF) % PARTITIONS}
    assert len(set().union(*partitions_of.values())) > 1  # and the keys spread out
    # Per-partition order is kept: each deployment's values arrive in the order sent.
    for key in DEPLOYMENTS:
        values = [v for _, k, v in records if k == key]
        assert values == [f"{key.decode()}:{n}".encode() for n in range(10)]


@pytest.mark.kafka
def test_missing_topic_has_no_partitions(kafka_bootstrap: str, unique_name: str) -> None:
    assert asyncio.run(topic_partitions(kafka_bootstrap, f"absent-{unique_name}")) is None


@pytest.mark.kafka
def test_an_invalid_topic_is_refused(kafka_bootstrap: str) -> None:
    with pytest.raises(KafkaAdminError, match="creating topic"):
        asyncio.run(create_topics(kafka_bootstrap, [TopicSpec("bad name with spaces", 1)]))


@pytest.mark.kafka
def test_faust_agent_fills_a_table_backed_by_a_changelog_topic(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    topic = f"events-{unique_name}"
    app_id = f"driftline-test-{unique_name}"
    messages = [(key, b"{}") for n in range(5) for key in DEPLOYMENTS[: 3 + n]]
    expected = Counter(key.decode() for key, _ in messages)

    async def scenario() -> tuple[dict[str, int], int | None, dict[str, int]]:
        await create_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS)])
        built = build_app(
            bootstrap=kafka_bootstrap,
            app_id=app_id,
            topics=[TopicSpec(topic, PARTITIONS)],
            datadir=tmp_path / "faust",
        )
        app = built.app
        counts = app.Table("counts", default=int)
        done = asyncio.Event()

        @app.agent(built.topics[topic])
        async def count_events(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                key = event.key
                assert isinstance(key, bytes)
                counts[key.decode()] += 1
                if sum(counts.values()) >= len(messages):
                    done.set()

        await _produce(kafka_bootstrap, topic, messages)
        await app.start()
        try:
            async with asyncio.timeout(60):
                await done.wait()
            table = dict(counts.items())
        finally:
            await app.stop()
        changelog = f"{app_id}-counts-changelog"
        # One changelog record per table update; the last one per key is the table's value.
        latest: dict[str, int] = {}
        for _, key, value in await _consume(kafka_bootstrap, changelog, len(messages)):
            latest[json.loads(key)] = json.loads(value)
        return table, await topic_partitions(kafka_bootstrap, changelog), latest

    table, changelog_partitions, latest = asyncio.run(scenario())

    assert table == dict(expected)
    assert changelog_partitions == PARTITIONS
    assert latest == expected


# The helpers' argument checks: no broker needed.


def test_faust_broker_urls_from_a_bootstrap_list() -> None:
    assert faust_broker_urls("a:1, b:2") == ["kafka://a:1", "kafka://b:2"]
    assert faust_broker_urls("kafka://a:1") == ["kafka://a:1"]
    with pytest.raises(ValueError, match="no broker"):
        faust_broker_urls(" , ")


@pytest.mark.parametrize(("partitions", "replicas"), [(0, 1), (1, 0)])
def test_topic_spec_refuses_empty_counts(partitions: int, replicas: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        TopicSpec("t", partitions, replicas)


def test_topic_spec_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        TopicSpec("", 1)


def test_table_partitions_follow_the_topics_or_are_given(tmp_path: Path) -> None:
    built = build_app(
        bootstrap="127.0.0.1:1", app_id="a", topics=[TopicSpec("x", 3)], datadir=tmp_path
    )
    assert built.app.conf.topic_partitions == 3
    assert built.topics["x"].partitions == 3
    mixed = [TopicSpec("x", 3), TopicSpec("y", 2)]
    with pytest.raises(ValueError, match="table_partitions"):
        build_app(bootstrap="127.0.0.1:1", app_id="a", topics=mixed, datadir=tmp_path)
    built = build_app(
        bootstrap="127.0.0.1:1", app_id="a", topics=mixed, datadir=tmp_path, table_partitions=6
    )
    assert built.app.conf.topic_partitions == 6
    assert set(built.topics) == {"x", "y"}


async def _no_topics() -> list[str]:
    return await create_topics("127.0.0.1:1", [])


def test_creating_no_topics_needs_no_broker() -> None:
    assert asyncio.run(_no_topics()) == []
