"""Kafka transport for the engine: the faust app, topic administration and the worker.

Faust carries events and keeps partitioned state (tables backed by changelog topics); the
pipeline, its windows and their closing are the engine's own. :mod:`engine.kafka.worker`
wires them together with per-partition checkpoints (:mod:`engine.kafka.partitions`).
"""

from engine.kafka.admin import KafkaAdminError, create_topics, topic_partitions
from engine.kafka.app import KafkaApp, TopicSpec, build_app, faust_broker_urls
from engine.kafka.partitions import BatchOutcome, Checkpoint, CheckpointError, PartitionRunner
from engine.kafka.worker import KafkaWorker, WorkerConfig, WorkerConfigError

__all__ = [
    "BatchOutcome",
    "Checkpoint",
    "CheckpointError",
    "KafkaAdminError",
    "KafkaApp",
    "KafkaWorker",
    "PartitionRunner",
    "TopicSpec",
    "WorkerConfig",
    "WorkerConfigError",
    "build_app",
    "create_topics",
    "faust_broker_urls",
    "topic_partitions",
]
