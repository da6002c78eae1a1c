"""The Kafka worker: checkpoints and offset skipping in-process, then real workers on the broker.

The broker tests run ``driftline worker`` as child processes (so SIGKILL is real), each with
its own data folder and therefore its own chDB metrics store. Their rows are compared with a
reference: the same events, per partition in offset order, through in-process pipelines
writing to a metrics store of this process. A window's rows do not depend on how events
are batched (event-time windows, per-partition order), so equal rows mean every window was
counted once, with every event once.

Results written by two concurrent workers (the rebalance test) land in two stores; their
union must equal the reference with no row in both, i.e. no window written twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from engine.deadletter import MemoryDeadLetters
from engine.events import Reason
from engine.kafka import (
    Checkpoint,
    CheckpointError,
    PartitionRunner,
    TopicSpec,
    WorkerConfig,
    WorkerConfigError,
    create_topics,
)
from engine.kafka.deadletters import CollectingDeadLetters, dead_letter_headers
from engine.monitor import load_monitors
from engine.pipeline import Pipeline
from engine.sinks import MemorySink, MetricsStoreDeadLetters, MetricsStoreSink
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from tests.engine.helpers import NOW, T0, event, monitor
from tests.engine.kafka_worker_tools import (
    MINUTE,
    WorkerProcess,
    dump,
    dump_folder,
    ends,
    first_difference,
    make_events,
    pick_deployments,
    produce,
    start_of_run,
    wait_until,
    write_monitors,
)

PARTITIONS = 4
ORGANIZATION = "acme"

# -- in-process: checkpoints and the partition runner --------------------------------------


def test_a_checkpoint_round_trips_and_refuses_other_bytes() -> None:
    checkpoint = Checkpoint(offset=41, snapshot=b"state")
    assert Checkpoint.decode(checkpoint.encode()) == checkpoint
    assert Checkpoint.offset_of(checkpoint.encode()) == 41
    with pytest.raises(CheckpointError):
        Checkpoint.decode(b"nope")
    with pytest.raises(CheckpointError):
        Checkpoint.offset_of(b"DLC")


def _runner(sink: MemorySink) -> PartitionRunner:
    def new() -> Pipeline:
        return Pipeline(
            organization="org",
            monitors=[monitor(min_samples=10)],
            sink=sink,
            dead_letters=MemoryDeadLetters(),
            clock=lambda: NOW,
        )

    return PartitionRunner(new, topic="events")


def _records(first: int, count: int) -> list[tuple[int, bytes]]:
    """Offsets first.. with events 10 s apart: six per one-minute window."""
    return [(o, event(o, T0 + o * 10_000)) for o in range(first, first + count)]


def test_redelivered_events_are_skipped_after_a_restore() -> None:
    whole = MemorySink()
    uninterrupted = _runner(whole)
    kept: Checkpoint | None = None
    for start in range(0, 60, 12):
        kept = uninterrupted.process(0, _records(start, 12), kept).checkpoint
    expected = [(r.key, r.events) for r in whole.results]

    sink = MemorySink()
    first = _runner(sink)
    stored: Checkpoint | None = None
    for start in range(0, 30, 12):  # offsets 0..35 in three batches, then a crash
        stored = first.process(0, _records(start, 12), stored).checkpoint
    assert stored is not None
    assert stored.offset == 35
    restarted = _runner(sink)
    # Offsets were committed up to 23 only: 24..35 come again and must not count twice.
    outcome = restarted.process(0, _records(24, 18), stored)
    assert outcome.skipped == 12
    assert outcome.checkpoint is not None
    assert outcome.checkpoint.offset == 41
    stored = outcome.checkpoint
    restarted.process(0, _records(42, 18), stored)
    assert [(r.key, r.events) for r in sink.results] == expected
    assert len(expected) == 9
    assert all(events == 6 for _, events in expected)


def test_a_batch_of_old_events_stores_nothing_new() -> None:
    runner = _runner(MemorySink())
    stored = runner.process(0, _records(0, 5), None).checkpoint
    again = runner.process(0, _records(0, 5), stored)
    assert (again.skipped, again.checkpoint, again.report) == (5, None, None)
    assert runner.offset(0) == 4


def test_a_partition_advanced_elsewhere_is_restored_from_the_store() -> None:
    sink = MemorySink()
    mine, theirs = _runner(sink), _runner(sink)
    stored = mine.process(0, _records(0, 12), None).checkpoint
    stored = theirs.process(0, _records(12, 12), stored).checkpoint  # a rebalance moved it
    # Back to the first worker: its own state (offset 11) is stale, the store's wins.
    outcome = mine.process(0, _records(24, 12), stored)
    assert outcome.skipped == 0
    [last] = [r for r in sink.results if r.start_ms == T0 + 3 * MINUTE]
    assert last.events == 6
    assert sorted(r.start_ms for r in sink.results) == [T0 + m * MINUTE for m in range(5)]


def test_partitions_are_independent() -> None:
    sink = MemorySink()
    runner = _runner(sink)
    a = runner.process(0, _records(0, 12), None).checkpoint
    runner.process(1, _records(0, 6), None)
    assert runner.offset(1) == 5
    runner.forget(1)
    assert runner.offset(1) is None
    assert runner.process(0, _records(12, 1), a).skipped == 0  # 0 kept its state


def test_worker_config_refuses_what_cannot_work(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "bootstrap": "127.0.0.1:1",
        "group_id": "g",
        "organization": "acme",
        "topic": "events",
        "dead_letter_topic": "dead",
        "partitions": 4,
        "datadir": tmp_path,
    }
    WorkerConfig(**base)
    with pytest.raises(WorkerConfigError, match="organization"):
        WorkerConfig(**(base | {"organization": ""}))
    with pytest.raises(WorkerConfigError, match="differ"):
        WorkerConfig(**(base | {"dead_letter_topic": "events"}))
    with pytest.raises(WorkerConfigError, match="positive"):
        WorkerConfig(**(base | {"batch_size": 0}))


def test_dead_letters_are_collected_then_drained_with_their_reason() -> None:
    p = Pipeline(
        organization="org",
        monitors=[monitor()],
        sink=MemorySink(),
        dead_letters=(collected := CollectingDeadLetters()),
        clock=lambda: NOW,
    )
    p.ingest([b"{", event(1, T0)], source="kafka:events/0")
    [letter] = collected.drain()
    assert collected.drain() == []
    headers = dict(dead_letter_headers(letter))
    assert headers["reason"] == b"malformed"
    assert headers["source"] == b"kafka:events/0"


# -- real broker, real worker processes -----------------------------------------------------


class Scenario:
    """Topics, monitors and the environment of the workers of one test."""

    def __init__(self, bootstrap: str, name: str, folder: Path, deployments: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topic = f"events-{name}"
        self.dead_topic = f"dead-{name}"
        self.folder = folder
        self.deployments = deployments
        self.monitors = write_monitors(folder, deployments)
        self.env = {
            "DRIFTLINE_KAFKA_BOOTSTRAP": bootstrap,
            "DRIFTLINE_KAFKA_ORGANIZATION": ORGANIZATION,
            "DRIFTLINE_KAFKA_EVENTS_TOPIC": self.topic,
            "DRIFTLINE_KAFKA_DEAD_LETTER_TOPIC": self.dead_topic,
            "DRIFTLINE_KAFKA_GROUP_ID": f"driftline-test-{name}",
            "DRIFTLINE_KAFKA_PARTITIONS": str(PARTITIONS),
            "DRIFTLINE_MONITORS_FILE": str(self.monitors),
            "DRIFTLINE_KAFKA_BATCH_SIZE": "200",
            "DRIFTLINE_KAFKA_BATCH_SECONDS": "0.2",
            # a killed worker's partitions move on after 6 s (the broker's minimum)
            "DRIFTLINE_KAFKA_SESSION_TIMEOUT_SECONDS": "6",
            "DRIFTLINE_KAFKA_HEARTBEAT_INTERVAL_SECONDS": "1",
        }
        asyncio.run(
            create_topics(
                bootstrap,
                [TopicSpec(self.topic, PARTITIONS), TopicSpec(self.dead_topic, PARTITIONS)],
            )
        )

    def worker(self, name: str, **env: str) -> WorkerProcess:
        return WorkerProcess.start(self.folder / name, self.env | env)

    def produce(self, messages: list[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
        return asyncio.run(produce(self.bootstrap, self.topic, messages))


def reference(
    chdb_url: str,
    scenario: Scenario,
    messages: list[tuple[bytes, bytes]],
    placed: list[tuple[int, int]],
) -> dict[str, list[Any]]:
    """The rows of the same events through in-process pipelines, one per partition."""
    monitors = load_monitors(scenario.monitors)
    per_partition: dict[int, list[tuple[int, bytes]]] = {}
    for (_, value), (partition, offset) in zip(messages, placed, strict=True):
        per_partition.setdefault(partition, []).append((offset, value))
    with connect(chdb_url) as client:
        migrate(client, MigrationParams(ttl_days=400))
        for partition, records in sorted(per_partition.items()):
            pipeline = Pipeline(
                organization=ORGANIZATION,
                monitors=monitors,
                sink=MetricsStoreSink(client, ORGANIZATION),
                dead_letters=MetricsStoreDeadLetters(client, ORGANIZATION),
            )
            pipeline.ingest(
                [value for _, value in sorted(records)],
                partition=partition,
                source=f"kafka:{scenario.topic}/{partition}",
            )
        return dump(client)


async def _dead_letters(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(20):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


@pytest.mark.kafka
def test_events_flow_through_a_worker_into_the_metrics_store_with_drift_and_dead_letters(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, chdb_url: str
) -> None:
    deployments = pick_deployments(6, PARTITIONS)
    scenario = Scenario(kafka_bootstrap, unique_name, tmp_path, deployments)
    t0 = start_of_run()
    messages = make_events(
        deployments, t0=t0, windows=6, per_window=150, drifting=deployments[:2], drift_from=3
    )
    ghost = orjson.dumps({"event_id": "g", "ts": t0, "deployment": "ghost", "features": {}})
    messages[10:10] = [(deployments[0].encode(), b"not json"), (b"ghost", ghost)]
    worker = scenario.worker("w")
    placed = scenario.produce(messages)
    wait_until([worker], ends(placed))
    assert worker.stop() == 0
    rows = dump_folder(tmp_path / "w")

    assert first_difference(rows, reference(chdb_url, scenario, messages, placed)) is None
    aggregates = rows["window_aggregates"]
    assert Counter(row[1] for row in aggregates) == dict.fromkeys(deployments, 5)  # 6th open
    assert {row[0] for table in rows.values() for row in table} == {ORGANIZATION}
    drifted = {(row[1], row[2]) for row in rows["drift_results"] if row[4] == "x" and row[9]}
    minutes = {row[2] for row in aggregates}
    late = sorted(minutes)[3:]
    assert drifted == {(d, m) for d in deployments[:2] for m in late}
    reasons = sorted(row[2].split(":")[0] for row in rows["dead_letters"])
    assert reasons == [Reason.MALFORMED, Reason.UNKNOWN_DEPLOYMENT]
    letters = asyncio.run(_dead_letters(kafka_bootstrap, scenario.dead_topic, 2))
    by_payload = {r.value: dict(r.headers) for r in letters}
    assert by_payload[b"not json"]["reason"] == b"malformed"
    assert by_payload[ghost]["reason"] == b"unknown_deployment"
    assert by_payload[ghost]["source"].startswith(f"kafka:{scenario.topic}/".encode())


@pytest.mark.kafka
def test_a_worker_killed_mid_window_and_restarted_loses_nothing_and_writes_nothing_twice(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, chdb_url: str
) -> None:
    deployments = pick_deployments(6, PARTITIONS)
    scenario = Scenario(kafka_bootstrap, unique_name, tmp_path, deployments)
    messages = make_events(deployments, t0=start_of_run(), windows=6, per_window=60)
    middle = len(messages) * 7 // 12  # halfway through the fourth window
    # No periodic commit before the kill: (almost) every event comes again, to be skipped.
    first = scenario.worker("w", DRIFTLINE_KAFKA_COMMIT_INTERVAL_SECONDS="600")
    placed = scenario.produce(messages[:middle])
    wait_until([first], ends(placed))
    first.kill()
    placed += scenario.produce(messages[middle:])
    second = scenario.worker("w")  # same data folder: the same metrics store
    wait_until([second], ends(placed))
    assert second.stop() == 0

    rows = dump_folder(tmp_path / "w")
    assert first_difference(rows, reference(chdb_url, scenario, messages, placed)) is None
    assert len(rows["window_aggregates"]) == 5 * len(deployments)
    # Nothing was committed, so the second worker started below its checkpoint: the
    # redelivered events were skipped, or faust's recovery dropped them on delivery
    # (engine/kafka/positions.py) and the watch read on from the checkpoint; either way
    # every event counted exactly once.
    skipped = sum(b["skipped"] for b in second.batches())
    assert skipped <= middle
    assert skipped > 0 or "but ingested up to" in second.log()
    assert sum(b["accepted"] for b in first.batches() + second.batches()) == len(messages)


@pytest.mark.kafka
def test_a_second_worker_joining_mid_stream_takes_partitions_without_loss(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, chdb_url: str
) -> None:
    deployments = pick_deployments(8, PARTITIONS)
    scenario = Scenario(kafka_bootstrap, unique_name, tmp_path, deployments)
    messages = make_events(deployments, t0=start_of_run(), windows=6, per_window=40)
    half = len(messages) // 2
    a = scenario.worker("a")
    placed = scenario.produce(messages[:half])
    wait_until([a], ends(placed))
    b = scenario.worker("b")
    deadline = time.monotonic() + 90  # a faust start and rebalance on a loaded 2-core machine
    while "Setting newly assigned partitions" not in b.log():
        assert time.monotonic() < deadline, b.log()[-3000:]
        time.sleep(0.2)
    for chunk in range(half, len(messages), 240):  # keep events flowing through the handover
        placed += scenario.produce(messages[chunk : chunk + 240])
    wait_until([a, b], ends(placed))
    assert a.stop() == 0
    assert b.stop() == 0

    rows_a, rows_b = dump_folder(tmp_path / "a"), dump_folder(tmp_path / "b")
    expected = reference(chdb_url, scenario, messages, placed)
    union = {table: sorted(rows_a[table] + rows_b[table]) for table in expected}
    assert first_difference(union, {t: sorted(rows) for t, rows in expected.items()}) is None
    assert rows_a["window_aggregates"]  # both workers did work
    assert rows_b["window_aggregates"]


@pytest.mark.kafka
def test_a_running_worker_tells_its_thread_and_task_stacks_and_keeps_running(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    deployments = pick_deployments(2, PARTITIONS)
    scenario = Scenario(kafka_bootstrap, unique_name, tmp_path, deployments)
    worker = scenario.worker("w")
    deadline = time.monotonic() + 90
    while "Worker ready" not in worker.log():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)

    told = worker.diagnose()

    assert "ready: 20" in told
    assert "[stacks]" in told
    assert "Current thread" in told or "Thread 0x" in told  # faulthandler, SIGUSR1
    assert "asyncio tasks (SIGUSR2)" in told
    assert "in ingest" in told  # the agent's task, down to where it waits
    placed = scenario.produce(make_events(deployments, t0=start_of_run(), windows=2, per_window=5))
    wait_until([worker], ends(placed))  # still consuming after the signals
    assert worker.stop() == 0
