"""Closed windows written in groups (engine.writes): one insert per table, each window once.

The store tests run on real chDB (``chdb_url``) with every migration, so deduplication
tokens, materialized views and roll-ups behave as ClickHouse makes them behave.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.deadletter import MemoryDeadLetters
from engine.embedded import EngineHub
from engine.kafka import Checkpoint, PartitionRunner
from engine.monitor import Monitor
from engine.pipeline import Pipeline
from engine.sinks import MemorySink, MetricsStoreSink, group_key
from engine.writes import WritePolicy, write_policy
from storage.clickhouse.client import MetricsClient, RetryPolicy, connect
from storage.clickhouse.migrations import MigrationParams, migrate
from storage.errors import StorageUnavailable
from tests.engine.helpers import NOW, T0, event, monitor

MINUTE = 60_000
DEPLOYMENTS = ("a", "b", "c")
GROUPED = WritePolicy(max_windows=64)


@pytest.fixture
def store(chdb_url: str) -> Iterator[MetricsClient]:
    retry = RetryPolicy(retries=1, backoff_seconds=0.0, sleep=lambda _s: None)
    with connect(chdb_url, retry=retry) as client:
        migrate(client, MigrationParams(ttl_days=3650, dedup_window=1000))
        yield client


class Inserts:
    """A real metrics client that counts inserts and refuses chosen ones like an outage.

    ``refuse`` lists table names; the next insert into each is refused once (after the
    group's earlier tables were really written: a partial group write).
    """

    def __init__(self, client: MetricsClient) -> None:
        self.client, self.count, self.refuse = client, 0, set[str]()

    def insert_arrow(self, table: str, data: Any, *, dedup_token: str) -> None:
        if table in self.refuse:
            self.refuse.discard(table)
            raise StorageUnavailable("metrics store down", attempts=1)
        self.count += 1
        self.client.insert_arrow(table, data, dedup_token=dedup_token)


class Listener:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_window_closed(self, result: Any) -> None:
        self.seen.append(result.key)


def monitors() -> list[Monitor]:
    return [monitor(deployment=d, min_samples=5) for d in DEPLOYMENTS]


def minute(m: int, *, count: int = 12) -> list[bytes]:
    """``count`` events of every deployment in minute ``m`` (one-minute windows)."""
    return [
        event(k * 10**6 + m * 1000 + i, T0 + m * MINUTE + i * 4_000, deployment=d)
        for k, d in enumerate(DEPLOYMENTS)
        for i in range(count)
    ]


def new_pipeline(sink: Any, *, writes: WritePolicy | None = None, **kw: Any) -> Pipeline:
    return Pipeline(
        organization="org",
        monitors=monitors(),
        sink=sink,
        dead_letters=MemoryDeadLetters(),
        clock=kw.pop("clock", lambda: NOW),
        writes=writes,
        **kw,
    )


def uninterrupted(calls: list[list[bytes]], *, flush: bool = True) -> list[Any]:
    """The results of the same calls through a pipeline writing window by window."""
    sink = MemorySink()
    p = new_pipeline(sink)
    for payloads in calls:
        p.ingest(payloads)
    if flush:
        p.flush()
    return sink.results


def stored(client: MetricsClient) -> dict[str, Any]:
    """Row counts of the tables a window writes, and the windows their roll-ups count."""
    one = client.query_rows
    return {
        "windows": one("SELECT count() FROM window_aggregates")[0][0],
        "distinct windows": one(
            "SELECT uniqExact(deployment, window_start) FROM window_aggregates"
        )[0][0],
        "drift rows": one("SELECT count() FROM drift_results")[0][0],
        "feature rows": one("SELECT count() FROM feature_window_stats")[0][0],
        "window roll-ups": [
            one(f"SELECT sum(windows) FROM window_rollup_{level}")[0][0]
            for level in ("hour", "day")
        ],
        "drift roll-ups": [
            one(f"SELECT sum(windows) FROM drift_rollup_{level}")[0][0] for level in ("hour", "day")
        ],
        "feature roll-ups": [
            one(f"SELECT sum(windows) FROM feature_rollup_{level}")[0][0]
            for level in ("hour", "day")
        ],
    }


def expected(windows: int, results: list[Any]) -> dict[str, Any]:
    drift = sum(len(r.tables().get("drift_results", {}).get("feature", [])) for r in results)
    features = sum(len(r.features) for r in results)
    return {
        "windows": windows,
        "distinct windows": windows,
        "drift rows": drift,
        "feature rows": features,
        "window roll-ups": [windows, windows],
        "drift roll-ups": [drift, drift],
        "feature roll-ups": [features, features],
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"max_windows": 0}, "max_windows"), ({"max_delay_ms": -1}, "max_delay_ms")],
)
def test_a_write_policy_refuses_what_cannot_work(settings: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WritePolicy(**settings)


def test_a_group_is_named_by_its_members_and_a_single_window_by_its_own_key() -> None:
    sink = MemorySink()
    p = new_pipeline(sink)
    p.ingest(minute(0))
    p.flush()
    one, two, three = sink.results
    assert group_key([one]) == one.key  # what every window was written under before groups
    assert group_key([one, two]) == group_key([one, two])
    assert group_key([one, two]) != group_key([two, one])
    assert group_key([one, two]) != group_key([one, two, three])


def test_the_windows_of_one_call_and_of_every_deployment_go_in_one_insert_per_table(
    store: MetricsClient,
) -> None:
    inserts, listener = Inserts(store), Listener()
    p = new_pipeline(MetricsStoreSink(inserts, "org"), writes=GROUPED, listener=listener)  # type: ignore[arg-type]
    for m in range(4):
        p.ingest(minute(m))
    assert inserts.count == 3 * 3  # three calls closed a window of each deployment
    p.ingest(minute(9))  # closes minute 3 of every deployment
    p.flush()
    assert inserts.count == 3 * 5
    reference = uninterrupted([minute(m) for m in (0, 1, 2, 3, 9)])
    assert listener.seen == [r.key for r in reference]  # closing order kept
    assert stored(store) == expected(15, reference)


def test_a_failed_group_stays_pending_whole_and_its_retry_writes_no_duplicate(
    store: MetricsClient,
) -> None:
    inserts, listener = Inserts(store), Listener()
    p = new_pipeline(MetricsStoreSink(inserts, "org"), writes=GROUPED, listener=listener)  # type: ignore[arg-type]
    p.ingest(minute(0))
    inserts.refuse = {"drift_results"}  # window_aggregates is written, then the outage
    p.ingest(minute(1))
    assert p.pending == 3  # every window of the group
    assert listener.seen == []
    assert stored(store)["windows"] == 3  # the partial write really landed
    p.ingest(minute(2))  # the same group first (window_aggregates deduplicated), then the next
    assert p.pending == 0
    p.flush()
    assert [k.split("/")[1] for k in listener.seen] == [
        str(T0 + m * MINUTE) for m in range(3) for _ in DEPLOYMENTS
    ]
    reference = uninterrupted([minute(m) for m in range(3)])
    assert listener.seen == [r.key for r in reference]
    assert stored(store) == expected(9, reference)


def test_a_group_restored_from_a_snapshot_is_retried_as_the_same_group(
    store: MetricsClient,
) -> None:
    """The Kafka crash: a group written (partly or wholly) after its snapshot was stored."""
    inserts = Inserts(store)
    first = new_pipeline(MetricsStoreSink(inserts, "org"), writes=GROUPED)  # type: ignore[arg-type]
    first.ingest(minute(0))
    inserts.refuse = {"feature_window_stats"}
    first.ingest(minute(1))  # minute 0's group: two tables written, the third refused
    blob = first.snapshot(0)
    assert first.write_pending() == 3  # written in full here, then the process dies
    second = new_pipeline(MetricsStoreSink(store, "org"), writes=GROUPED)
    second.restore(0, blob)
    assert second.pending == 3
    assert second.write_pending() == 3  # the same group again: nothing written twice
    second.ingest(minute(2))
    second.flush()
    assert stored(store) == expected(9, uninterrupted([minute(m) for m in range(3)]))


def test_windows_waiting_behind_are_written_at_the_delay_the_count_or_the_flush() -> None:
    now = [NOW]
    sink, listener = MemorySink(), Listener()
    p = new_pipeline(
        sink,
        writes=WritePolicy(max_windows=6, max_delay_ms=10_000),
        listener=listener,
        clock=lambda: now[0],
    )
    p.ingest(minute(0))
    p.ingest(minute(1))  # minute 0 closes: three windows wait
    assert (p.pending, sink.results, listener.seen) == (3, [], [])
    assert p.write_pending() == 0  # not due yet
    now[0] += 10_000
    assert p.write_pending() == 3
    assert listener.seen == [r.key for r in sink.results]
    p.ingest(minute(2))
    assert p.pending == 3
    p.ingest(minute(3))  # six wait: due by count
    assert (p.pending, len(sink.results)) == (0, 9)
    p.ingest(minute(4))
    p.flush()
    assert (p.pending, len(sink.results)) == (0, 15)


class Monitors:
    def monitors_for(self, organization: str) -> list[Monitor]:
        return monitors()


def test_the_embedded_hub_writes_waiting_windows_once_their_delay_runs_out(
    chdb_url: str, store: MetricsClient
) -> None:
    hub = EngineHub(
        connect=lambda: connect(chdb_url), monitors=Monitors(), writes=write_policy(2_000)
    )
    try:
        hub.ingest("org", minute(0), source="http")
        assert len(hub.ingest("org", minute(1), source="http").closed) == 3
        assert stored(store)["windows"] == 0  # waiting behind
        deadline = time.monotonic() + 30
        while stored(store)["windows"] < 3:  # no request comes: the hub's thread writes them
            assert time.monotonic() < deadline, "the waiting windows were never written"
            time.sleep(0.1)
        hub.ingest("org", minute(2), source="http")
    finally:
        hub.close()  # minutes 1 and 2 closed and written at shutdown
    assert stored(store)["windows"] == 9


def test_a_snapshot_commits_waiting_windows_to_a_group() -> None:
    sink = MemorySink()
    p = new_pipeline(sink, writes=WritePolicy(max_windows=64, max_delay_ms=10_000))
    p.ingest(minute(0))
    p.ingest(minute(1))
    blob = p.snapshot(0)
    p.ingest(minute(2))  # minute 1's windows wait apart from minute 0's group
    p.flush()
    assert [len(g) for g in _groups(blob)] == [3]
    restored = new_pipeline(MemorySink(), writes=GROUPED)
    restored.restore(0, blob)
    assert restored.pending == 3


def test_a_window_written_alone_keeps_the_snapshot_form_it_had_before_groups() -> None:
    p = new_pipeline(MemorySink(), writes=WritePolicy(deferred=True))
    p.ingest(minute(0))
    p.ingest(minute(1))
    assert all(isinstance(item, dict) for item in _groups(p.snapshot(0), raw=True))


def _groups(blob: bytes, *, raw: bool = False) -> list[Any]:
    from engine import snapshot

    pending: list[Any] = snapshot.decode(blob)["pending"]
    return pending if raw else [[g] if isinstance(g, dict) else g for g in pending]


# -- the Kafka worker's order: checkpoint stored, then the groups written -----------------


def _runner(sink: Any) -> PartitionRunner:
    def new() -> Pipeline:
        return new_pipeline(sink, writes=WritePolicy(max_windows=64, deferred=True))

    return PartitionRunner(new, topic="events")


def _resume(runner: PartitionRunner, cuts: Any, stored: Checkpoint | None) -> None:
    """Batches of the offsets ``(first, count)`` in ``cuts``, each checkpoint stored."""
    for first, count in cuts:
        stored = runner.process(0, _records(first, count), stored).checkpoint or stored
        runner.write_pending(0)


def _records(first: int, count: int) -> list[tuple[int, bytes]]:
    """Offsets first.. with events of every deployment, 4 s apart per deployment."""
    records = []
    for offset in range(first, first + count):
        d = DEPLOYMENTS[offset % 3]
        records.append((offset, event(offset, T0 + (offset // 3) * 4_000, deployment=d)))
    return records


def test_a_worker_killed_after_writing_a_group_rewrites_it_without_duplicates(
    store: MetricsClient,
) -> None:
    inserts = Inserts(store)
    runner = _runner(MetricsStoreSink(inserts, "org"))
    outcome = runner.process(0, _records(0, 90), None)  # two minutes: minute 0 closes
    assert outcome.checkpoint is not None
    checkpoint: Checkpoint = outcome.checkpoint
    assert [len(g) for g in _groups(checkpoint.snapshot)] == [3]
    assert inserts.count == 0  # nothing written before the checkpoint is stored
    after = runner.write_pending(0)
    assert after is not None
    assert inserts.count == 3
    assert _groups(after.snapshot) == []
    # killed before ``after`` was stored: a new worker restores ``checkpoint`` and gets the
    # records after its offset, batched differently
    _resume(_runner(MetricsStoreSink(store, "org")), ((90, 7), (97, 200)), checkpoint)
    reference = uninterrupted([[payload for _, payload in _records(0, 297)]], flush=False)
    assert stored(store) == expected(len(reference), reference)
    assert len(reference) == 3 * 6  # minutes 0-5 of each deployment


def test_a_worker_killed_before_its_checkpoint_regroups_windows_it_never_wrote(
    store: MetricsClient,
) -> None:
    runner = _runner(MetricsStoreSink(store, "org"))
    runner.process(0, _records(0, 90), None)  # killed before the checkpoint is stored
    # cut elsewhere: minute 0 closes in the second batch
    _resume(_runner(MetricsStoreSink(store, "org")), ((0, 45), (45, 200)), None)
    reference = uninterrupted([[payload for _, payload in _records(0, 245)]], flush=False)
    assert stored(store) == expected(len(reference), reference)
