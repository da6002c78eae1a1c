"""Feature statistics, custom metrics and one window's histogram, read back from chDB."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storage.clickhouse import feature_reader
from storage.clickhouse.migrations import MigrationParams, migrate
from storage.clickhouse.reader import TimeRange
from storage.clickhouse.tables import TABLES, MetricsTable
from storage.clickhouse.writer import build_batch, write_batch
from storage.errors import StorageInputError
from tests.storage.test_clickhouse_reader import INJECTIONS

ORG, OTHER = "org-a", "org-b"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
WINDOWS = 576  # two days of 5-minute windows
STATS = ("mean", "std", "min", "max", "p05", "p25", "p50", "p75", "p95")


def _stats(shift: float = 0.0) -> dict[str, object]:
    """Two days of 5-minute windows: a numeric feature "age" and a categorical "city"."""
    n = WINDOWS
    rng = np.random.default_rng(7)
    starts = np.datetime64("2024-03-01T00:00", "ms") + np.arange(n) * np.timedelta64(5, "m")
    count = rng.integers(5, 50, n).astype(np.uint64)
    mean = rng.normal(40 + shift, 3, n)
    std = rng.uniform(1, 4, n)
    quantiles = {
        q: mean + z * std for q, z in zip(STATS[4:], (-1.6, -0.7, 0, 0.7, 1.6), strict=True)
    }
    nan = np.full(n, np.nan)
    return {
        "deployment": np.full(2 * n, "dep-1", dtype=object),
        "window_start": np.concatenate([starts, starts]),
        "window_end": np.concatenate([starts, starts]) + np.timedelta64(5, "m"),
        "feature": np.repeat(np.array(["age", "city"], dtype=object), n),
        "count": np.concatenate([count, count]),
        "null_count": np.concatenate([np.ones(n, np.uint64), np.zeros(n, np.uint64)]),
        "mean": np.concatenate([mean, nan]),
        "std": np.concatenate([std, nan]),
        "min": np.concatenate([mean - 3 * std, nan]),
        "max": np.concatenate([mean + 3 * std, nan]),
        **{q: np.concatenate([v, nan]) for q, v in quantiles.items()},
        "histogram_edges": [[30.0, 40.0, 50.0]] * n + [[]] * n,
        "histogram_counts": [[1, 2, 3, 4]] * n + [[]] * n,
        "category_counts": [[]] * n + [{"paris": 3, "lyon": 2}] * n,
    }


@pytest.fixture
def loaded(metrics):
    for org, shift in ((ORG, 0.0), (OTHER, 100.0)):
        write_batch(metrics, MetricsTable.FEATURE_WINDOW_STATS, organization=org,
                    batch_id="s", columns=_stats(shift))  # fmt: skip
    return metrics


def _rows(table):
    return table.to_pylist()


def _by_hand(columns, feature, start, end):
    """The documented formulas over the raw windows of [start, end)."""
    starts = columns["window_start"].astype("datetime64[ms]")
    pick = (columns["feature"] == feature) & (starts >= start) & (starts < end)
    count = columns["count"][pick].astype(float)
    mean, std = columns["mean"][pick], columns["std"][pick]
    total = count.sum()
    m = (mean * count).sum() / total
    return {
        "windows": int(pick.sum()),
        "count": int(total),
        "mean": m,
        "std": np.sqrt(((std**2 + mean**2) * count).sum() / total - m * m),
        "min": columns["min"][pick].min(),
        "max": columns["max"][pick].max(),
        "p50": (columns["p50"][pick] * count).sum() / total,
    }


def _assert_same(raw, rolled):
    """Roll-up rows equal raw ones: counts exactly, statistics up to float summation order."""
    assert len(raw) == len(rolled)
    for a, b in zip(raw, rolled, strict=True):
        key = ("bucket", "feature", "windows", "count", "null_count")
        assert [a[k] for k in key] == [b[k] for k in key]
        for name in STATS:
            assert a[name] == pytest.approx(b[name], rel=1e-9, nan_ok=True), name


@pytest.mark.parametrize("step", [3600, 86_400])
def test_rollups_give_the_raw_numbers_and_the_documented_formulas(loaded, step):
    span = TimeRange(T0, T0 + timedelta(days=2), step_seconds=step)
    read = {"organization": ORG, "deployment": "dep-1", "time_range": span}
    raw = _rows(feature_reader.feature_series(loaded, use_rollups=False, **read))
    rolled = _rows(feature_reader.feature_series(loaded, **read))
    assert len(raw) == 2 * (2 * 86_400 // step)
    _assert_same(raw, rolled)
    first = next(r for r in rolled if r["feature"] == "age")
    start = np.datetime64("2024-03-01T00:00", "ms")
    expected = _by_hand(_stats(), "age", start, start + np.timedelta64(step, "s"))
    for name, value in expected.items():
        assert first[name] == pytest.approx(value, rel=1e-9), name
    assert first["null_count"] == first["windows"]
    city = next(r for r in rolled if r["feature"] == "city")
    assert city["count"] > 0
    assert all(np.isnan(city[name]) for name in STATS)  # categorical: no numeric summary
    only = feature_reader.feature_series(loaded, features=["city"], **read)
    assert set(only.column("feature").to_pylist()) == {"city"}


def test_existing_windows_are_folded_into_the_rollups_by_the_migration(bare_metrics):
    migrate(bare_metrics, MigrationParams(ttl_days=3650), target=4)
    histogram = ["histogram_edges", "histogram_counts", "category_counts"]
    old = build_batch(
        TABLES[MetricsTable.FEATURE_WINDOW_STATS], organization=ORG, columns=_stats()
    ).drop_columns(histogram)  # as a writer before migration 5 sent it
    bare_metrics.insert_arrow("feature_window_stats", old, dedup_token="old")
    assert migrate(bare_metrics, MigrationParams(ttl_days=3650), target=5) == [5]
    span = TimeRange(T0, T0 + timedelta(days=2), step_seconds=86_400)
    read = {"organization": ORG, "deployment": "dep-1", "time_range": span}
    raw = _rows(feature_reader.feature_series(bare_metrics, use_rollups=False, **read))
    _assert_same(raw, _rows(feature_reader.feature_series(bare_metrics, **read)))
    assert sum(r["windows"] for r in raw) == 2 * WINDOWS
    (stored,) = feature_reader.window_feature(
        bare_metrics, organization=ORG, deployment="dep-1", start=T0, feature="age"
    ).to_pylist()
    assert stored["histogram_counts"] == []  # written before histograms were kept


def test_one_windows_histogram_and_drift_results(loaded):
    where = {"organization": ORG, "deployment": "dep-1", "start": T0 + timedelta(minutes=5)}
    (age,) = feature_reader.window_feature(loaded, feature="age", **where).to_pylist()
    assert (age["histogram_edges"], age["histogram_counts"]) == ([30.0, 40.0, 50.0], [1, 2, 3, 4])
    (city,) = feature_reader.window_feature(loaded, feature="city", **where).to_pylist()
    assert dict(city["category_counts"]) == {"paris": 3, "lyon": 2}
    starts = np.array(["2024-03-01T00:05"] * 2, dtype="datetime64[ms]")
    for batch, value in (("d1", 0.1), ("d2", 0.4)):  # the same window written twice
        write_batch(
            loaded,
            MetricsTable.DRIFT_RESULTS,
            organization=ORG,
            batch_id=batch,
            columns={
                "deployment": ["dep-1"] * 2,
                "window_start": starts,
                "window_end": starts + np.timedelta64(5, "m"),
                "feature": ["age"] * 2,
                "statistic": ["ks", "psi"],
                "value": [value, value / 2],
                "p_value": [1e-9, np.nan],
                "threshold": [0.05, 0.2],
                "drifted": [True, False],
                "reference_size": [100] * 2,
                "current_size": [50] * 2,
            },
        )
    drift = feature_reader.window_drift(loaded, feature="age", **where).to_pylist()
    assert [(r["statistic"], r["value"]) for r in drift] == [("ks", 0.4), ("psi", 0.2)]
    assert drift[1]["p_value"] is None
    elsewhere = where | {"start": T0 + timedelta(minutes=7)}
    assert feature_reader.window_drift(loaded, feature="age", **elsewhere).num_rows == 0
    with pytest.raises(StorageInputError):
        feature_reader.window_feature(loaded, feature="", **where)


def test_custom_metrics_per_bucket(metrics):
    starts = np.datetime64("2024-03-01T00:00", "ms") + np.arange(4) * np.timedelta64(30, "m")
    for org, scale in ((ORG, 1.0), (OTHER, 1000.0)):
        write_batch(
            metrics,
            MetricsTable.WINDOW_AGGREGATES,
            organization=org,
            batch_id="c",
            columns={
                "deployment": ["dep-1"] * 4,
                "window_start": starts,
                "window_end": starts + np.timedelta64(30, "m"),
                "event_count": [10] * 4,
                "error_count": [0] * 4,
                "latency_p50_ms": [1.0] * 4,
                "latency_p90_ms": [1.0] * 4,
                "latency_p99_ms": [1.0] * 4,
                "prediction_mean": [0.0] * 4,
                "prediction_std": [0.0] * 4,
                "custom_metrics": [
                    {"ctr": 0.1 * scale, "revenue": 5.0 * scale},
                    {"ctr": 0.3 * scale},
                    {"ctr": 0.2 * scale},
                    {},
                ],
            },
        )
    span = TimeRange(T0, T0 + timedelta(hours=2), step_seconds=3600)
    rows = _rows(
        feature_reader.custom_metric_series(
            metrics, organization=ORG, deployment="dep-1", time_range=span
        )
    )
    assert [(r["name"], r["points"], r["value_min"], r["value_max"]) for r in rows] == [
        ("ctr", 2, 0.1, 0.3),
        ("ctr", 1, 0.2, 0.2),
        ("revenue", 1, 5.0, 5.0),
    ]
    assert rows[0]["value_avg"] == pytest.approx(0.2)
    only = feature_reader.custom_metric_series(
        metrics, organization=ORG, deployment="dep-1", time_range=span, names=["revenue"]
    )
    assert only.column("name").to_pylist() == ["revenue"]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_through_every_user_parameter(loaded, evil):
    tables = "SELECT count() FROM system.tables WHERE database = currentDatabase()"
    before = loaded.query_rows(tables)
    span = TimeRange(T0, T0 + timedelta(days=1), step_seconds=3600)
    for tenant in ({"organization": evil, "deployment": "dep-1"},
                   {"organization": ORG, "deployment": evil}):  # fmt: skip
        for use_rollups in (True, False):
            table = feature_reader.feature_series(
                loaded, time_range=span, use_rollups=use_rollups, **tenant
            )
            assert table.num_rows == 0
        assert feature_reader.custom_metric_series(loaded, time_range=span, **tenant).num_rows == 0
        for read in (feature_reader.window_feature, feature_reader.window_drift):
            assert read(loaded, start=T0, feature="age", **tenant).num_rows == 0
    scoped = {"organization": ORG, "deployment": "dep-1"}
    assert (
        feature_reader.feature_series(loaded, time_range=span, features=[evil], **scoped).num_rows
        == 0
    )
    custom = feature_reader.custom_metric_series(loaded, time_range=span, names=[evil], **scoped)
    assert custom.num_rows == 0
    for read in (feature_reader.window_feature, feature_reader.window_drift):
        assert read(loaded, start=T0, feature=evil, **scoped).num_rows == 0
    assert loaded.query_rows(tables) == before
    assert loaded.query_rows("SELECT count() FROM feature_window_stats") == [(4 * WINDOWS,)]
