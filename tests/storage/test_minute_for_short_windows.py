"""Metrics migration 0006: the minute roll-ups keep only sub-minute windows.

Every level (minute through ``*_rollup_minute_all``, hour, day), read at every step, must
give what schema 5 gives for the same windows, and what the raw tables give; forwards,
backwards and forwards again, and after a run cut short.
"""

import numpy as np
import pytest

from storage.clickhouse import reader
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate, rollback
from storage.clickhouse.migrations.m0006_minute_for_short_windows import MIGRATION
from storage.clickhouse.migrations.runner import _run
from storage.clickhouse.reader import TimeRange
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch

PARAMS = MigrationParams(ttl_days=3650, dedup_window=500)
ORG = "acme"
T0 = np.datetime64("2024-03-01T00:00", "ms")
# (window length, windows): 20-second and 30-second windows (sub-minute), exactly one
# minute (the boundary: not sub-minute), 59.999 s (sub-minute) and 5 minutes
SHAPES = ((20_000, 400), (30_000, 150), (60_000, 90), (59_999, 40), (300_000, 300))

# (level column, table at schema 5, table at schema 6, steps read at that level)
LEVELS = (
    ("minute", "{kind}_rollup_minute", "{kind}_rollup_minute_all", (60, 300, 3_600, 86_400)),
    ("hour", "{kind}_rollup_hour", "{kind}_rollup_hour", (3_600, 7_200, 86_400)),
    ("day", "{kind}_rollup_day", "{kind}_rollup_day", (86_400, 172_800)),
)
_READ = {
    "drift": "SELECT toStartOfInterval({level}, INTERVAL {step} SECOND) AS b, deployment, "
    "feature, sum(windows), sum(drifted_windows), sum(value_sum) / sum(r.windows), "
    "max(value_max), min(p_value_min) FROM {table} AS r WHERE organization = {{org:String}} "
    "GROUP BY b, deployment, feature ORDER BY b, deployment, feature",
    "window": "SELECT toStartOfInterval({level}, INTERVAL {step} SECOND) AS b, deployment, "
    "sum(windows), sum(events), sum(errors), sum(late), "
    "sum(latency_p50_weighted) / sum(r.events), max(latency_p99_max), "
    "sum(prediction_mean_weighted) / sum(r.events) FROM {table} AS r "
    "WHERE organization = {{org:String}} GROUP BY b, deployment ORDER BY b, deployment",
}
_RAW = {
    "drift": "SELECT toStartOfInterval(toDateTime(window_start, 'UTC'), INTERVAL {step} SECOND) "
    "AS b, deployment, feature, count(), countIf(drifted), avg(value), max(value), "
    "min(p_value) FROM drift_results WHERE organization = {{org:String}} "
    "GROUP BY b, deployment, feature ORDER BY b, deployment, feature",
    "window": "SELECT toStartOfInterval(toDateTime(window_start, 'UTC'), INTERVAL {step} SECOND) "
    "AS b, deployment, count(), sum(event_count), sum(error_count), sum(late_count), "
    "sum(latency_p50_ms * event_count) / sum(event_count), max(latency_p99_ms), "
    "sum(prediction_mean * event_count) / sum(event_count) FROM window_aggregates "
    "WHERE organization = {{org:String}} GROUP BY b, deployment ORDER BY b, deployment",
}


def _write(client, batch_id, *, seed, offset_days=0):
    """Each shape's windows, for deployments ``short``/``long`` and one deployment with all.

    The mixed deployment holds sub-minute and longer windows of the same feature starting in
    the same minutes, so a minute or an hour folds both kinds together.
    """
    rng = np.random.default_rng(seed)
    first = T0 + np.timedelta64(offset_days, "D")
    starts, ends, deployments = [], [], []
    for length, count in SHAPES:
        begin = first + np.arange(count) * np.timedelta64(length, "ms")
        own = "short" if length < 60_000 else "long"
        for deployment in (own, "mixed"):
            starts.append(begin)
            ends.append(begin + np.timedelta64(length, "ms"))
            deployments.append(np.full(count, deployment, dtype=object))
    start, end, deployment = (
        np.concatenate(starts),
        np.concatenate(ends),
        np.concatenate(deployments),
    )
    n = len(start)
    features = np.array(["x", "y"], dtype=object)
    value = rng.uniform(0, 1, 2 * n)
    write_batch(
        client,
        MetricsTable.DRIFT_RESULTS,
        organization=ORG,
        batch_id=batch_id,
        columns={
            "deployment": np.repeat(deployment, 2),
            "window_start": np.repeat(start, 2),
            "window_end": np.repeat(end, 2),
            "feature": np.tile(features, n),
            "statistic": np.full(2 * n, "ks", dtype=object),
            "value": value,
            "p_value": np.where(value > 0.8, np.nan, rng.uniform(0, 1, 2 * n)),
            "threshold": np.full(2 * n, 0.5),
            "drifted": value > 0.5,
            "reference_size": np.full(2 * n, 100, np.uint64),
            "current_size": np.full(2 * n, 50, np.uint64),
        },
    )
    events = rng.integers(0, 40, n).astype(np.uint64)  # some windows without events
    write_batch(
        client,
        MetricsTable.WINDOW_AGGREGATES,
        organization=ORG,
        batch_id=batch_id,
        columns={
            "deployment": deployment,
            "window_start": start,
            "window_end": end,
            "event_count": events,
            "error_count": np.minimum(events, 3),
            "late_count": np.minimum(events, 1),
            "latency_p50_ms": rng.uniform(1, 9, n),
            "latency_p90_ms": np.full(n, 10.0),
            "latency_p99_ms": rng.uniform(10, 90, n),
            "prediction_mean": rng.uniform(0, 1, n),
            "prediction_std": np.ones(n),
        },
    )


def _levels(client, version):
    """Every level at every step, read as a reader of schema ``version`` reads it."""
    return {
        (kind, level, step): client.query_rows(
            _READ[kind].format(
                level=level,
                step=step,
                table=(new if version >= 6 else old).format(kind=kind),
            ),
            {"org": ORG},
        )
        for kind in _READ
        for level, old, new, steps in LEVELS
        for step in steps
    }


def _raw(client):
    """The same figures straight from the raw tables, keyed like :func:`_levels`."""
    return {
        (kind, level, step): client.query_rows(_RAW[kind].format(step=step), {"org": ORG})
        for kind in _RAW
        for level, _old, _new, steps in LEVELS
        for step in steps
    }


def _assert_same(got, want):
    assert got.keys() == want.keys()
    for key, rows in want.items():
        assert len(got[key]) == len(rows) > 0, key
        for g, w in zip(got[key], rows, strict=True):
            assert [str(x) for x in g[:2]] == [str(x) for x in w[:2]], key
            for a, b in zip(g[2:], w[2:], strict=True):
                if isinstance(b, float):
                    assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), key
                else:
                    assert a == b, key


def _minute_rows(client, kind):
    return client.query_rows(f"SELECT sum(windows) FROM {kind}_rollup_minute")[0][0]


@pytest.fixture
def schema_5(chdb_url):
    """A second database beside ``bare_metrics``'s, at schema 5."""
    url = chdb_url + "_five"
    with connect(url) as client:
        migrate(client, PARAMS, target=5)
        yield client
        client.command(f"DROP DATABASE IF EXISTS {client.database}")


def test_every_level_and_step_reads_as_schema_5_and_as_the_raw_windows(bare_metrics, schema_5):
    migrate(bare_metrics, PARAMS)
    for client in (bare_metrics, schema_5):
        _write(client, "a", seed=1)
        _write(client, "a", seed=1)  # a retry: deduplicated in every roll-up
        _write(client, "b", seed=2, offset_days=1)
    _assert_same(_levels(bare_metrics, 6), _levels(schema_5, 5))
    _assert_same(_levels(bare_metrics, 6), _raw(bare_metrics))
    # the minute roll-up holds the sub-minute windows only: 20 s, 30 s and 59.999 s ones
    per_batch = 2 * (400 + 150 + 40)
    assert _minute_rows(bare_metrics, "window") == 2 * per_batch
    assert _minute_rows(bare_metrics, "drift") == 2 * 2 * per_batch


@pytest.mark.parametrize("step", [60, 3_600, 86_400])
def test_readers_return_what_they_returned_at_schema_5(bare_metrics, schema_5, step):
    from datetime import UTC, datetime, timedelta

    migrate(bare_metrics, PARAMS)
    for client in (bare_metrics, schema_5):
        _write(client, "a", seed=3)
    span = TimeRange(
        datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC), step_seconds=step
    )
    assert span.end - span.start == timedelta(days=3)
    for deployment in ("short", "long", "mixed"):
        args = {"organization": ORG, "deployment": deployment, "time_range": span}
        for read in (reader.drift_series, reader.window_series):
            got, want = read(bare_metrics, **args), read(schema_5, **args)
            assert got.num_rows == want.num_rows > 0
            assert got.column_names == want.column_names
            for name in got.column_names:
                a, b = got[name].to_pylist(), want[name].to_pylist()
                if name in ("value_avg", "latency_p50_avg"):
                    assert a == pytest.approx(b, rel=1e-9, nan_ok=True), name
                else:
                    assert a == b, name


def test_forwards_backwards_forwards_keeps_every_level(bare_metrics, schema_5):
    """Rows written at schema 5 read the same after 0006; rows written after 0006 read the
    same after reverting it (schema 5's minute roll-ups rebuilt), and again forwards."""
    migrate(bare_metrics, PARAMS, target=5)
    for client in (bare_metrics, schema_5):
        _write(client, "before", seed=4)
    assert migrate(bare_metrics, PARAMS) == [6]
    _assert_same(_levels(bare_metrics, 6), _levels(schema_5, 5))
    for client in (bare_metrics, schema_5):
        _write(client, "after", seed=5, offset_days=2)
    _assert_same(_levels(bare_metrics, 6), _levels(schema_5, 5))

    assert rollback(bare_metrics, PARAMS, to_version=5) == [6]
    _assert_same(_levels(bare_metrics, 5), _levels(schema_5, 5))
    for client in (bare_metrics, schema_5):
        _write(client, "reverted", seed=6, offset_days=4)
    _assert_same(_levels(bare_metrics, 5), _levels(schema_5, 5))

    assert migrate(bare_metrics, PARAMS) == [6]
    _assert_same(_levels(bare_metrics, 6), _levels(schema_5, 5))
    _assert_same(_levels(bare_metrics, 6), _raw(bare_metrics))


@pytest.mark.parametrize("direction", ["forwards", "backwards"])
def test_a_run_cut_short_completes_when_run_again(bare_metrics, schema_5, direction):
    """Every prefix of the steps, then the whole migration: the same levels as schema 5."""
    migrate(bare_metrics, PARAMS, target=5 if direction == "forwards" else 6)
    for client in (bare_metrics, schema_5):
        _write(client, "before", seed=7)
    statements = MIGRATION.forwards if direction == "forwards" else MIGRATION.backwards
    assert statements is not None
    steps = MIGRATION.render(statements, PARAMS)
    for cut in (len(steps) // 3, len(steps) // 2, len(steps) - 1, len(steps)):
        for step in steps[:cut]:  # a run that stopped there, unrecorded
            _run(bare_metrics, step)
        if direction == "forwards":
            assert migrate(bare_metrics, PARAMS) == [6]
            _assert_same(_levels(bare_metrics, 6), _levels(schema_5, 5))
            rollback(bare_metrics, PARAMS, to_version=5)
        else:
            assert rollback(bare_metrics, PARAMS, to_version=5) == [6]
            _assert_same(_levels(bare_metrics, 5), _levels(schema_5, 5))
            migrate(bare_metrics, PARAMS)
    for client in (bare_metrics, schema_5):
        _write(client, "after", seed=8, offset_days=2)
    version = 5 if direction == "forwards" else 6
    _assert_same(_levels(bare_metrics, version), _levels(schema_5, 5))
