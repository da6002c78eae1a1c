import numpy as np
import orjson
import pytest
from prometheus_client import generate_latest

from engine.deadletter import MemoryDeadLetters
from engine.pipeline import Pipeline
from engine.sinks import MemorySink
from storage.errors import StorageUnavailable
from tests.engine.helpers import NOW, T0, event, monitor

MINUTE = 60_000


def pipeline(m=None, sink=None, listener=None, clock=lambda: NOW):
    dead = MemoryDeadLetters()
    p = Pipeline(
        organization="org",
        monitors=[m or monitor()],
        sink=sink or MemorySink(),
        dead_letters=dead,
        listener=listener,
        clock=clock,
    )
    return p, dead


def minute_of_events(minute, count=200, shift=0.0, offset=0):
    return [
        event(offset + minute * 10_000 + i, T0 + minute * MINUTE + i * 100, shift=shift)
        for i in range(count)
    ]


def test_windows_close_when_the_watermark_passes_their_end_and_drift_is_found():
    sink = MemorySink()
    p, _ = pipeline(sink=sink)
    closed = []
    for minute in range(4):
        report = p.ingest(minute_of_events(minute, shift=1.0 if minute >= 2 else 0.0))
        assert report.accepted == 200
        closed.append([(r.start_ms - T0) // MINUTE for r in report.closed])
    assert closed == [[], [0], [1], [2]]
    assert [r.drifted_features for r in sink.results][2] == ("x",)
    window = sink.results[2]
    assert window.events == 200
    assert window.latency_ms[0] == pytest.approx(10.0, rel=0.01)
    assert window.prediction_mean == pytest.approx(0.3)
    x_rows = {r.statistic: r for r in window.drift if r.feature == "x"}
    assert x_rows["ks"].drifted
    assert x_rows["wasserstein_normed"].drifted
    assert x_rows["ks"].p_value_adjusted >= x_rows["ks"].p_value


def test_allowed_lateness_keeps_a_window_open_and_later_events_are_dead_lettered():
    p, dead = pipeline(monitor(allowed_lateness="30s"))
    p.ingest(minute_of_events(0))
    report = p.ingest([event(901, T0 + MINUTE + 20_000)])  # watermark 1:20 < 1:00 + 30s
    assert report.closed == ()
    report = p.ingest([event(902, T0 + 30_000)])  # window 0 still open: accepted
    assert report.late == 0
    report = p.ingest([event(903, T0 + 2 * MINUTE)])  # watermark 2:00 closes window 0
    assert [r.events for r in report.closed] == [201]
    report = p.ingest([event(904, T0 + 10_000)])
    assert report.late == 1
    assert [str(d.reason) for d in dead.letters] == ["late"]
    assert orjson.loads(dead.letters[0].payload)["event_id"] == "e904"
    assert b"driftline_late_events_total 1.0" in generate_latest(p.metrics.registry)


def test_duplicate_event_ids_are_dropped_and_counted():
    p, dead = pipeline()
    p.ingest(minute_of_events(0, count=10))
    report = p.ingest(minute_of_events(0, count=10))
    assert report.duplicates == 10
    assert report.accepted == 0
    assert dead.letters == []
    [result] = p.flush()
    assert result.events == 10


def test_remembered_ids_are_pruned_to_the_horizon_only_when_they_have_doubled(monkeypatch):
    """Pruning at a fixed size rescanned every id at every batch once the ids inside the
    horizon outnumbered it; it now waits until the table has doubled since the last prune."""
    import engine.pipeline as module

    monkeypatch.setattr(module, "_SEEN_PRUNE_MIN", 50)
    p = Pipeline(
        organization="org",
        monitors=[monitor()],
        sink=MemorySink(),
        dead_letters=MemoryDeadLetters(),
        clock=lambda: NOW,
        dedup_horizon_ms=10 * MINUTE,
    )
    deployment = next(iter(p._deployments.values()))
    scans = []
    prune = deployment.prune_seen_at
    for minute in range(12):  # 12 minutes of 40 events; the horizon holds ~10 of them
        p.ingest(minute_of_events(minute, count=40))
        if deployment.prune_seen_at != prune:
            scans.append(minute)
            prune = deployment.prune_seen_at
    # 80 > 50: prune, nothing old (next at 160); 200 > 160 (next at 400); 440 > 400: the
    # ids of minute 0 leave the horizon but one, 401 stay (next at 802)
    assert scans == [1, 4, 10]
    assert len(deployment.seen) == 12 * 40 - 39
    report = p.ingest(minute_of_events(11, count=40))  # still remembered: duplicates
    assert report.duplicates == 40


def test_a_monitor_may_watch_some_of_its_references_features():
    """Windows keep sketches of the watched features only (the decoder passes only those);
    the statistics equal those of a monitor whose reference has exactly these features."""
    from tests.engine.helpers import profile

    watched = {"numeric": ("x",), "categorical": ()}
    narrow = profile().select(["x"], [])
    results = []
    for m in (monitor(features=watched), monitor(reference=narrow)):
        sink = MemorySink()
        p, dead = pipeline(m, sink=sink)
        for minute in range(3):
            p.ingest(minute_of_events(minute, shift=1.0 if minute == 1 else 0.0))
        assert dead.letters == []
        results.append([(r.feature, r.statistic, r.value, r.drifted) for w in sink.results
                        for r in w.drift])  # fmt: skip
    assert results[0] == results[1]
    assert {feature for feature, *_ in results[0]} == {"x"}
    assert any(drifted for *_, drifted in results[0])


def test_hopping_windows_each_count_every_event_they_cover():
    m = monitor(window={"kind": "hopping", "size": "1m", "step": "30s"}, min_samples=1)
    p, _ = pipeline(m)
    report = p.ingest([event(i, T0 + i * 15_000) for i in range(8)])  # 0:00 .. 1:45
    closed = report.closed + tuple(p.flush())
    results = {(r.start_ms - T0) // 1000: r.events for r in closed}
    assert results == {-30: 2, 0: 4, 30: 4, 60: 4, 90: 2}


def test_count_windows_close_after_n_events_in_arrival_order():
    p, _ = pipeline(monitor(window={"kind": "count", "size": 150}, min_samples=10))
    report = p.ingest(minute_of_events(0, count=400))
    assert [r.events for r in report.closed] == [150, 150]
    assert report.closed[0].start_ms == T0
    assert report.closed[0].end_ms == T0 + 149 * 100 + 1
    [rest] = p.flush()
    assert rest.events == 100


def test_a_window_below_the_minimum_is_insufficient_never_drifted():
    p, _ = pipeline(monitor(min_samples=500))
    p.ingest(minute_of_events(0, count=40, shift=5.0))
    [result] = p.flush()
    assert result.insufficient
    assert not any(r.drifted for r in result.drift)
    assert all(r.insufficient for r in result.drift)
    assert "drift_results" not in {str(t) for t in result.tables()}


def test_labels_join_predictions_by_request_id_within_the_horizon():
    m = monitor(
        performance={"task": "classification", "classes": ["0", "1"], "label_horizon": "2m"}
    )
    p, dead = pipeline(m)
    predictions = [event(i, T0 + i * 100, prediction=i % 2, request_id=f"r{i}") for i in range(100)]
    p.ingest(predictions)
    labels = [
        orjson.dumps(
            {
                "type": "label",
                "deployment": "d",
                "request_id": f"r{i}",
                "label": 1,
                "ts": T0 + 70_000,
            }
        )
        for i in range(100)
    ]
    first = p.ingest([*labels[:50], event(1000, T0 + 70000)])  # closes window 0 (drift phase)
    assert [r.phase for r in first.closed] == ["window"]
    assert first.closed[0].performance == ()
    p.ingest(labels[50:])
    final = p.ingest([event(1001, T0 + 3 * MINUTE + 1)])  # passes end + horizon
    [labelled] = [r for r in final.closed if r.phase == "labels"]
    metrics = {name: (value, n) for name, value, n in labelled.performance}
    assert metrics["accuracy"] == (0.5, 100)
    assert set(labelled.tables()) == {"performance_metrics"}
    late_label = orjson.dumps(
        {"type": "label", "deployment": "d", "request_id": "r3", "label": 0, "ts": T0}
    )
    p.ingest([late_label])
    assert [str(d.reason) for d in dead.letters] == ["unmatched_label"]


def test_inline_labels_give_performance_at_close_for_regression():
    m = monitor(performance={"task": "regression"}, min_samples=1)
    p, _ = pipeline(m)
    p.ingest([event(i, T0 + i, prediction=2.0, label=1.0 + i % 2) for i in range(10)])
    [result] = p.flush()
    metrics = {name: value for name, value, _ in result.performance}
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["rmse"] == pytest.approx(np.sqrt(0.5))


def test_class_labels_that_differ_by_a_trailing_nul_are_different_classes():
    m = monitor(
        performance={"task": "classification", "classes": ["a", "a\0"], "label_horizon": "2m"},
        min_samples=1,
    )
    p, _ = pipeline(m)
    pairs = [("a", "a"), ("a\0", "a"), ("a\0", "a\0"), ("a", "a\0")]
    p.ingest([event(i, T0 + i, prediction=pr, label=lab) for i, (pr, lab) in enumerate(pairs)])
    [result] = [r for r in p.flush() if r.performance]
    metrics = {name: value for name, value, _ in result.performance}
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_resource_events_become_window_means():
    p, _ = pipeline(monitor(min_samples=1))
    resources = [
        orjson.dumps(
            {"type": "resource", "deployment": "d", "ts": T0 + i, "cpu": c, "memory_mb": 100 * c}
        )
        for i, c in enumerate((0.2, 0.4, 0.6))
    ]
    p.ingest([*resources, event(0, T0)])
    [result] = p.flush()
    assert result.resources["cpu"] == pytest.approx(0.4)
    assert result.resources["memory_mb"] == pytest.approx(40.0)
    columns = result.tables()["resource_metrics"]
    assert set(columns["resource"]) == {"cpu", "memory_mb"}


class FlakySink:
    """Fails the first ``failures`` writes like a metrics store outage, then keeps results."""

    def __init__(self, failures):
        self.failures, self.results = failures, []

    def write(self, results):
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("metrics store down", attempts=3)
        self.results.extend(results)


class Listener:
    def __init__(self):
        self.seen = []

    def on_window_closed(self, result):
        self.seen.append(result.start_ms)


def test_a_failed_write_keeps_the_window_and_retries_it_in_order():
    sink, listener = FlakySink(failures=2), Listener()
    p, _ = pipeline(sink=sink, listener=listener)
    p.ingest(minute_of_events(0))
    p.ingest(minute_of_events(1))  # closes 0: write fails
    assert p.pending == 1
    assert listener.seen == []
    p.ingest(minute_of_events(2))  # retry of 0 fails again; 1 waits behind it
    assert p.pending == 2
    p.ingest(minute_of_events(3))  # both written, in order, then told to the listener
    assert p.pending == 0
    assert [(r.start_ms - T0) // MINUTE for r in sink.results] == [0, 1, 2]
    assert listener.seen == [r.start_ms for r in sink.results]
    assert b"driftline_sink_failures_total 2.0" in generate_latest(p.metrics.registry)


def test_stationary_stream_raises_no_drift_at_the_defaults():
    sink = MemorySink()
    p, _ = pipeline(monitor(min_samples=100), sink=sink)
    for minute in range(20):
        p.ingest(minute_of_events(minute, count=500, offset=10**6))
    p.flush()
    flagged = {(r.start_ms, f) for r in sink.results for f in r.drifted_features}
    assert len(sink.results) == 20
    assert flagged == set()


def test_dead_letters_are_counted_per_reason():
    p, dead = pipeline()
    report = p.ingest([b"nope", event(0, T0, deployment="ghost"), event(1, T0)])
    assert (report.accepted, report.rejected) == (1, 2)
    assert sorted(r for r, _ in report.reasons) == ["malformed", "unknown_deployment"]
    text = generate_latest(p.metrics.registry).decode()
    assert 'driftline_dead_letters_total{reason="malformed"} 1.0' in text
    assert len(dead.letters) == 2


def test_a_restored_snapshot_continues_exactly_like_an_uninterrupted_run():
    m = monitor(
        performance={"task": "classification", "classes": ["0", "1"], "label_horizon": "1m"},
        min_samples=10,
    )

    def resource(b):
        body = {"type": "resource", "deployment": "d", "ts": T0 + b * 20_000, "cpu": 0.5}
        return orjson.dumps(body | {"memory_mb": 10})

    def label(b, i):
        body = {"type": "label", "deployment": "d", "request_id": f"r{b - 1}-{i}", "label": 1}
        return orjson.dumps(body | {"ts": T0})

    def predictions(b):
        return [
            event(
                b * 100 + i,
                T0 + b * 20_000 + i * 50,
                shift=0.5 * (b > 3),
                prediction=i % 2,
                request_id=f"r{b}-{i}",
                metrics={"tokens": i},
            )
            for i in range(100)
        ]

    batches = [
        [*predictions(b), resource(b), *(label(b, i) for i in range(0, 100, 3) if b)]
        for b in range(9)
    ]
    whole_sink = MemorySink()
    whole, _ = pipeline(m, sink=whole_sink)
    for batch in batches:
        whole.ingest(batch)
    whole.flush()
    expected = whole_sink.results
    first_sink, second_sink = FlakySink(failures=0), MemorySink()
    first, _ = pipeline(m, sink=first_sink)
    for batch in batches[:6]:
        first.ingest(batch)
    first_sink.failures = 100  # the store goes down: results stay pending
    first.ingest(batches[6])
    assert first.pending > 0
    blob = first.snapshot(0)
    second, _ = pipeline(m, sink=second_sink)
    second.restore(0, blob)
    for batch in batches[7:]:
        second.ingest(batch)
    second.flush()
    got = first_sink.results + second_sink.results
    assert [r.key + r.phase for r in got] == [r.key + r.phase for r in expected]
    assert [r.drift for r in got] == [r.drift for r in expected]
    assert [r.performance for r in got] == [r.performance for r in expected]
    assert [r.resources for r in got] == [r.resources for r in expected]
    assert [r.custom_metrics for r in got] == [r.custom_metrics for r in expected]


def test_a_snapshot_of_another_version_is_refused():
    import zlib

    from engine.snapshot import SnapshotError

    p, _ = pipeline()
    with pytest.raises(SnapshotError, match="version"):
        p.restore(0, zlib.compress(orjson.dumps({"version": 99})))


def test_a_partition_snapshot_holds_only_its_own_deployments():
    m_a = monitor(deployment="a", min_samples=1)
    m_b = monitor(deployment="b", min_samples=1)
    p = Pipeline(
        organization="org", monitors=[m_a, m_b], sink=MemorySink(),
        dead_letters=MemoryDeadLetters(), clock=lambda: NOW,
    )  # fmt: skip
    p.ingest([event(1, T0, deployment="a")], partition=0)
    p.ingest([event(2, T0, deployment="b")], partition=1)
    blob = p.snapshot(0)
    p.ingest([event(3, T0 + 1, deployment="b")], partition=1)
    p.restore(0, blob)  # must not touch deployment b, which lives on partition 1
    closed = {r.deployment: r.events for r in p.flush()}
    assert closed == {"a": 1, "b": 2}


def test_accepted_events_are_counted_by_type():
    p, _ = pipeline()
    p.ingest([*minute_of_events(0, count=5), event(0, T0)])  # the last one is a duplicate
    label = {"type": "label", "deployment": "d", "request_id": "r", "label": 1, "ts": T0}
    p.ingest([orjson.dumps(label)])
    registry = p.metrics.registry
    assert registry.get_sample_value("driftline_events_total", {"type": "prediction"}) == 5
    assert registry.get_sample_value("driftline_events_total", {"type": "label"}) == 1
