"""The Kafka worker: the events topic through the pipeline, checkpointed per partition.

Topics (all keyed by deployment id, all with the same partition count):

* the **events** topic carries every event type (predictions, labels, resources; single
  events or batch envelopes) as raw bytes. One topic, so that a deployment's labels land
  on the partition - hence the worker - holding its predictions, where they are joined;
* the **dead-letter** topic receives refused events: the raw payload as the value, the
  reason in headers (:mod:`engine.kafka.deadletters`);
* ``<group id>-snapshots-changelog``, faust's changelog of the **snapshots** table: key =
  partition number, value = :class:`~engine.kafka.partitions.Checkpoint` (the last offset
  and the partition's pipeline snapshot).

Exactly-once effect, per batch of one partition (``stream.take_events``):

1. compare the stored checkpoint with the partition's pipeline; restore it when they
   differ; drop events at or below the checkpoint's offset (redelivered);
2. ingest: windows that close are grouped (all those of the batch, :mod:`engine.writes`)
   and kept in the pipeline as pending, thus in the snapshot;
3. send the batch's dead letters to the dead-letter topic (awaited) and the store's table;
4. write the checkpoint to the changelog and **await its delivery** (acks=all);
5. write the pending groups to the metrics store (one insert per table and group,
   idempotent by group), tell the listener, and store the checkpoint again without them
   (awaited); a group the store refuses stays pending, retried after the next batch;
6. only then does faust ack the batch's events; its commit covers acked offsets only.

Why step 5 follows step 4: a redelivered batch may be cut differently and close the same
windows in other groups, and a window written in two groups would be stored twice (each
group has its own deduplication token). Written only once its group is in a stored
checkpoint, a window is only ever retried in that group: a worker killed after step 5
restores the group from the checkpoint and writes it again, which the store drops.

Why step 4 awaits the record itself: faust's commit (``Consumer._commit_offsets``) does call
``producer.flush()`` before committing offsets, but ``ProducerBuffer.flush`` gives up after
waiting 0.1 s for a send, so a table write still queued at that moment could follow the
commit; and ``take_events`` acks its events once the loop body returns. Awaiting the
changelog record inside the body orders checkpoint before ack before commit.

Before step 1 the batch must follow on from the checkpoint: faust can drop records at the
end of a rebalance and never deliver them again (:mod:`engine.kafka.positions`), so a batch
that starts past the checkpoint's next offset is cut at the gap and its partition sought
back; a watch does the same for a partition consumed past its checkpoint while idle.

A failure anywhere in steps 1-4 stops the process at once (:func:`fail_stop`): unwinding
would let ``take_events`` ack the batch and a later commit skip events whose effect was
never stored. A restarted worker resumes from the last checkpoint.

Monitors can change while the worker runs (:meth:`KafkaWorker.set_monitors`, called by the
control plane's watch in ``driftline worker``): between two batches, each assigned
partition's pipeline is reconfigured (windows of changed monitors closed and written,
the others kept) and its checkpoint stored at the same offset, under the same lock as a
batch. A checkpoint that still holds an older monitor's windows when it is restored (the
change reached its owner too late) has those windows dropped and counted, never restored
into the new monitor (:meth:`engine.pipeline.Pipeline.restore`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import faust
import orjson
from faust.types import TP, EventT

from engine.deadletter import DeadLetter, DeadLetterSink
from engine.kafka.admin import committed_offsets, create_topics, topic_partitions
from engine.kafka.app import TopicSpec, build_app
from engine.kafka.deadletters import CollectingDeadLetters, dead_letter_headers
from engine.kafka.partitions import BatchOutcome, Checkpoint, PartitionRunner
from engine.kafka.positions import GapGuard, behind
from engine.metrics import EngineMetrics
from engine.monitor import Monitor
from engine.pipeline import Pipeline, wall_clock_ms
from engine.sinks import ResultSink, WindowListener
from engine.writes import WritePolicy
from storage.errors import StorageError

__all__ = ["SNAPSHOT_TABLE", "KafkaWorker", "WorkerConfig", "WorkerConfigError", "fail_stop"]

log = logging.getLogger("driftline.worker")

SNAPSHOT_TABLE = "snapshots"
WRITES = WritePolicy(max_windows=256, deferred=True)
"""The windows of a batch are written together, once their checkpoint is stored."""
EXIT_FAIL_STOP = 70  # EX_SOFTWARE


class WorkerConfigError(ValueError):
    """The worker's configuration does not match the cluster (e.g. partition counts)."""


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker consumes and how.

    ``organization`` is the tenant the events topic is bound to: every result and dead
    letter of this worker belongs to it, whatever the events say. ``partitions`` is the
    events topic's partition count (created with it when absent; a mismatch is refused,
    as the snapshot table must have as many partitions). A batch is at most ``batch_size``
    events or whatever arrived within ``batch_seconds``. Every ``position_check_seconds``
    the partitions without a batch for that long are checked for lost records
    (:meth:`KafkaWorker.realign_idle`).
    """

    bootstrap: str
    group_id: str
    organization: str
    topic: str
    dead_letter_topic: str
    partitions: int
    datadir: Path
    batch_size: int = 1000
    batch_seconds: float = 0.5
    commit_interval_seconds: float = 2.8
    session_timeout_seconds: float = 30.0
    heartbeat_interval_seconds: float = 3.0
    position_check_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.organization:
            raise WorkerConfigError("a worker needs the organization its topic is bound to")
        if self.topic == self.dead_letter_topic:
            raise WorkerConfigError("the events and dead-letter topics must differ")
        if self.batch_size < 1 or self.batch_seconds <= 0:
            raise WorkerConfigError("batch_size and batch_seconds must be positive")
        if self.position_check_seconds <= 0:
            raise WorkerConfigError("position_check_seconds must be positive")


def fail_stop(error: BaseException) -> NoReturn:
    """Log ``error`` and end the process now, without unwinding (no ack, no commit)."""
    log.critical("stopping: a batch could not be made durable", exc_info=error)
    logging.shutdown()
    os._exit(EXIT_FAIL_STOP)


class KafkaWorker:
    """A faust app whose one agent feeds the pipeline (module docstring)."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        monitors: Sequence[Monitor],
        sink: ResultSink,
        store_dead_letters: DeadLetterSink | None = None,
        listener: WindowListener | None = None,
        metrics: EngineMetrics | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        on_fatal: Callable[[BaseException], NoReturn] = fail_stop,
    ) -> None:
        self.config = config
        self.metrics = metrics or EngineMetrics()
        self._collected = CollectingDeadLetters()
        self._store_dead_letters = store_dead_letters
        self._on_fatal = on_fatal
        self._monitors = list(monitors)
        self._lock = asyncio.Lock()  # one batch or one monitor change at a time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._applying: set[asyncio.Future[None]] = set()
        self._guard = GapGuard()
        self._starts: dict[int, int] = {}  # first offset of partitions with no checkpoint
        self._last_batch: dict[int, float] = {}  # when each partition's last batch ended
        self._suspects: dict[int, tuple[int, int]] = {}  # (position, expected) seen idle

        def new_pipeline() -> Pipeline:
            return Pipeline(
                organization=config.organization,
                monitors=self._monitors,
                sink=sink,
                dead_letters=self._collected,
                listener=listener,
                metrics=self.metrics,
                clock=clock,
                writes=WRITES,
            )

        self._runner = PartitionRunner(new_pipeline, topic=config.topic)
        settings: dict[str, Any] = {
            "broker_commit_interval": config.commit_interval_seconds,
            "broker_session_timeout": config.session_timeout_seconds,
            "broker_heartbeat_interval": config.heartbeat_interval_seconds,
            "consumer_auto_offset_reset": "earliest",
        }
        built = build_app(
            bootstrap=config.bootstrap,
            app_id=config.group_id,
            topics=[
                TopicSpec(config.topic, config.partitions),
                TopicSpec(config.dead_letter_topic, config.partitions),
            ],
            datadir=config.datadir,
            settings=settings,
        )
        self.app = built.app
        self._dead_topic = built.topics[config.dead_letter_topic]
        self._table = self.app.Table(
            SNAPSHOT_TABLE,
            partitions=config.partitions,
            key_type=int,
            value_type=bytes,
            help="Per partition: the last offset ingested and the pipeline snapshot.",
        )

        async def ingest(stream: faust.StreamT[bytes]) -> None:
            # take_events is on faust's Stream, not on the StreamT protocol.
            batches = cast("faust.Stream[bytes]", stream).take_events(
                config.batch_size, config.batch_seconds
            )
            async for events in batches:
                await self.handle(events)

        self.app.agent(built.topics[config.topic], name="driftline-ingest")(ingest)

    async def ensure_topics(self) -> None:
        """Create the events and dead-letter topics when absent; refuse other partitionings."""
        config = self.config
        specs = [
            TopicSpec(config.topic, config.partitions),
            TopicSpec(config.dead_letter_topic, config.partitions),
        ]
        await create_topics(config.bootstrap, specs)
        found = await topic_partitions(config.bootstrap, config.topic)
        if found != config.partitions:
            raise WorkerConfigError(
                f"topic {config.topic!r} has {found} partitions, the worker is configured "
                f"for {config.partitions}: they must agree (the snapshot table follows them)"
            )

    @property
    def monitors(self) -> list[Monitor]:
        """The monitors the worker runs now (a new partition pipeline starts with them)."""
        return list(self._monitors)

    def set_monitors(self, monitors: Sequence[Monitor]) -> None:
        """Run ``monitors`` from now on; callable from any thread.

        Pipelines built from now on use them at once. The running worker then gives them
        to every partition it holds, between two batches (:meth:`apply_monitors`).
        """
        self._monitors = list(monitors)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_apply)

    def _start_apply(self) -> None:
        task = asyncio.ensure_future(self.apply_monitors())
        self._applying.add(task)  # a task nobody references may be collected mid-way
        task.add_done_callback(self._applying.discard)

    async def apply_monitors(self) -> None:
        """Reconfigure every assigned partition's pipeline and store its checkpoint.

        Windows of changed monitors are closed and written (:meth:`Pipeline.reconfigure`);
        the checkpoint keeps the partition's offset and is awaited like a batch's, so a
        worker restarted or a partition moved afterwards resumes from the new state.
        Partitions no longer assigned are forgotten, never written.
        """
        async with self._lock:
            try:
                assigned = self.app.consumer.assignment()
                for partition in self._runner.partitions():
                    if TP(self.config.topic, partition) not in assigned:
                        self._forget(partition)
                        continue
                    checkpoint = self._runner.reconfigure(partition, self._monitors)
                    await self._send_dead_letters(self._collected.drain())
                    await self._store(partition, checkpoint)
                    await self._write_pending(partition)
                    log.info("partition %d now runs %d monitors", partition, len(self._monitors))
            except BaseException as error:  # fail-stop, as for a batch
                self._on_fatal(error)

    async def run(self, stop: asyncio.Event) -> None:
        """Create the topics, start consuming, and stop cleanly once ``stop`` is set."""
        await self.ensure_topics()
        await self.app.start()
        self._loop = asyncio.get_running_loop()  # from now on, monitor changes are applied
        watch = asyncio.ensure_future(self._watch_positions())
        try:
            waiters = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self.app.wait_until_stopped()),
            }
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            watch.cancel()
            self._loop = None
            await self.app.stop()
        if self.app.crash_reason is not None:
            raise RuntimeError("the faust app crashed") from self.app.crash_reason

    async def handle(self, events: Sequence[EventT[bytes]]) -> None:
        """Process one batch from the stream (possibly several partitions), durably."""
        async with self._lock:
            try:
                assigned = self.app.consumer.assignment()
                for partition, records in _by_partition(events):
                    if TP(self.config.topic, partition) not in assigned:
                        # Revoked while buffered: the new owner resumes from the checkpoint.
                        self._forget(partition)
                        log.info(
                            "partition %d revoked: %d buffered events left",
                            partition,
                            len(records),
                        )
                        continue
                    admitted = await self._admit(partition, records)
                    if admitted:
                        outcome = await self._process(partition, admitted)
                        log.info("batch %s", _describe(outcome))
                    self._last_batch[partition] = time.monotonic()
            except BaseException as error:  # fail-stop, see the module docstring
                self._on_fatal(error)

    def stored(self, partition: int) -> Checkpoint | None:
        """The checkpoint the snapshot table holds for ``partition``."""
        blob = self._table.data.get(partition)
        return Checkpoint.decode(blob) if blob is not None else None

    async def _process(self, partition: int, records: list[tuple[int, bytes]]) -> BatchOutcome:
        outcome = self._runner.process(partition, records, self.stored(partition))
        await self._send_dead_letters(self._collected.drain())
        if outcome.checkpoint is not None:
            await self._store(partition, outcome.checkpoint)
        await self._write_pending(partition)
        return outcome

    async def _write_pending(self, partition: int) -> None:
        """Step 5 of the module docstring: the stored checkpoint's groups, then it again."""
        checkpoint = self._runner.write_pending(partition)
        if checkpoint is not None:
            await self._store(partition, checkpoint)

    async def _expected(self, partition: int) -> int:
        """The next offset the worker must ingest from ``partition``.

        The checkpoint's offset + 1; with no checkpoint, the group's committed offset, else
        the partition's first offset (what ``auto_offset_reset = earliest`` reads).
        """
        blob = self._table.data.get(partition)
        if blob is not None:
            return Checkpoint.offset_of(blob) + 1
        start = self._starts.get(partition)
        if start is None:
            config = self.config
            committed = await committed_offsets(
                config.bootstrap, config.group_id, config.topic, [partition]
            )
            start = committed.get(partition)
            if start is None:
                start = await self._log_start(partition)
            self._starts[partition] = start
        return start

    async def _log_start(self, partition: int) -> int:
        """The partition's first offset still in the log (retention moves it on)."""
        tp = TP(self.config.topic, partition)
        return (await self.app.consumer.earliest_offsets(tp))[tp]

    async def _admit(
        self, partition: int, records: list[tuple[int, bytes]]
    ) -> list[tuple[int, bytes]]:
        """The records of a batch that follow on from the checkpoint (:class:`GapGuard`).

        At a gap the partition is sought back to the first missing offset, unless the
        log no longer holds it (retention): then the gap is accepted from the log start.
        """
        expected = await self._expected(partition)
        admission = self._guard.admit(partition, records, expected)
        if admission.rewind_to is not None:
            start = await self._log_start(partition)
            if start > admission.rewind_to:
                log.warning(
                    "partition %d: offsets %d to %d were deleted before being read "
                    "(retention); going on from %d",
                    partition,
                    admission.rewind_to,
                    start - 1,
                    start,
                )
                admission = self._guard.admit(partition, records, start)
        if admission.accepted_gap is not None:
            missing, present = admission.accepted_gap
            log.warning(
                "partition %d: offsets %d to %d do not exist (transaction markers or "
                "compaction); going on from %d",
                partition,
                missing,
                present - 1,
                present,
            )
        if admission.rewind_to is not None:
            log.warning(
                "partition %d: records from offset %d never reached the worker (%d after "
                "the gap set aside); reading them again",
                partition,
                admission.rewind_to,
                admission.dropped,
            )
            await self._seek(partition, admission.rewind_to)
        return admission.records

    async def _seek(self, partition: int, offset: int) -> None:
        await self.app.consumer.seek_wait({TP(self.config.topic, partition): offset})

    async def _watch_positions(self) -> None:
        """Run :meth:`realign_idle` every ``position_check_seconds``, between batches."""
        period = self.config.position_check_seconds
        while True:
            await asyncio.sleep(period)
            if self.app.rebalancing:
                continue
            async with self._lock:
                try:
                    await self.realign_idle(period)
                except Exception:  # a broker hiccup: the next round tries again
                    log.warning("checking the consumer's positions failed", exc_info=True)

    async def realign_idle(self, idle_seconds: float) -> list[int]:
        """Seek back every assigned partition that lost records; answers their numbers.

        A partition is suspect when no batch of it finished for ``idle_seconds`` and its
        consumer position is past the next offset to ingest; it is sought back when it is
        found so again, unchanged, at the next call: records consumed and never delivered
        (:mod:`engine.kafka.positions`), not records queued behind a slow batch.
        """
        now = time.monotonic()
        realigned: list[int] = []
        suspects: dict[int, tuple[int, int]] = {}
        for tp in sorted(self.app.consumer.assignment()):
            if tp.topic != self.config.topic:
                continue
            idle = now - self._last_batch.get(tp.partition, 0.0) >= idle_seconds
            if not idle:
                continue
            expected = await self._expected(tp.partition)
            position = await asyncio.wait_for(self.app.consumer.position(tp), timeout=10)
            if position is None or not behind(position, expected, idle=idle):
                continue
            if self._suspects.get(tp.partition) != (position, expected):
                suspects[tp.partition] = (position, expected)
                continue
            log.warning(
                "partition %d: consumed to offset %d but ingested up to %d only; "
                "reading from %d again",
                tp.partition,
                position,
                expected - 1,
                expected,
            )
            await self._seek(tp.partition, expected)
            realigned.append(tp.partition)
        self._suspects = suspects
        return realigned

    def _forget(self, partition: int) -> None:
        self._runner.forget(partition)
        self._guard.forget(partition)
        self._starts.pop(partition, None)
        self._last_batch.pop(partition, None)
        self._suspects.pop(partition, None)

    async def _store(self, partition: int, checkpoint: Checkpoint) -> None:
        blob = checkpoint.encode()
        self._table.data[partition] = blob
        await self._table.send_changelog(partition, partition, blob)

    async def _send_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        if self._store_dead_letters is not None:
            try:
                self._store_dead_letters.write(letters)
            except StorageError as error:
                # The topic below keeps them durably; the table is a convenience copy.
                log.warning("dead letters not written to the metrics store: %s", error)
        sent = [
            await self._dead_topic.send(
                key=letter.deployment.encode() if letter.deployment else None,
                value=letter.payload,
                headers=dead_letter_headers(letter),
                force=True,  # now, not attached to the current event's commit
            )
            for letter in letters
        ]
        await asyncio.gather(*sent)


def _by_partition(events: Sequence[EventT[bytes]]) -> list[tuple[int, list[tuple[int, bytes]]]]:
    """(partition, [(offset, raw value)]) in offset order, partitions in ascending order."""
    grouped: dict[int, list[tuple[int, bytes]]] = {}
    for event in events:
        message = event.message
        value = message.value if isinstance(message.value, bytes) else b""
        grouped.setdefault(message.partition, []).append((message.offset, value))
    return [(p, sorted(grouped[p], key=lambda r: r[0])) for p in sorted(grouped)]


def _describe(outcome: BatchOutcome) -> str:
    report = outcome.report
    return orjson.dumps(
        {
            "partition": outcome.partition,
            "first": outcome.first_offset,
            "last": outcome.last_offset,
            "skipped": outcome.skipped,
            "accepted": report.accepted if report else 0,
            "rejected": report.rejected if report else 0,
            "closed": len(report.closed) if report else 0,
        }
    ).decode()
