"""``driftline worker``: consume the events topic through the pipeline (engine/kafka/).

Everything comes from the settings (``DRIFTLINE_KAFKA_*``, ``DRIFTLINE_MONITORS_FILE``, the
metrics store URL). Results and dead letters go to the metrics store; with the embedded
chDB default each worker process needs its own ``DRIFTLINE_DATA_DIR`` (a chDB folder
serves one process), so several workers normally share a ClickHouse server instead.
SIGTERM or SIGINT stops the worker cleanly: the batch in progress is finished and
checkpointed, then acked offsets are committed. For a worker that seems stuck, SIGUSR1
writes every thread's stack to its standard error (even when the event loop is blocked)
and SIGUSR2 logs the stack of every asyncio task (when the loop still runs).

Monitors come from the control database and follow every change made over the API while
the worker runs (Redis pub/sub within about a second, else the poll every
``DRIFTLINE_MONITOR_POLL_SECONDS``): each held partition's pipeline is reconfigured
between two batches (:meth:`engine.kafka.worker.KafkaWorker.set_monitors`).
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import signal
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from driftline.settings import Settings, load_settings

if TYPE_CHECKING:
    from control_api.monitors.changes import MonitorWatch
    from control_api.monitors.source import MonitorService
    from engine.monitor import Monitor
    from engine.sinks import WindowListener
    from storage.clickhouse.client import MetricsClient

_log = logging.getLogger("driftline.worker")


def _require(settings: Settings) -> list[str]:
    missing = []
    if not settings.kafka_bootstrap:
        missing.append("DRIFTLINE_KAFKA_BOOTSTRAP")
    if not settings.kafka_organization:
        missing.append("DRIFTLINE_KAFKA_ORGANIZATION")
    return missing


@dataclass
class Wiring:
    """What a worker takes from the control plane (:func:`control_plane_wiring`).

    ``monitors`` are the organization's at start; :meth:`follow` keeps them current;
    :meth:`close` stops following and closes the database and Redis clients.
    """

    organization: str
    monitors: list[Monitor]
    listener: WindowListener | None
    service: MonitorService | None = None
    watch_for: Callable[[Callable[[str], None]], MonitorWatch | None] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def follow(self, apply: Callable[[list[Monitor]], None]) -> MonitorWatch | None:
        """Call ``apply(monitors)`` with the organization's monitors after every change.

        Changes arrive over Redis pub/sub within about a second, or by the poll every
        ``DRIFTLINE_MONITOR_POLL_SECONDS``; answers the running watch, or ``None`` when
        nothing follows (a worker configured by file alone, or neither Redis nor a poll).
        """
        service, watch_for = self.service, self.watch_for
        if service is None or watch_for is None:
            return None

        def changed(organization: str) -> None:
            monitors = service.monitors_for(organization)
            _log.info(
                "monitors changed: now running %d (%s)",
                len(monitors),
                ", ".join(sorted(m.deployment for m in monitors)) or "none",
            )
            apply(monitors)

        watch = watch_for(changed)
        if watch is not None:
            watch.start()
            self.closers.insert(0, watch.stop)
        return watch

    def close(self) -> None:
        """Stop following, then close the clients."""
        for close in self.closers:
            close()
        self.closers.clear()


def control_plane_wiring(settings: Settings, client: MetricsClient) -> Wiring:
    """The worker's monitors and alert evaluator, from the control database.

    Monitors configured over the API (``/v1/monitors``) for the topic's organization, read
    through the monitor service (the one the embedded engine uses, with the Redis cache
    when ``DRIFTLINE_REDIS_URL`` is set), plus those of ``DRIFTLINE_MONITORS_FILE`` when it
    is set; the listener evaluates that organization's alert rules at every closed window
    and writes the notification outbox, which the API delivers.

    A control database that was never migrated (a worker configured by file alone) gives
    the file's monitors, no alert evaluation and nothing to follow, with a warning.
    """
    from prometheus_client import CollectorRegistry
    from sqlalchemy import inspect

    from control_api.cache import CacheMetrics, build_cache
    from control_api.monitors.changes import MonitorWatch
    from control_api.monitors.source import MonitorService
    from control_api.references.store import object_store
    from control_api.runtime import alert_listener
    from engine.embedded import FileMonitors, NoMonitors
    from storage.db import create_db_engine, session_factory

    organization = settings.kafka_organization
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    fallback = FileMonitors(settings.monitors_file) if settings.monitors_file else NoMonitors()
    if not inspect(engine).has_table("monitors"):
        _log.warning(
            "the control database is not migrated: monitors from DRIFTLINE_MONITORS_FILE only "
            "and no alert evaluation (run `driftline migrate` to use the control plane)"
        )
        return Wiring(
            organization, fallback.monitors_for(organization), None, closers=[engine.dispose]
        )
    metrics = CacheMetrics(CollectorRegistry())  # the worker serves no /metrics yet
    cache = build_cache(settings, metrics)
    service = MonitorService(sessions, lambda: object_store(settings), cache, fallback)

    def watch_for(on_change: Callable[[str], None]) -> MonitorWatch | None:
        return MonitorWatch.from_settings(
            settings,
            service=service,
            organizations=lambda: [organization],
            on_change=on_change,
            metrics=metrics,
        )

    return Wiring(
        organization,
        service.monitors_for(organization),
        alert_listener(sessions, links={})(organization, client),
        service=service,
        watch_for=watch_for,
        closers=[cache.close, engine.dispose],
    )


def await_chain(task: asyncio.Task[object]) -> list[str]:
    """Where ``task`` waits: each coroutine's file:line, innermost last, then what it awaits.

    (``Task.get_stack`` shows a suspended coroutine's outermost frame only.) Awaitables
    that hide what they drive (``coro.__await__()`` wrappers, ``agen.asend()``) are looked
    through with :func:`gc.get_referents`.
    """
    lines: list[str] = []
    awaited: object = task.get_coro()
    while awaited is not None and len(lines) < 64:
        frame = _frame_of(awaited)
        if frame is None:
            inner = next((o for o in gc.get_referents(awaited) if _frame_of(o) is not None), None)
            if inner is None:
                lines.append(f"awaiting {awaited!r}"[:300])
                break
            awaited, frame = inner, _frame_of(inner)
        assert frame is not None
        code = frame.f_code
        lines.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaited = next(
            (
                getattr(awaited, name)
                for name in ("cr_await", "gi_yieldfrom", "ag_await")
                if getattr(awaited, name, None) is not None
            ),
            None,
        )
    return lines


def _frame_of(awaitable: object) -> types.FrameType | None:
    """The suspended frame of a coroutine, generator or async generator, else ``None``."""
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(awaitable, name, None)
        if isinstance(frame, types.FrameType):
            return frame
    return None


def log_tasks() -> None:
    """Log where every asyncio task of the running loop waits (the SIGUSR2 handler)."""
    tasks = asyncio.all_tasks()
    _log.warning("%d asyncio tasks (SIGUSR2)", len(tasks))
    for task in sorted(tasks, key=lambda t: t.get_name()):
        chain = "\n  ".join(await_chain(task))
        _log.warning("task %s\n  %s", task.get_name(), chain)


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
    wiring = control_plane_wiring(settings, client)
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
            monitors=wiring.monitors,
            sink=MetricsStoreSink(client, organization),
            store_dead_letters=MetricsStoreDeadLetters(client, organization),
            listener=wiring.listener,
        )
        wiring.follow(worker.set_monitors)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGUSR2, log_tasks)
        await worker.run(stop)
    finally:
        wiring.close()
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
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    asyncio.run(_serve(settings))


if __name__ == "__main__":  # python -m driftline.worker_command
    typer.run(worker_command)
