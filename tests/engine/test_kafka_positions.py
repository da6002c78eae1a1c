"""Records the consumer lost are read again: the gap guard, the idle watch, a real worker.

The worker tests run :class:`engine.kafka.worker.KafkaWorker` in this process on the test
broker and drop records the way faust does at the end of a rebalance: the records are
delivered into faust's stream buffers, which are then cleared (``flow_control.clear()``),
while the consumer's position stays past them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from faust.exceptions import ConsumerNotStarted

from engine.kafka import KafkaWorker, WorkerConfig
from engine.kafka.positions import Admission, GapGuard, behind
from engine.sinks import MemorySink
from tests.engine.helpers import event, monitor
from tests.engine.kafka_worker_tools import MINUTE, produce, start_of_run


def records(*offsets: int) -> list[tuple[int, bytes]]:
    return [(offset, b"x") for offset in offsets]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_batch_that_follows_on_from_the_checkpoint_passes_whole() -> None:
    guard = GapGuard()
    assert guard.admit(0, records(10, 11, 12), expected=10) == Admission(records(10, 11, 12))
    # redelivered records below the next offset stay: the runner skips them
    assert guard.admit(0, records(7, 8, 9, 10, 11), expected=10) == Admission(
        records(7, 8, 9, 10, 11)
    )


def test_a_batch_past_the_next_offset_is_set_aside_and_the_partition_rewound() -> None:
    guard = GapGuard()
    assert guard.admit(3, records(50, 51), expected=10) == Admission([], rewind_to=10, dropped=2)


def test_a_gap_inside_a_batch_cuts_it_there() -> None:
    guard = GapGuard()
    admission = guard.admit(0, records(8, 9, 10, 11, 40, 41, 42), expected=10)
    assert admission == Admission(records(8, 9, 10, 11), rewind_to=12, dropped=3)


def test_stale_records_after_a_rewind_are_set_aside_until_the_reread_arrives() -> None:
    clock = Clock()
    guard = GapGuard(clock=clock)
    assert guard.admit(0, records(50, 51), expected=10).rewind_to == 10
    clock.now = 0.01
    assert guard.admit(0, records(52, 53), expected=10).rewind_to == 10  # still buffered
    clock.now = 0.02
    assert guard.admit(0, records(10, 11, 12), expected=10) == Admission(records(10, 11, 12))


def test_a_gap_seen_again_and_again_for_a_second_is_real_and_accepted() -> None:
    clock = Clock()
    guard = GapGuard(confirm_after=3, settle_seconds=1.0, clock=clock)
    for now in (0.0, 0.2, 0.4, 0.9):  # seen often, but not yet for a second
        clock.now = now
        assert guard.admit(0, records(12, 13), expected=10).rewind_to == 10
    clock.now = 1.1
    admission = guard.admit(0, records(12, 13), expected=10)
    assert admission == Admission(records(12, 13), accepted_gap=(10, 12))
    # accepted once: a new gap starts over
    clock.now = 1.2
    assert guard.admit(0, records(20), expected=14).rewind_to == 14


def test_a_different_gap_or_a_forgotten_partition_starts_counting_again() -> None:
    clock = Clock()
    guard = GapGuard(confirm_after=2, settle_seconds=0.0, clock=clock)
    assert guard.admit(0, records(12), expected=10).rewind_to == 10
    assert guard.admit(0, records(13), expected=10).rewind_to == 10  # another gap
    guard.forget(0)
    assert guard.admit(0, records(13), expected=10).rewind_to == 10
    assert guard.admit(0, records(13), expected=10).accepted_gap == (10, 13)


def test_partitions_are_guarded_apart() -> None:
    guard = GapGuard(confirm_after=2, settle_seconds=0.0)
    assert guard.admit(0, records(12), expected=10).rewind_to == 10
    assert guard.admit(1, records(12), expected=10).rewind_to == 10  # not partition 0's
    assert guard.admit(0, records(12), expected=10).accepted_gap == (10, 12)


def test_the_guard_refuses_settings_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="confirm_after"):
        GapGuard(confirm_after=0)
    with pytest.raises(ValueError, match="settle_seconds"):
        GapGuard(settle_seconds=-1)


def test_behind_means_consumed_past_the_next_offset_while_idle() -> None:
    assert behind(20, 10, idle=True)
    assert not behind(10, 10, idle=True)
    assert not behind(20, 10, idle=False)  # records may be on their way
    assert not behind(None, 10, idle=True)


ORGANIZATION = "acme"
DEPLOYMENT = "dep-0"


def _config(bootstrap: str, name: str, folder: Path, **overrides: float) -> WorkerConfig:
    return WorkerConfig(
        bootstrap=bootstrap,
        group_id=f"driftline-positions-{name}",
        organization=ORGANIZATION,
        topic=f"events-{name}",
        dead_letter_topic=f"dead-{name}",
        partitions=1,
        datadir=folder,
        batch_size=50,
        batch_seconds=0.1,
        session_timeout_seconds=6,
        heartbeat_interval_seconds=1,
        **overrides,
    )


def _events(first: int, count: int, t0: int) -> list[tuple[bytes, bytes]]:
    step = MINUTE // 60
    return [
        (DEPLOYMENT.encode(), event(i, t0 + i * step, deployment=DEPLOYMENT))
        for i in range(first, first + count)
    ]


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


def _accepted(caplog: pytest.LogCaptureFixture) -> int:
    marker = "batch "
    return sum(
        orjson.loads(r.getMessage().split(marker, 1)[1])["accepted"]
        for r in caplog.records
        if r.name == "driftline.worker" and r.getMessage().startswith(marker)
    )


async def _with_worker(
    config: WorkerConfig, body: Callable[[KafkaWorker], Awaitable[None]]
) -> None:
    worker = KafkaWorker(config, monitors=[monitor(deployment=DEPLOYMENT)], sink=MemorySink())
    stop = asyncio.Event()
    running = asyncio.ensure_future(worker.run(stop))
    try:
        await _until(lambda: running.done() or _assigned(worker), 90, "no assignment")
        if running.done():
            running.result()  # the worker's error
            raise AssertionError("the worker stopped before it got its partition")
        await body(worker)
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)


async def _drop_in_flight(
    worker: KafkaWorker, bootstrap: str, topic: str, batch: list[tuple[bytes, bytes]]
) -> int:
    """Produce ``batch`` while the worker is held, then clear faust's buffers.

    As faust's recovery does: the consumer's position is past the records, they are gone
    from the buffers (cleared twice, a second apart, so that the rest of a fetch being
    handed over meanwhile goes too). The batch the agent holds (at most ``batch_size``
    records) survives. Answers the last offset produced.
    """
    async with worker._lock:  # handle() waits: the records stay in faust's buffers
        placed = await produce(bootstrap, topic, batch)
        last = placed[-1][1]
        tp = next(iter(t for t in worker.app.consumer.assignment() if t.topic == topic))
        await _until_async(lambda: worker.app.consumer.position(tp), last + 1, 30)
        worker.app.flow_control.clear()
        await asyncio.sleep(1.0)
        worker.app.flow_control.clear()
    return last


async def _until_async(
    read: Callable[[], Awaitable[int | None]], at_least: int, timeout: float
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await read() or -1) < at_least:
        assert asyncio.get_running_loop().time() < deadline, "the consumer did not get there"
        await asyncio.sleep(0.05)


@pytest.mark.kafka
def test_records_dropped_with_nothing_after_them_are_read_again_by_the_idle_watch(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="driftline.worker")
    config = _config(kafka_bootstrap, unique_name, tmp_path, position_check_seconds=0.5)
    t0 = start_of_run()

    async def scenario(worker: KafkaWorker) -> None:
        first = await produce(kafka_bootstrap, config.topic, _events(0, 100, t0))
        await _until(lambda: _stored(worker) == first[-1][1], 60, "first records")
        last = await _drop_in_flight(worker, kafka_bootstrap, config.topic, _events(100, 300, t0))
        await _until(lambda: _stored(worker) == last, 60, "dropped records not read again")

    asyncio.run(_with_worker(config, scenario))
    assert _accepted(caplog) == 400  # every event once
    assert any("reading from" in r.getMessage() for r in caplog.records)  # the watch did it


@pytest.mark.kafka
def test_records_dropped_before_others_arrive_are_read_again_at_the_gap(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="driftline.worker")
    config = _config(kafka_bootstrap, unique_name, tmp_path, position_check_seconds=600)
    t0 = start_of_run()

    async def scenario(worker: KafkaWorker) -> None:
        first = await produce(kafka_bootstrap, config.topic, _events(0, 100, t0))
        await _until(lambda: _stored(worker) == first[-1][1], 60, "first records")
        await _drop_in_flight(worker, kafka_bootstrap, config.topic, _events(100, 300, t0))
        later = await produce(kafka_bootstrap, config.topic, _events(400, 50, t0))
        await _until(lambda: _stored(worker) == later[-1][1], 60, "the gap was not filled")

    asyncio.run(_with_worker(config, scenario))
    assert _accepted(caplog) == 450
    assert any("never reached the worker" in r.getMessage() for r in caplog.records)


def _assigned(worker: KafkaWorker) -> bool:
    try:
        return bool(worker.app.consumer.assignment())
    except ConsumerNotStarted:
        return False


def _stored(worker: KafkaWorker) -> int:
    checkpoint = worker.stored(0)
    return checkpoint.offset if checkpoint is not None else -1
