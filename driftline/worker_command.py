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
from typing import TYPE_CHECKING

import typer

from driftline.settings import Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.monitor import Monitor
    from engine.sinks import WindowListener
    from storage.clickhouse.client import MetricsClient


def _require(settings: Settings) -> list[str]:
    missing = []
    if not settings.kafka_bootstrap:
        missing.append("DRIFTLINE_KAFKA_BOOTSTRAP")
    if not settings.kafka_organization:
        missing.append("DRIFTLINE_KAFKA_ORGANIZATION")
    return missing


def control_plane_wiring(
    settings: Settings, client: MetricsClient
) -> tuple[list[Monitor], WindowListener | None, Callable[[], None]]:
    """The worker's monitors and alert evaluator, from the control database.

    Monitors configured over the API (``/v1/monitors``) for the topic's organization, plus
    those of ``DRIFTLINE_MONITORS_FILE`` when it is set; the listener evaluates that
    organization's alert rules at every closed window and writes the notification outbox,
    which the API delivers. Returns a closer for the database engine.

    A control database that was never migrated (a worker configured by file alone) gives
    the file's monitors and no alert evaluation, with a warning.
    """
    from sqlalchemy import inspect

    from control_api.references.store import object_store
    from control_api.runtime import ControlPlaneMonitors, alert_listener
    from engine.embedded import FileMonitors, NoMonitors
    from storage.db import create_db_engine, session_factory

    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    fallback = FileMonitors(settings.monitors_file) if settings.monitors_file else NoMonitors()
    if not inspect(engine).has_table("monitors"):
        logging.getLogger("driftline.worker").warning(
            "the control database is not migrated: monitors from DRIFTLINE_MONITORS_FILE only "
            "and no alert evaluation (run `driftline migrate` to use the control plane)"
        )
        return fallback.monitors_for(settings.kafka_organization), None, engine.dispose
    source = ControlPlaneMonitors(sessions, lambda: object_store(settings), fallback)
    monitors = source.monitors_for(settings.kafka_organization)
    listener = alert_listener(sessions, links={})(settings.kafka_organization, client)
    return monitors, listener, engine.dispose


async def _serve(settings: Settings) -> None:
    from engine.kafka.worker import KafkaWorker, WorkerConfig
    from engine.sinks import MetricsStoreDeadLetters, MetricsStoreSink
    from storage.clickhouse.client import RetryPolicy, connect
    from storage.clickhouse.migrations import MigrationParams, migrate

    retry = RetryPolicy(
        retries=settings.clickhouse_retries,
        backoff_seconds=settings.clickhouse_retry_backoff_seconds,
    )
    client = connect(
        settings.clickhouse_url, default_database=settings.clickhouse_database, retry=retry
    )
    monitors, listener, close_database = control_plane_wiring(settings, client)
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
            listener=listener,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)
    finally:
        close_database()
        client.close()


def worker_command() -> None:
    """Consume the events topic (Kafka) through the pipeline, one consumer-group member.

    Needs DRIFTLINE_KAFKA_BOOTSTRAP and DRIFTLINE_KAFKA_ORGANIZATION; monitors and alert
    rules come from the control database (DRIFTLINE_DATABASE_URL), plus
    DRIFTLINE_MONITORS_FILE when set. Start more workers with the same DRIFTLINE_KAFKA_GROUP_ID to
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
