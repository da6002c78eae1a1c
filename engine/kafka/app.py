"""Build the faust app from arguments: broker, app id, topics and their partition counts.

Messages travel as raw bytes (keys are deployment ids, values are encoded events or batch
envelopes): decoding happens in batches in the pipeline, not per message in faust's codecs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.types import TopicT

__all__ = ["KafkaApp", "TopicSpec", "build_app", "faust_broker_urls"]


@dataclass(frozen=True)
class TopicSpec:
    """A Kafka topic the app reads or writes.

    ``partitions`` bounds the parallelism: one deployment's events (same key) land on one
    partition, so on one worker of the consumer group.
    """

    name: str
    partitions: int
    replicas: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a topic needs a name")
        if self.partitions < 1 or self.replicas < 1:
            raise ValueError(
                f"topic {self.name!r}: partitions and replicas must be >= 1, "
                f"got {self.partitions} and {self.replicas}"
            )


@dataclass(frozen=True)
class KafkaApp:
    """A faust app with its declared topics, by name."""

    app: faust.App
    topics: Mapping[str, TopicT]


def faust_broker_urls(bootstrap: str) -> list[str]:
    """Faust broker URLs (``kafka://host:port``) from a ``host:port[,host:port...]`` list."""
    hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
    if not hosts:
        raise ValueError(f"no broker address in {bootstrap!r}")
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def build_app(
    *,
    bootstrap: str,
    app_id: str,
    topics: Sequence[TopicSpec],
    datadir: Path,
    table_partitions: int | None = None,
    store: str = "memory://",
    replicas: int = 1,
    settings: Mapping[str, Any] | None = None,
) -> KafkaApp:
    """A faust app on ``bootstrap`` with the consumer group ``app_id`` and ``topics`` declared.

    ``table_partitions`` is the partition count of the tables' changelog topics; faust
    requires a table to have as many partitions as the stream that fills it, so it defaults
    to the topics' common count (and must be given when they differ). ``store`` is where
    tables keep their local copy: ``memory://`` rebuilds it from the changelog on start,
    ``rocksdb://`` keeps it in ``datadir``. The web server and module autodiscovery are off:
    the engine exposes its own metrics and registers its agents explicitly. The topics are
    not created here (faust only creates its internal topics, such as changelogs): create
    them first with :func:`engine.kafka.admin.create_topics`. ``settings`` are further faust
    settings by name (``broker_commit_interval``, ``broker_session_timeout`` ...).
    """
    if table_partitions is None:
        counts = {t.partitions for t in topics}
        if len(counts) != 1:
            raise ValueError(
                "topics with different partition counts: give table_partitions explicitly"
            )
        table_partitions = counts.pop()
    app = faust.App(
        app_id,
        broker=faust_broker_urls(bootstrap),
        store=store,
        datadir=str(datadir),
        topic_partitions=table_partitions,
        topic_replication_factor=replicas,
        web_enabled=False,
        autodiscover=False,
        **dict(settings or {}),
    )
    declared = {
        t.name: app.topic(
            t.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=t.partitions,
            replicas=t.replicas,
        )
        for t in topics
    }
    return KafkaApp(app=app, topics=declared)
