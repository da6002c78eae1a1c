import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch
from storage.errors import StorageInputError

ORG = "org-a"


def _count(client, table="drift_results"):
    return client.query_rows(f"SELECT count() FROM {table}")[0][0]


def _rollup_windows(client, level):
    return client.query_rows(f"SELECT sum(windows) FROM drift_rollup_{level}")[0][0]


def test_batch_lands_with_its_values(metrics, drift_batch):
    assert (
        write_batch(
            metrics,
            MetricsTable.DRIFT_RESULTS,
            organization=ORG,
            batch_id="w1",
            columns=drift_batch,
        )
        == 12
    )
    rows = metrics.query_rows(
        "SELECT organization, feature, value, p_value, drifted, profile_version FROM drift_results "
        "ORDER BY window_start, feature LIMIT 4"
    )
    assert [r[0] for r in rows] == [ORG] * 4
    assert [r[1] for r in rows] == ["f0", "f1", "f2", "f3"]
    assert rows[0][3] is None  # NaN p-value means "no p-value": NULL
    assert rows[3][3] == pytest.approx(0.01)
    assert [r[4] for r in rows] == [False, False, False, True]
    assert rows[0][5] == ""


def test_same_batch_twice_leaves_no_duplicate_in_table_or_rollups(metrics, drift_batch):
    for _ in range(2):
        write_batch(
            metrics,
            MetricsTable.DRIFT_RESULTS,
            organization=ORG,
            batch_id="w1",
            columns=drift_batch,
        )
    assert _count(metrics) == 12
    assert _rollup_windows(metrics, "hour") == 12
    assert _rollup_windows(metrics, "day") == 12


def test_another_batch_id_or_organization_is_a_new_batch(metrics, drift_batch):
    write_batch(
        metrics, MetricsTable.DRIFT_RESULTS, organization=ORG, batch_id="w1", columns=drift_batch
    )
    write_batch(
        metrics, MetricsTable.DRIFT_RESULTS, organization=ORG, batch_id="w2", columns=drift_batch
    )
    write_batch(
        metrics,
        MetricsTable.DRIFT_RESULTS,
        organization="org-b",
        batch_id="w1",
        columns=drift_batch,
    )
    assert _count(metrics) == 36


_CRASHING_WRITER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from storage.clickhouse.client import connect
    from storage.clickhouse.migrations import MigrationParams, migrate
    from storage.clickhouse.tables import MetricsTable
    from storage.clickhouse.writer import write_batch

    folder, mode = sys.argv[1], sys.argv[2]
    client = connect(f"chdb://{folder}")
    migrate(client, MigrationParams(ttl_days=3650))
    start = np.datetime64("2024-05-01T10:00", "ms") + np.arange(6) * np.timedelta64(5, "m")
    columns = {
        "deployment": np.full(6, "dep", dtype=object), "window_start": start,
        "window_end": start + np.timedelta64(5, "m"), "event_count": np.full(6, 100, np.uint64),
        "error_count": np.arange(6, dtype=np.uint64), "latency_p50_ms": np.full(6, 3.0),
        "latency_p90_ms": np.full(6, 8.0), "latency_p99_ms": np.full(6, 20.0),
        "prediction_mean": np.full(6, 0.4), "prediction_std": np.full(6, 0.1),
    }
    before = client.query_rows("SELECT count() FROM window_aggregates")[0][0]
    write_batch(client, MetricsTable.WINDOW_AGGREGATES, organization="o", batch_id="dep/10:00",
                columns=columns)
    if mode == "crash":
        os._exit(17)  # dies after the insert, before acknowledging it to its caller
    print(json.dumps({
        "before": before,
        "raw": client.query_rows("SELECT count(), sum(error_count) FROM window_aggregates")[0],
        "hour": client.query_rows("SELECT sum(windows), sum(events) FROM window_rollup_hour")[0],
    }))
    """
)


def test_crash_between_insert_and_acknowledgement_then_retry(tmp_path):
    """A worker inserts then dies; its replacement retries the batch on the same folder."""
    folder = tmp_path / "worker-chdb"  # another process: its own folder
    env = os.environ | {"PYTHONWARNINGS": "ignore"}

    def run(mode):
        return subprocess.run(
            [sys.executable, "-c", _CRASHING_WRITER, str(folder), mode],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    crashed = run("crash")
    assert crashed.returncode == 17, crashed.stderr
    retried = run("retry")
    assert retried.returncode == 0, retried.stderr
    counts = json.loads(retried.stdout.strip().splitlines()[-1])
    # the crashed insert had landed; the retry was acknowledged without writing it again
    assert counts == {"before": 6, "raw": [6, 15], "hour": [6, 600]}


def test_defaults_fill_optional_columns(metrics):
    start = np.array(["2024-01-01T00:00"], dtype="datetime64[m]")
    write_batch(
        metrics,
        MetricsTable.WINDOW_AGGREGATES,
        organization=ORG,
        batch_id="b",
        columns={
            "deployment": ["d"],
            "window_start": start,
            "window_end": start,
            "event_count": np.array([5]),
            "error_count": np.array([0]),
            "latency_p50_ms": [1.0],
            "latency_p90_ms": [2.0],
            "latency_p99_ms": [3.0],
            "prediction_mean": [0.5],
            "prediction_std": [0.1],
            "custom_metrics": [{"ctr": 0.25}],
        },
    )
    assert metrics.query_rows(
        "SELECT late_count, latency_bucket_counts, prediction_class_counts, custom_metrics "
        "FROM window_aggregates"
    ) == [(0, [], {}, {"ctr": 0.25})]


def test_every_table_accepts_a_batch(metrics):
    t = np.array(["2024-02-01T00:00:00"], dtype="datetime64[s]")
    batches = {
        MetricsTable.FEATURE_WINDOW_STATS: {
            "deployment": ["d"],
            "window_start": t,
            "window_end": t,
            "feature": ["age"],
            "count": [10],
            "null_count": [1],
            **{k: [1.0] for k in ("mean", "std", "min", "max", "p05", "p25", "p50", "p75", "p95")},
        },
        MetricsTable.PERFORMANCE_METRICS: {
            "deployment": ["d"],
            "window_start": t,
            "window_end": t,
            "metric": ["f1"],
            "value": [0.9],
            "sample_count": [100],
        },
        MetricsTable.RESOURCE_METRICS: {
            "deployment": ["d"],
            "ts": t,
            "resource": ["cpu"],
            "value": [0.5],
        },
        MetricsTable.ALERT_HISTORY: {
            "alert_id": ["a1"],
            "rule_id": ["r1"],
            "deployment": ["d"],
            "fingerprint": ["fp"],
            "state": ["firing"],
            "changed_at": t,
            "value": [0.3],
            "labels": [{"sev": "high"}],
        },
        MetricsTable.DEAD_LETTERS: {
            "received_at": pa.array(t.astype("datetime64[ms]")),
            "source": ["http"],
            "reason": ["bad json"],
            "payload": [b"\xff{not json"],
        },
    }
    for table, columns in batches.items():
        assert write_batch(metrics, table, organization=ORG, batch_id="b1", columns=columns) == 1
        assert _count(metrics, str(table)) == 1
    assert metrics.query_rows("SELECT hex(payload) FROM dead_letters") == [
        (b"\xff{not json".hex().upper(),)
    ]


def test_empty_batch_writes_nothing(metrics, drift_batch_factory):
    empty = drift_batch_factory(windows=0)
    assert (
        write_batch(
            metrics, MetricsTable.DRIFT_RESULTS, organization=ORG, batch_id="e", columns=empty
        )
        == 0
    )
    assert _count(metrics) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("value"), "missing column"),
        (lambda c: c.update(extra=c["value"]), "unknown column"),
        (lambda c: c.update(organization=c["feature"]), "unknown column"),
        (lambda c: c.update(value=c["value"][:3]), "differ in length"),
        (
            lambda c: c.update(reference_size=-c["reference_size"].astype(np.int64)),
            "reference_size",
        ),
        (lambda c: c.update(window_start=np.arange(12)), "window_start"),
        (lambda c: c.update(value=np.array(["x"] * 12, dtype=object)), "value"),
    ],
)
def test_bad_batches_are_refused_before_anything_is_written(metrics, drift_batch, change, message):
    change(drift_batch)
    with pytest.raises(StorageInputError, match=message):
        write_batch(
            metrics, MetricsTable.DRIFT_RESULTS, organization=ORG, batch_id="x", columns=drift_batch
        )
    assert _count(metrics) == 0


@pytest.mark.parametrize(("organization", "batch_id"), [("", "b"), ("o", "")])
def test_organization_and_batch_id_are_required(metrics, drift_batch, organization, batch_id):
    with pytest.raises(StorageInputError):
        write_batch(
            metrics,
            MetricsTable.DRIFT_RESULTS,
            organization=organization,
            batch_id=batch_id,
            columns=drift_batch,
        )
