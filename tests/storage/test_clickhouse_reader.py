from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storage.clickhouse import reader
from storage.clickhouse.reader import TimeRange
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch
from storage.errors import StorageInputError

ORG, OTHER = "org-a", "org-b"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = TimeRange(T0, T0 + timedelta(days=2), step_seconds=86_400)

INJECTIONS = [
    "' OR 1=1 --",
    "org-a' OR organization != '",
    "x'; DROP TABLE drift_results; --",
    "\\' OR 1=1 #",
    "{organization:String}",
    "org-a\x00",
]


@pytest.fixture
def loaded(metrics, drift_batch_factory):
    # 2 days of 5-minute windows x 3 features for ORG, and one day for OTHER
    write_batch(
        metrics,
        MetricsTable.DRIFT_RESULTS,
        organization=ORG,
        batch_id="a",
        columns=drift_batch_factory(windows=576, features=3),
    )
    write_batch(
        metrics,
        MetricsTable.DRIFT_RESULTS,
        organization=OTHER,
        batch_id="b",
        columns=drift_batch_factory(windows=288, features=3),
    )
    n = 576
    starts = np.datetime64("2024-03-01T00:00", "ms") + np.arange(n) * np.timedelta64(5, "m")
    for org in (ORG, OTHER):
        write_batch(
            metrics,
            MetricsTable.WINDOW_AGGREGATES,
            organization=org,
            batch_id="w",
            columns={
                "deployment": np.full(n, "dep-1", dtype=object),
                "window_start": starts,
                "window_end": starts + np.timedelta64(5, "m"),
                "event_count": np.full(n, 10, np.uint64),
                "error_count": np.ones(n, np.uint64),
                "latency_p50_ms": np.full(n, 2.0),
                "latency_p90_ms": np.full(n, 5.0),
                "latency_p99_ms": np.linspace(1, 50, n),
                "prediction_mean": np.zeros(n),
                "prediction_std": np.ones(n),
            },
        )
    return metrics


def test_drift_series_by_day_reads_rollups_matching_raw(loaded):
    fast = reader.drift_series(loaded, organization=ORG, deployment="dep-1", time_range=DAY)
    slow = reader.drift_series(
        loaded, organization=ORG, deployment="dep-1", time_range=DAY, use_rollups=False
    )
    assert fast.num_rows == slow.num_rows == 6  # 2 days x 3 features
    for name in ("windows", "drifted_windows", "value_max", "p_value_min"):
        assert fast.column(name).to_pylist() == slow.column(name).to_pylist(), name
    assert np.allclose(fast.column("value_avg").to_numpy(), slow.column("value_avg").to_numpy())
    assert fast.column("windows").to_pylist() == [288] * 6
    assert fast.column("feature").to_pylist() == ["f0", "f0", "f1", "f1", "f2", "f2"]
    assert fast.column("drifted_windows").to_pylist() == [0, 0, 0, 0, 288, 288]


def test_drift_series_hourly_and_filters(loaded):
    hours = TimeRange(T0, T0 + timedelta(hours=3), step_seconds=3600)
    table = reader.drift_series(
        loaded,
        organization=ORG,
        deployment="dep-1",
        time_range=hours,
        features=["f1"],
        statistic="psi",
    )
    assert table.column("windows").to_pylist() == [12, 12, 12]
    assert set(table.column("feature").to_pylist()) == {"f1"}
    assert (
        reader.drift_series(
            loaded, organization=ORG, deployment="dep-1", time_range=hours, statistic="ks"
        ).num_rows
        == 0
    )


def test_window_series_raw_and_rollup_agree(loaded):
    ten_min = TimeRange(T0, T0 + timedelta(hours=1), step_seconds=600)
    raw = reader.window_series(loaded, organization=ORG, deployment="dep-1", time_range=ten_min)
    assert raw.column("windows").to_pylist() == [2] * 6
    assert raw.column("error_rate").to_pylist() == [0.1] * 6
    fast = reader.window_series(loaded, organization=ORG, deployment="dep-1", time_range=DAY)
    slow = reader.window_series(
        loaded, organization=ORG, deployment="dep-1", time_range=DAY, use_rollups=False
    )
    assert fast.to_pylist() == slow.to_pylist()
    assert fast.column("events").to_pylist() == [2880, 2880]


def test_tenant_isolation(loaded):
    other = reader.drift_series(loaded, organization=OTHER, deployment="dep-1", time_range=DAY)
    assert other.column("windows").to_pylist() == [288] * 3
    nobody = reader.drift_series(loaded, organization="org-c", deployment="dep-1", time_range=DAY)
    assert nobody.num_rows == 0


def test_metric_alert_and_dead_letter_reads(metrics):
    t = np.array(["2024-03-01T00:01", "2024-03-01T00:02"], dtype="datetime64[ms]")
    write_batch(
        metrics,
        MetricsTable.RESOURCE_METRICS,
        organization=ORG,
        batch_id="r",
        columns={
            "deployment": ["dep-1"] * 2,
            "ts": t,
            "resource": ["cpu", "cpu"],
            "value": [0.2, 0.4],
        },
    )
    write_batch(
        metrics,
        MetricsTable.PERFORMANCE_METRICS,
        organization=ORG,
        batch_id="p",
        columns={
            "deployment": ["dep-1"] * 2,
            "window_start": t,
            "window_end": t,
            "metric": ["f1", "mae"],
            "value": [0.8, 1.5],
            "sample_count": [10, 10],
        },
    )
    write_batch(
        metrics,
        MetricsTable.ALERT_HISTORY,
        organization=ORG,
        batch_id="h",
        columns={
            "alert_id": ["a", "a"],
            "rule_id": ["r", "r"],
            "deployment": ["dep-1", "dep-1"],
            "fingerprint": ["x", "x"],
            "state": ["firing", "resolved"],
            "changed_at": t,
            "value": [0.5, 0.1],
        },
    )
    write_batch(
        metrics,
        MetricsTable.DEAD_LETTERS,
        organization=ORG,
        batch_id="d",
        columns={
            "received_at": t,
            "source": ["http", "kafka"],
            "reason": ["json", "schema"],
            "payload": [b"{", b"[]"],
        },
    )
    hour = TimeRange(T0, T0 + timedelta(hours=1), step_seconds=300)
    res = reader.metric_series(
        metrics, kind="resources", organization=ORG, deployment="dep-1", time_range=hour
    )
    assert res.to_pylist()[0] | {"bucket": None} == {
        "bucket": None,
        "name": "cpu",
        "value_avg": pytest.approx(0.3),
        "value_min": 0.2,
        "value_max": 0.4,
        "points": 2,
    }
    perf = reader.metric_series(
        metrics,
        kind="performance",
        organization=ORG,
        deployment="dep-1",
        time_range=hour,
        names=["f1"],
    )
    assert perf.column("name").to_pylist() == ["f1"]
    alerts = reader.alert_history(metrics, organization=ORG, start=T0, end=T0 + timedelta(hours=1))
    assert alerts.column("state").to_pylist() == ["resolved", "firing"]
    assert (
        reader.alert_history(
            metrics, organization=ORG, start=T0, end=T0 + timedelta(hours=1), deployment="dep-2"
        ).num_rows
        == 0
    )
    dead = reader.dead_letters(
        metrics, organization=ORG, start=T0, end=T0 + timedelta(hours=1), limit=1
    )
    assert dead.column("reason").to_pylist() == ["schema"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_through_every_user_parameter(loaded, evil):
    tables_before = loaded.query_rows(
        "SELECT count() FROM system.tables WHERE database = currentDatabase()"
    )
    hours = TimeRange(T0, T0 + timedelta(hours=2), step_seconds=3600)
    for kwargs in (
        {"organization": evil, "deployment": "dep-1"},
        {"organization": ORG, "deployment": evil},
    ):
        for use_rollups in (True, False):
            assert (
                reader.drift_series(
                    loaded, time_range=hours, use_rollups=use_rollups, **kwargs
                ).num_rows
                == 0
            )
            assert (
                reader.window_series(
                    loaded, time_range=hours, use_rollups=use_rollups, **kwargs
                ).num_rows
                == 0
            )
        for kind in ("performance", "resources"):
            assert reader.metric_series(loaded, kind=kind, time_range=hours, **kwargs).num_rows == 0
    scoped = {"organization": ORG, "deployment": "dep-1", "time_range": hours}
    assert reader.drift_series(loaded, features=[evil], **scoped).num_rows == 0
    assert reader.drift_series(loaded, statistic=evil, **scoped).num_rows == 0
    assert reader.metric_series(loaded, kind="resources", names=[evil], **scoped).num_rows == 0
    window = {"start": T0, "end": T0 + timedelta(days=3)}
    assert reader.alert_history(loaded, organization=evil, **window).num_rows == 0
    assert reader.alert_history(loaded, organization=ORG, deployment=evil, **window).num_rows == 0
    assert reader.dead_letters(loaded, organization=evil, **window).num_rows == 0
    assert (
        loaded.query_rows("SELECT count() FROM system.tables WHERE database = currentDatabase()")
        == tables_before
    )
    assert loaded.query_rows("SELECT count() FROM drift_results") == [(576 * 3 + 288 * 3,)]


@pytest.mark.parametrize(
    "bad",
    [
        {"time_range": TimeRange(T0, T0, 60)},
        {"time_range": TimeRange(T0, T0 + timedelta(days=1), 0)},
        {"time_range": TimeRange(T0, T0 + timedelta(days=365), 60)},
        {"time_range": TimeRange("2024-01-01", T0, 60)},  # type: ignore[arg-type]
        {"organization": ""},
        {"deployment": None},
    ],
)
def test_bad_reads_are_refused(metrics, bad):
    kwargs = {"organization": ORG, "deployment": "dep-1", "time_range": DAY} | bad
    with pytest.raises(StorageInputError):
        reader.drift_series(metrics, **kwargs)


def test_bad_kind_and_limit_are_refused(metrics):
    with pytest.raises(StorageInputError):
        reader.metric_series(metrics, kind="drop", organization=ORG, deployment="d", time_range=DAY)
    with pytest.raises(StorageInputError):
        reader.dead_letters(metrics, organization=ORG, start=T0, end=T0, limit=0)


def test_naive_datetimes_mean_utc(loaded):
    naive = TimeRange(
        T0.replace(tzinfo=None), (T0 + timedelta(days=2)).replace(tzinfo=None), 86_400
    )
    table = reader.drift_series(loaded, organization=ORG, deployment="dep-1", time_range=naive)
    assert table.num_rows == 6


def test_latency_is_weighted_by_events_without_truncation(metrics):
    """p50 over windows = sum(p50 x events) / sum(events), raw and rolled up alike.

    ClickHouse's ``avgWeighted(Float64, UInt64)`` truncates the values to integers (3.9 -> 3);
    the reads must not use it.
    """
    starts = np.datetime64(T0.replace(tzinfo=None), "ms") + np.arange(2) * np.timedelta64(5, "m")
    write_batch(
        metrics,
        MetricsTable.WINDOW_AGGREGATES,
        organization=ORG,
        batch_id="frac",
        columns={
            "deployment": np.array(["dep-w"] * 2, dtype=object),
            "window_start": starts,
            "window_end": starts + np.timedelta64(5, "m"),
            "event_count": np.array([30, 10], np.uint64),
            "error_count": np.zeros(2, np.uint64),
            "latency_p50_ms": np.array([3.9, 1.5]),
            "latency_p90_ms": np.full(2, 5.0),
            "latency_p99_ms": np.full(2, 9.0),
            "prediction_mean": np.zeros(2),
            "prediction_std": np.ones(2),
        },
    )
    want = (3.9 * 30 + 1.5 * 10) / 40
    for rollups in (True, False):
        table = reader.window_series(
            metrics, organization=ORG, deployment="dep-w", time_range=DAY, use_rollups=rollups
        )
        assert table.column("latency_p50_avg").to_pylist() == [pytest.approx(want, rel=1e-12)]
