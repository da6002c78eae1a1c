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
    assert migrate(bare_metrics, PARAMS) == [1, 2, 3]
    tables = _tables(bare_metrics)
    log = bare_metrics.query_rows("SELECT count() FROM schema_migrations")
    assert migrate(bare_metrics, PARAMS) == []
    assert _tables(bare_metrics) == tables
    assert bare_metrics.query_rows("SELECT count() FROM schema_migrations") == log
    assert applied_versions(bare_metrics) == [1, 2, 3]


def test_backwards_then_forwards(bare_metrics):
    migrate(bare_metrics, PARAMS)
    assert rollback(bare_metrics, PARAMS, to_version=2) == [3]
    assert "drift_rollup_minute" not in _tables(bare_metrics)
    assert rollback(bare_metrics, PARAMS, to_version=1) == [2]
    assert applied_versions(bare_metrics) == [1]
    assert "drift_rollup_hour" not in _tables(bare_metrics)
    assert rollback(bare_metrics, PARAMS, to_version=0) == [1]
    assert _tables(bare_metrics) == {"schema_migrations"}
    assert migrate(bare_metrics, PARAMS, target=1) == [1]
    assert migrate(bare_metrics, PARAMS) == [2, 3]


def test_every_table_orders_by_organization_partitions_monthly_and_has_the_ttl(metrics):
    rows = metrics.query_rows(
        "SELECT name, sorting_key, partition_key, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
        " AND name != 'schema_migrations'"
    )
    assert len(rows) == 13  # 7 raw tables + drift and window roll-ups per minute, hour, day
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
        "SELECT minute, sum(windows), sum(drifted_windows), avgMerge(value_avg), max(value_max) "
        "FROM drift_rollup_minute WHERE organization = {org:String} "
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
