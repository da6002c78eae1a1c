import time

import numpy as np
import pyarrow as pa
import pytest

from storage.clickhouse.migrations import (
    MIGRATIONS,
    Migration,
    MigrationParams,
    applied_versions,
    migrate,
    rollback,
)
from storage.clickhouse.tables import TABLES
from storage.errors import MigrationError

PARAMS = MigrationParams(ttl_days=90, dedup_window=500)

_CH_TO_ARROW = {
    "String": pa.string(),
    "LowCardinality(String)": pa.string(),
    "UInt64": pa.uint64(),
    "Float64": pa.float64(),
    "Nullable(Float64)": pa.float64(),
    "Bool": pa.bool_(),
    "DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"),
    "Array(Float64)": pa.list_(pa.float64()),
    "Array(UInt64)": pa.list_(pa.uint64()),
    "Map(String, UInt64)": pa.map_(pa.string(), pa.uint64()),
    "Map(String, Float64)": pa.map_(pa.string(), pa.float64()),
    "Map(String, String)": pa.map_(pa.string(), pa.string()),
}


def _tables(client):
    return {row[0] for row in client.query_rows("SHOW TABLES")}


def test_versions_are_numbered_without_gaps():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_migrate_twice_changes_nothing(bare_metrics):
    assert migrate(bare_metrics, PARAMS) == [1, 2, 3, 4, 5, 6]
    tables = _tables(bare_metrics)
    log = bare_metrics.query_rows("SELECT count() FROM schema_migrations")
    assert migrate(bare_metrics, PARAMS) == []
    assert _tables(bare_metrics) == tables
    assert bare_metrics.query_rows("SELECT count() FROM schema_migrations") == log
    assert applied_versions(bare_metrics) == [1, 2, 3, 4, 5, 6]


def test_backwards_then_forwards(bare_metrics):
    migrate(bare_metrics, PARAMS)
    assert rollback(bare_metrics, PARAMS, to_version=5) == [6]
    assert "drift_rollup_minute_all" not in _tables(bare_metrics)
    assert rollback(bare_metrics, PARAMS, to_version=4) == [5]
    assert "feature_rollup_hour" not in _tables(bare_metrics)
    assert rollback(bare_metrics, PARAMS, to_version=3) == [4]
    assert rollback(bare_metrics, PARAMS, to_version=2) == [3]
    assert "drift_rollup_minute" not in _tables(bare_metrics)
    assert rollback(bare_metrics, PARAMS, to_version=1) == [2]
    assert applied_versions(bare_metrics) == [1]
    assert "drift_rollup_hour" not in _tables(bare_metrics)
    assert rollback(bare_metrics, PARAMS, to_version=0) == [1]
    assert _tables(bare_metrics) == {"schema_migrations"}
    assert migrate(bare_metrics, PARAMS, target=1) == [1]
    assert migrate(bare_metrics, PARAMS) == [2, 3, 4, 5, 6]


def test_every_table_orders_by_organization_partitions_monthly_and_has_the_ttl(metrics):
    rows = metrics.query_rows(
        "SELECT name, sorting_key, partition_key, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
        " AND name != 'schema_migrations'"
    )
    # 7 raw tables + drift and window roll-ups per minute, hour, day + feature roll-ups per
    # hour and day
    assert len(rows) == 15
    for name, sorting_key, partition_key, ddl in rows:
        assert sorting_key.startswith("organization"), name
        assert partition_key.startswith("toYYYYMM("), name
        assert "toIntervalDay(3650)" in ddl, name  # the conftest PARAMS
        assert "non_replicated_deduplication_window = 1000" in ddl, name


def test_writer_specs_match_the_tables(metrics):
    for table, spec in TABLES.items():
        described = {
            row[0]: row[1]
            for row in metrics.query_rows(f"DESCRIBE TABLE {table}")
            if row[0] not in ("organization", "inserted_at")
        }
        assert set(described) == set(spec.all_columns), table
        for name, ch_type in described.items():
            expected = spec.all_columns[name]
            if expected == pa.binary():  # raw payloads: bytes into a String column
                expected = pa.string()
            assert _CH_TO_ARROW[ch_type] == expected, (table, name)
            assert (name in spec.nullable) == ch_type.startswith("Nullable"), (table, name)


def test_gaps_and_unsafe_rollbacks_are_refused(bare_metrics):
    one = Migration(1, "one", ("CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Log",), None)
    three = Migration(3, "three", (), ())
    with pytest.raises(MigrationError, match="without gaps"):
        migrate(bare_metrics, PARAMS, migrations=[one, three])
    assert migrate(bare_metrics, PARAMS, migrations=[one]) == [1]
    with pytest.raises(MigrationError, match="cannot be reverted"):
        rollback(bare_metrics, PARAMS, to_version=0, migrations=[one])
    assert applied_versions(bare_metrics) == [1]


def test_a_changed_ttl_setting_reaches_existing_tables_and_is_idempotent(bare_metrics):
    from storage.clickhouse.migrations import apply_ttl

    migrate(bare_metrics, MigrationParams(ttl_days=90))
    assert apply_ttl(bare_metrics, MigrationParams(ttl_days=90)) == []
    changed = apply_ttl(bare_metrics, MigrationParams(ttl_days=30))
    assert set(changed) >= {"drift_results", "window_aggregates", "drift_rollup_day"}
    queries = dict(
        bare_metrics.query_rows(
            "SELECT name, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
        )
    )
    for name in changed:
        assert "toIntervalDay(30)" in queries[name], name
    assert apply_ttl(bare_metrics, MigrationParams(ttl_days=30)) == []


def test_minute_rollups_equal_the_raw_windows_per_minute(metrics):
    from storage.clickhouse.tables import MetricsTable
    from storage.clickhouse.writer import write_batch

    start = 1_764_237_600_000
    starts = [start + i * 20_000 for i in range(9)]  # three 20-second windows per minute
    write_batch(
        metrics,
        MetricsTable.DRIFT_RESULTS,
        organization="acme",
        batch_id="m",
        columns={
            "deployment": ["d"] * 9,
            "window_start": starts,
            "window_end": [s + 20_000 for s in starts],
            "feature": ["x"] * 9,
            "statistic": ["ks"] * 9,
            "value": [0.1 * i for i in range(9)],
            "p_value": [0.5] * 9,
            "threshold": [0.05] * 9,
            "drifted": [i % 3 == 0 for i in range(9)],
            "reference_size": [100] * 9,
            "current_size": [50] * 9,
        },
    )
    rolled = metrics.query_rows(
        "SELECT minute, sum(windows), sum(drifted_windows), sum(value_sum) / sum(r.windows), "
        "max(value_max) "
        "FROM drift_rollup_minute AS r WHERE organization = {org:String} "
        "GROUP BY minute ORDER BY minute",
        {"org": "acme"},
    )
    raw = metrics.query_rows(
        "SELECT toStartOfMinute(toDateTime(window_start, 'UTC')) AS minute, count(), "
        "countIf(drifted), avg(value), max(value) FROM drift_results "
        "WHERE organization = {org:String} GROUP BY minute ORDER BY minute",
        {"org": "acme"},
    )
    assert len(rolled) == 3
    assert [r[:3] for r in rolled] == [r[:3] for r in raw]
    for got, want in zip(rolled, raw, strict=True):
        assert abs(got[3] - want[3]) < 1e-12
        assert got[4] == want[4]


def _write_windows(client, batch_id, start_ms, windows, rng):
    """Drift rows for 2 features and window aggregates, ``windows`` 7-minute windows."""
    from storage.clickhouse.tables import MetricsTable
    from storage.clickhouse.writer import write_batch

    starts = np.datetime64(start_ms, "ms") + np.arange(windows) * np.timedelta64(7, "m")
    events = rng.integers(0, 50, windows).astype(np.uint64)  # some windows without events
    write_batch(
        client,
        MetricsTable.DRIFT_RESULTS,
        organization="acme",
        batch_id=batch_id,
        columns={
            "deployment": ["d"] * 2 * windows,
            "window_start": np.repeat(starts, 2),
            "window_end": np.repeat(starts + np.timedelta64(7, "m"), 2),
            "feature": ["x", "y"] * windows,
            "statistic": ["ks"] * 2 * windows,
            "value": rng.uniform(0, 1, 2 * windows),
            "p_value": rng.uniform(0, 1, 2 * windows),
            "threshold": [0.05] * 2 * windows,
            "drifted": rng.uniform(0, 1, 2 * windows) < 0.3,
            "reference_size": [100] * 2 * windows,
            "current_size": [50] * 2 * windows,
        },
    )
    write_batch(
        client,
        MetricsTable.WINDOW_AGGREGATES,
        organization="acme",
        batch_id=batch_id,
        columns={
            "deployment": ["d"] * windows,
            "window_start": starts,
            "window_end": starts + np.timedelta64(7, "m"),
            "event_count": events,
            "error_count": np.minimum(events, 2),
            "latency_p50_ms": rng.uniform(1, 9, windows),
            "latency_p90_ms": np.full(windows, 10.0),
            "latency_p99_ms": rng.uniform(10, 90, windows),
            "prediction_mean": rng.uniform(0, 1, windows),
            "prediction_std": np.ones(windows),
        },
    )


# per roll-up level from the raw tables: the mean statistic, event-weighted latency and mean
# prediction (as sum(x * w) / sum(w): ClickHouse's avgWeighted(Float64, UInt64) truncates x to
# the weight's integer type, a bug the roll-ups of schema 3 carry)
_RAW_TRUTH = {
    "drift": "SELECT {bucket}(toDateTime(window_start, 'UTC')) AS b, feature, count(), "
    "countIf(drifted), avg(value), max(value), min(p_value) FROM drift_results "
    "WHERE window_start >= fromUnixTimestamp64Milli({since}) "
    "GROUP BY b, feature ORDER BY b, feature",
    "window": "SELECT {bucket}(toDateTime(window_start, 'UTC')) AS b, count(), sum(event_count), "
    "sum(latency_p50_ms * event_count) / sum(event_count), "
    "sum(prediction_mean * event_count) / sum(event_count), max(latency_p99_ms) "
    "FROM window_aggregates WHERE window_start >= fromUnixTimestamp64Milli({since}) "
    "GROUP BY b ORDER BY b",
}
_BUCKETS = {"minute": "toStartOfMinute", "hour": "toStartOfHour", "day": "toStartOfDay"}
DAY_MS = 86_400_000
# three weeks ago at midnight: well inside the 90-day TTL of PARAMS, whatever the date
START_MS = (int(time.time() * 1000) // DAY_MS - 21) * DAY_MS


def _rollups(client, version, since_ms=0):
    """Every roll-up level's figures, read as a reader of schema ``version`` reads them."""
    if version >= 4:
        mean, p50, prediction = (
            "sum(value_sum) / sum(r.windows)",
            "sum(latency_p50_weighted) / sum(r.events)",
            "sum(prediction_mean_weighted) / sum(r.events)",
        )
    else:
        mean, p50, prediction = (
            "avgMerge(value_avg)",
            "avgWeightedMerge(latency_p50_avg)",
            "avgWeightedMerge(prediction_mean_avg)",
        )
    sql = {
        "drift": "SELECT {level} AS b, feature, sum(windows), sum(drifted_windows), "
        f"{mean}, max(value_max), min(p_value_min) FROM drift_rollup_{{level}} AS r "
        "WHERE b >= fromUnixTimestamp64Milli({since}) GROUP BY b, feature ORDER BY b, feature",
        "window": f"SELECT {{level}} AS b, sum(windows), sum(events), {p50}, {prediction}, "
        "max(latency_p99_max) FROM window_rollup_{level} AS r "
        "WHERE b >= fromUnixTimestamp64Milli({since}) GROUP BY b ORDER BY b",
    }
    return {
        (kind, level): client.query_rows(sql[kind].format(level=level, since=since_ms))
        for kind in sql
        for level in _BUCKETS
    }


def _raw(client, since_ms=0):
    return {
        (kind, level): client.query_rows(_RAW_TRUTH[kind].format(bucket=bucket, since=since_ms))
        for kind in _RAW_TRUTH
        for level, bucket in _BUCKETS.items()
    }


def _assert_same(got, want, *, skip_weighted=False):
    for key, rows in want.items():
        assert len(got[key]) == len(rows) > 0, key
        for g, w in zip(got[key], rows, strict=True):
            if skip_weighted and key[0] == "window":
                g, w = g[:3] + g[5:], w[:3] + w[5:]
            assert str(g[0]) == str(w[0])
            for a, b in zip(g[1:], w[1:], strict=True):
                if isinstance(b, float):
                    assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), key
                else:
                    assert a == b, key


def test_lean_rollups_convert_existing_rows_and_keep_every_level_equal_to_raw(bare_metrics):
    """0004 turns the avg states into sums in place: the roll-ups read the same before and
    after, new windows roll up minute -> hour -> day exactly, and reverting restores the
    states (and schema 3's reads)."""
    rng = np.random.default_rng(4)
    assert migrate(bare_metrics, PARAMS, target=3) == [1, 2, 3]
    _write_windows(bare_metrics, "before", START_MS, 500, rng)  # ~2.4 days of 7-min windows
    _assert_same(_rollups(bare_metrics, 3), _raw(bare_metrics), skip_weighted=True)
    as_read_by_3 = _rollups(bare_metrics, 3)

    assert migrate(bare_metrics, PARAMS, target=4) == [4]
    _assert_same(_rollups(bare_metrics, 4), as_read_by_3)
    later = START_MS + 10 * DAY_MS
    _write_windows(bare_metrics, "after", later, 500, rng)
    _assert_same(_rollups(bare_metrics, 4, later), _raw(bare_metrics, later))
    as_read_by_4 = _rollups(bare_metrics, 4)

    assert rollback(bare_metrics, PARAMS, to_version=3) == [4]
    _assert_same(_rollups(bare_metrics, 3), as_read_by_4, skip_weighted=True)


def test_lean_rollups_cut_short_repeat_safely(bare_metrics):
    """A 0004 run that stopped after dropping the state columns completes when run again."""
    from storage.clickhouse.migrations.m0004_lean_rollups import MIGRATION
    from storage.clickhouse.migrations.runner import _run

    rng = np.random.default_rng(5)
    migrate(bare_metrics, PARAMS, target=3)
    _write_windows(bare_metrics, "before", START_MS, 300, rng)
    as_read_by_3 = _rollups(bare_metrics, 3)
    steps = MIGRATION.render(MIGRATION.forwards, PARAMS)
    cut = max(i for i, step in enumerate(steps) if "DROP COLUMN" in str(step)) + 1
    for step in steps[:cut]:  # every conversion done, no view created yet
        _run(bare_metrics, step)
    assert migrate(bare_metrics, PARAMS, target=4) == [4]
    _assert_same(_rollups(bare_metrics, 4), as_read_by_3)
    _write_windows(bare_metrics, "after", START_MS + 10 * DAY_MS, 50, rng)
    _assert_same(
        _rollups(bare_metrics, 4, START_MS + 10 * DAY_MS),
        _raw(bare_metrics, START_MS + 10 * DAY_MS),
    )
