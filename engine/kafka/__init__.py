"""Kafka transport for the engine: the faust app and topic administration.

Faust carries events and keeps partitioned state (tables backed by changelog topics); the
pipeline, its windows and their closing are the engine's own and are wired in elsewhere.
"""

from engine.kafka.admin import KafkaAdminError, create_topics, topic_partitions
from engine.kafka.app import KafkaApp, TopicSpec, build_app, faust_broker_urls

__all__ = [
    "KafkaAdminError",
    "KafkaApp",
    "TopicSpec",
    "build_app",
    "create_topics",
    "faust_broker_urls",
    "topic_partitions",
]
