"""Topic administration through aiokafka's admin client: create topics, read partition counts."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from engine.kafka.app import TopicSpec

__all__ = ["KafkaAdminError", "committed_offsets", "create_topics", "topic_partitions"]

# Kafka protocol error codes (org.apache.kafka.common.protocol.Errors).
_NONE = 0
_UNKNOWN_TOPIC_OR_PARTITION = 3
_TOPIC_ALREADY_EXISTS = 36


class KafkaAdminError(RuntimeError):
    """The broker refused an administrative request; the message carries its error code."""


async def create_topics(
    bootstrap: str, topics: Sequence[TopicSpec], *, timeout_ms: int = 30_000
) -> list[str]:
    """Create ``topics``; answer the names actually created.

    Idempotent: a topic that already exists is left as it is (its partition count is not
    changed; compare with :func:`topic_partitions` when that matters).
    """
    if not topics:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(t.name, t.partitions, t.replicas) for t in topics], timeout_ms=timeout_ms
        )
    finally:
        await admin.close()
    created: list[str] = []
    for name, code, message in response.topic_errors:
        if code == _NONE:
            created.append(name)
        elif code != _TOPIC_ALREADY_EXISTS:
            raise KafkaAdminError(f"creating topic {name!r} failed: error {code}: {message}")
    return created


async def topic_partitions(bootstrap: str, name: str, *, timeout_ms: int = 30_000) -> int | None:
    """The partition count of topic ``name``, or ``None`` when it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        described = await admin.describe_topics([name])
    finally:
        await admin.close()
    for topic in described:
        if topic["topic"] != name:
            continue
        code = topic["error_code"]
        if code == _UNKNOWN_TOPIC_OR_PARTITION:
            return None
        if code != _NONE:
            raise KafkaAdminError(f"describing topic {name!r} failed: error {code}")
        return len(topic["partitions"])
    return None


async def committed_offsets(
    bootstrap: str,
    group: str,
    topic: str,
    partitions: Sequence[int],
    *,
    timeout_ms: int = 30_000,
) -> dict[int, int]:
    """The consumer group's committed offsets (next offset to read) of ``partitions``.

    Partitions the group never committed are left out.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in partitions]
        )
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in found.items() if meta.offset >= 0}
