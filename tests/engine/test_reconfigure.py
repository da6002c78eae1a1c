"""Monitors that change while the engine runs: what happens to open windows.

A pipeline given new monitors (:meth:`Pipeline.reconfigure`) keeps the windows of unchanged
monitors, closes and writes those of changed or removed ones under a key of their own, and
starts new ones; a snapshot restored under a changed monitor drops (and counts) the
windows it cannot continue instead of failing; the Kafka partition runner stores the new
state at the same offset.
"""

from __future__ import annotations

import dataclasses

import orjson

from engine import snapshot as snapshots
from engine.deadletter import MemoryDeadLetters
from engine.kafka import PartitionRunner
from engine.monitor import Monitor
from engine.pipeline import Pipeline
from engine.sinks import MemorySink
from tests.engine.helpers import NOW, T0, event, monitor

MINUTE = 60_000


def both(**b_overrides: object) -> list[Monitor]:
    return [monitor(deployment="a"), monitor(deployment="b", **b_overrides)]


def events(deployment: str, minute: int, count: int, first: int) -> list[bytes]:
    """``count`` events of ``deployment`` in ``minute``, ids from ``first``, 100 ms apart."""
    at = T0 + minute * MINUTE + (first % 300) * 100
    return [event(first + i, at + i * 100, deployment=deployment) for i in range(count)]


def new_pipeline(monitors: list[Monitor], sink: MemorySink | None = None) -> Pipeline:
    return Pipeline(
        organization="org",
        monitors=monitors,
        sink=sink if sink is not None else MemorySink(),
        dead_letters=MemoryDeadLetters(),
        clock=lambda: NOW,
    )


def plain(result: object) -> bytes:
    return orjson.dumps(dataclasses.asdict(result))  # type: ignore[call-overload]


def test_an_unchanged_monitor_keeps_its_window_and_a_changed_one_is_cut_at_the_change() -> None:
    sink = MemorySink()
    pipeline = new_pipeline(both(), sink)
    pipeline.ingest(events("a", 0, 100, 0) + events("b", 0, 100, 1000))
    old_b = monitor(deployment="b").fingerprint

    closed = pipeline.reconfigure(both(min_samples=10))

    assert [(r.deployment, r.events, r.cut) for r in closed] == [("b", 100, old_b[:12])]
    assert closed[0].key == f"b/{T0}/{T0 + MINUTE}/cut-{old_b[:12]}"
    assert [m.min_samples for m in pipeline.monitors] == [50, 10]
    pipeline.ingest(events("a", 0, 100, 100) + events("b", 0, 100, 1100))
    pipeline.ingest(events("a", 1, 5, 2000) + events("b", 1, 5, 3000))  # closes minute 0

    window = {r.deployment: r for r in sink.results if r.start_ms == T0 and not r.cut}
    assert window["a"].events == 200  # one window across the change
    assert window["b"].events == 100  # the events after the change, under the new monitor
    assert window["b"].key != closed[0].key  # both parts are stored, neither is a retry
    unchanged = new_pipeline(both())
    unchanged.ingest(events("a", 0, 100, 0) + events("b", 0, 100, 1000))
    unchanged.ingest(events("a", 0, 100, 100) + events("b", 0, 100, 1100))
    reference = unchanged.ingest(events("a", 1, 5, 2000) + events("b", 1, 5, 3000)).closed
    assert plain(window["a"]) == plain(next(r for r in reference if r.deployment == "a"))


def test_a_removed_monitor_is_closed_and_a_new_one_starts() -> None:
    pipeline = new_pipeline([monitor(deployment="a")])
    pipeline.ingest(events("a", 0, 60, 0))
    closed = pipeline.reconfigure([monitor(deployment="b")])
    assert [(r.deployment, r.events) for r in closed] == [("a", 60)]
    report = pipeline.ingest(events("a", 0, 3, 100) + events("b", 0, 40, 1000))
    assert report.accepted == 40
    assert {reason for reason, _ in report.reasons} == {"unknown_deployment"}
    assert pipeline.flush()[0].events == 40


def test_a_duplicate_is_still_recognised_after_its_monitor_changed() -> None:
    pipeline = new_pipeline(both())
    pipeline.ingest(events("b", 0, 10, 0))
    pipeline.reconfigure(both(min_samples=10))
    assert pipeline.ingest(events("b", 0, 10, 0)).duplicates == 10


def test_a_snapshot_restored_under_a_changed_monitor_drops_only_its_windows() -> None:
    before = new_pipeline(both())
    before.ingest(events("a", 0, 100, 0) + events("b", 0, 100, 1000))
    blob = before.snapshot(0)

    after = new_pipeline(both(min_samples=10))
    after.restore(0, blob)
    closed = after.ingest(events("a", 1, 5, 2000) + events("b", 1, 5, 3000)).closed
    assert [(r.deployment, r.events) for r in closed] == [("a", 100)]  # b's window is gone
    discarded = after.metrics.registry.get_sample_value("driftline_windows_discarded_total")
    assert discarded == 1.0

    # a snapshot written before fingerprints were recorded restores as it always did
    data = snapshots.decode(blob)
    for saved in data["deployments"].values():
        del saved["monitor"]
    legacy = new_pipeline(both())
    legacy.restore(0, snapshots.encode(data))
    closed = legacy.ingest(events("a", 1, 5, 2000) + events("b", 1, 5, 3000)).closed
    assert sorted((r.deployment, r.events) for r in closed) == [("a", 100), ("b", 100)]


def test_the_partition_runner_checkpoints_the_new_state_at_the_same_offset() -> None:
    current = both()
    sink = MemorySink()
    runner = PartitionRunner(lambda: new_pipeline(current, sink), topic="events")
    first = events("a", 0, 50, 0) + events("b", 0, 50, 1000)
    outcome = runner.process(3, list(enumerate(first)), None)
    assert outcome.checkpoint is not None

    current = both(min_samples=10)
    checkpoint = runner.reconfigure(3, current)

    assert checkpoint.offset == outcome.checkpoint.offset == 99
    assert [(r.deployment, r.events) for r in sink.results] == [("b", 50)]
    restored = new_pipeline(current)
    restored.restore(3, checkpoint.snapshot)  # the new state continues under the new monitor
    later = [(100 + i, e) for i, e in enumerate(events("a", 1, 5, 2000))]
    assert runner.process(3, later, checkpoint).report is not None
    assert [(r.deployment, r.events) for r in sink.results] == [("b", 50), ("a", 50)]
    assert restored.metrics.registry.get_sample_value("driftline_windows_discarded_total") == 0
