"""``driftline worker``: consume the events topic through the pipeline (engine/kafka/).

Everything comes from the settings (``DRIFTLINE_KAFKA_*``, ``DRIFTLINE_MONITORS_FILE``, the
metrics store URL). Results and dead letters go to the metrics store; with the embedded
chDB default each worker process needs its own ``DRIFTLINE_DATA_DIR`` (a chDB folder
serves one process), so several workers normally share a ClickHouse server instead.
SIGTERM or SIGINT stops the worker cleanly: the batch in progress is finished and
checkpointed, then acked offsets are committed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import typer

from driftline.settings import Settings, load_settings


def _require(settings: Settings) -> list[str]:
    missing = []
    if not settings.kafka_bootstrap:
        missing.append("DRIFTLINE_KAFKA_BOOTSTRAP")
    if not settings.kafka_organization:
        missing.append("DRIFTLINE_KAFKA_ORGANIZATION")
    if settings.monitors_file is None:
        missing.append("DRIFTLINE_MONITORS_FILE")
    return missing


async def _serve(settings: Settings) -> None:
    from engine.kafka.worker import KafkaWorker, WorkerConfig
    from engine.monitor import load_monitors
    from engine.sinks import MetricsStoreDeadLetters, MetricsStoreSink
    from storage.clickhouse.client import RetryPolicy, connect
    from storage.clickhouse.migrations import MigrationParams, migrate

    assert settings.monitors_file is not None  # checked by _require
    monitors = load_monitors(settings.monitors_file)
    retry = RetryPolicy(
        retries=settings.clickhouse_retries,
        backoff_seconds=settings.clickhouse_retry_backoff_seconds,
    )
    client = connect(
        settings.clickhouse_url, default_database=settings.clickhouse_database, retry=retry
    )
    try:
        migrate(client, MigrationParams(ttl_days=settings.metrics_ttl_days))
        organization = settings.kafka_organization
        config = WorkerConfig(
            bootstrap=settings.kafka_bootstrap,
            group_id=settings.kafka_group_id,
            organization=organization,
            topic=settings.kafka_events_topic,
            dead_letter_topic=settings.kafka_dead_letter_topic,
            partitions=settings.kafka_partitions,
            datadir=settings.data_dir / "faust",
            batch_size=settings.kafka_batch_size,
            batch_seconds=settings.kafka_batch_seconds,
            commit_interval_seconds=settings.kafka_commit_interval_seconds,
            session_timeout_seconds=settings.kafka_session_timeout_seconds,
            heartbeat_interval_seconds=settings.kafka_heartbeat_interval_seconds,
        )
        worker = KafkaWorker(
            config,
            monitors=monitors,
            sink=MetricsStoreSink(client, organization),
            store_dead_letters=MetricsStoreDeadLetters(client, organization),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)
    finally:
        client.close()


def worker_command() -> None:
    """Consume the events topic (Kafka) through the pipeline, one consumer-group member.

    Needs DRIFTLINE_KAFKA_BOOTSTRAP, DRIFTLINE_KAFKA_ORGANIZATION and
    DRIFTLINE_MONITORS_FILE. Start more workers with the same DRIFTLINE_KAFKA_GROUP_ID to
    share the partitions.
    """
    settings = load_settings()
    missing = _require(settings)
    if missing:
        typer.echo(f"worker refused to start: set {', '.join(missing)}", err=True)
        raise typer.Exit(code=2)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(_serve(settings))


if __name__ == "__main__":  # python -m driftline.worker_command
    typer.run(worker_command)
