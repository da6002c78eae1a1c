"""Benchmarks of the metrics store on embedded chDB (one process, a temporary folder).

(a) Write throughput: drift-result rows built from numpy columns and written through
    ``storage.clickhouse.writer.write_batch`` (one Arrow insert per batch, feeding the
    roll-ups: 5-minute windows go raw -> hour -> day since migration 0006), against a
    row-by-row insert through the same writer (one insert per row; measured on a small
    sample and scaled per row), and against the same batch into a database of the same
    folder at the previous schema (5: raw -> minute -> hour -> day), the two written in
    turn so that both see the same load; the gain of migration 0006 is a ratio measured in
    one run.
(b) Dashboard query: the "Statistic per feature" panel of the drift dashboard over 30 days
    of 5-minute windows x 50 features for one deployment, expanded as the Grafana plugin
    would (30-day range, ``$__interval`` = 30 min, Grafana's choice at ~1440 px), once as
    provisioned (reads the hourly roll-up) and once forced to the raw table.

Medians of several repeats: the machine may be a noisy shared VM.

    .venv/bin/python benchmarks/storage.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and this module, named
# "storage", would hide the storage package: put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402

from storage.clickhouse.client import MetricsClient, connect  # noqa: E402
from storage.clickhouse.grafana import DASHBOARDS, QueryContext, expand  # noqa: E402
from storage.clickhouse.grafana.sql import GatedQuery  # noqa: E402
from storage.clickhouse.migrations import MIGRATIONS, MigrationParams, migrate  # noqa: E402
from storage.clickhouse.tables import MetricsTable  # noqa: E402
from storage.clickhouse.writer import write_batch  # noqa: E402

FEATURES = 50
WINDOW_MINUTES = 5
DAYS = 30
T0 = datetime(2024, 3, 1, tzinfo=UTC)
PREVIOUS = 5  # the schema whose write rate the current one is compared with


def drift_columns(windows: int, *, start: datetime = T0, seed: int = 0) -> dict[str, Any]:
    """Drift-result columns for ``windows`` 5-minute windows x :data:`FEATURES` features."""
    rng = np.random.default_rng(seed)
    n = windows * FEATURES
    first = np.datetime64(start.replace(tzinfo=None), "ms")
    starts = first + np.repeat(np.arange(windows), FEATURES) * np.timedelta64(WINDOW_MINUTES, "m")
    value = rng.uniform(0.0, 0.3, n)
    names = np.array([f"feature_{i:02d}" for i in range(FEATURES)], dtype=object)
    return {
        "deployment": np.full(n, "dep-1", dtype=object),
        "window_start": starts,
        "window_end": starts + np.timedelta64(WINDOW_MINUTES, "m"),
        "feature": np.tile(names, windows),
        "statistic": np.full(n, "ks", dtype=object),
        "value": value,
        "p_value": rng.uniform(0.0, 1.0, n),
        "threshold": np.full(n, 0.2),
        "drifted": value > 0.2,
        "reference_size": np.full(n, 10_000, dtype=np.uint64),
        "current_size": np.full(n, 500, dtype=np.uint64),
    }


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    return _median_wall_and_cpu(run, repeats)[0]


def _median_wall_and_cpu(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds (CPU: this process, every thread; chDB runs in it)."""
    wall, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(wall), statistics.median(cpu)


def bench_writes(client: MetricsClient, previous: MetricsClient, repeats: int) -> dict[str, float]:
    """Rows per second: columnar batches (this schema and ``previous``'s, written in turn)
    vs one insert per row (scaled from a sample)."""
    batch = drift_columns(4_000)  # 200 000 rows
    rows = len(batch["value"])
    counter = iter(range(10**9))

    def columnar(into: MetricsClient) -> None:
        write_batch(
            into,
            MetricsTable.DRIFT_RESULTS,
            organization="bench-w",
            batch_id=f"b{next(counter)}",
            columns=batch,
        )

    timed: dict[str, tuple[list[float], list[float]]] = {"now": ([], []), "previous": ([], [])}
    for into in (client, previous):
        columnar(into)  # warm-up
    for _ in range(repeats):
        for name, into in (("now", client), ("previous", previous)):
            wall, cpu = _median_wall_and_cpu(partial(columnar, into), 1)
            timed[name][0].append(wall)
            timed[name][1].append(cpu)
    sample = 200
    one_row = [{k: v[i : i + 1] for k, v in batch.items()} for i in range(sample)]

    def row_by_row() -> None:
        for columns in one_row:
            write_batch(
                client,
                MetricsTable.DRIFT_RESULTS,
                organization="bench-r",
                batch_id=f"r{next(counter)}",
                columns=columns,
            )

    per_row_s = _median_seconds(row_by_row, max(3, repeats // 2)) / sample
    medians = {
        f"{name}_{kind}": rows / statistics.median(values)
        for name, (wall, cpu) in timed.items()
        for kind, values in (("rows_per_s", wall), ("rows_per_cpu_s", cpu))
    }
    return medians | {
        "rows": rows,
        "row_by_row_rows_per_s": 1.0 / per_row_s,
        "sample": sample,
    }


def _panel(uid: str, title: str) -> GatedQuery:
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            if dashboard.uid == uid and panel.title == title:
                assert isinstance(panel.query, GatedQuery)
                return panel.query
    raise LookupError(f"{uid}/{title}")


def bench_dashboard(client: MetricsClient, repeats: int) -> dict[str, float]:
    """Median latency of one drift panel over 30 days, with and without the roll-ups."""
    windows = DAYS * 24 * 60 // WINDOW_MINUTES
    step = 2_000  # windows per insert, as a worker would send them over time
    for index, first in enumerate(range(0, windows, step)):
        columns = drift_columns(
            min(step, windows - first),
            start=T0 + timedelta(minutes=WINDOW_MINUTES * first),
            seed=index,
        )
        write_batch(
            client,
            MetricsTable.DRIFT_RESULTS,
            organization="bench-q",
            batch_id=f"q{index}",
            columns=columns,
        )
    client.command("OPTIMIZE TABLE drift_results FINAL")  # as background merges would, in time
    ctx = QueryContext(
        start=T0,
        end=T0 + timedelta(days=DAYS),
        interval_seconds=1_800,
        variables={
            "organization": "bench-q",
            "deployment": "dep-1",
            "feature": [f"feature_{i:02d}" for i in range(FEATURES)],
            "statistic": "ks",
        },
    )
    query = _panel("driftline-drift", "Statistic per feature (mean over windows)")
    results: dict[str, float] = {"raw_rows": windows * FEATURES}
    for name, sql in (("rollup", query.sql()), ("raw", query.sql(force="raw"))):
        expanded = expand(sql, ctx)
        points = client.query_arrow(expanded).num_rows
        results[f"{name}_points"] = points
        results[f"{name}_s"] = _median_seconds(partial(client.query_arrow, expanded), repeats)
    return results


def main() -> None:
    """Run both benchmarks in a temporary chDB folder and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="driftline-bench-") as folder,
        connect(f"chdb://{folder}") as client,
        connect(f"chdb://{folder}?database=previous") as previous,
    ):
        migrate(client, MigrationParams(ttl_days=3650))
        migrate(previous, MigrationParams(ttl_days=3650), target=PREVIOUS)
        writes = bench_writes(client, previous, args.repeats)
        query = bench_dashboard(client, args.repeats)
    ratio = writes["now_rows_per_s"] / writes["row_by_row_rows_per_s"]
    now = f"schema {len(MIGRATIONS)}"
    print(
        f"chDB metrics store, medians of {args.repeats} repeats "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    print(f"{'measure':<58} {'value':>14} {'target':>10}")
    print(
        f"{'write: drift rows/s, numpy batch of ' + str(int(writes['rows'])) + ', ' + now:<58} "
        f"{writes['now_rows_per_s']:>14,.0f} {'>= 1e6':>10}"
    )
    label = "write: same, per CPU-second (chDB's threads included)"
    print(f"{label:<58} {writes['now_rows_per_cpu_s']:>14,.0f}")
    label = f"write: same batch, schema {PREVIOUS} (every window via minute)"
    print(f"{label:<58} {writes['previous_rows_per_s']:>14,.0f}")
    label = f"write: same, schema {PREVIOUS}, per CPU-second"
    print(f"{label:<58} {writes['previous_rows_per_cpu_s']:>14,.0f}")
    label = f"write: {now} / schema {PREVIOUS} (wall, CPU)"
    ratios = f"{writes['now_rows_per_s'] / writes['previous_rows_per_s']:.2f}x, "
    ratios += f"{writes['now_rows_per_cpu_s'] / writes['previous_rows_per_cpu_s']:.2f}x"
    print(f"{label:<58} {ratios:>14}")
    label = f"write: rows/s, one insert per row ({int(writes['sample'])}-row sample)"
    print(f"{label:<58} {writes['row_by_row_rows_per_s']:>14,.0f}")
    print(f"{'write: batch / row-by-row':<58} {ratio:>13,.0f}x")
    label = f"query: drift panel, 30 d x 5 min x {FEATURES} feat., roll-up (ms)"
    print(f"{label:<58} {query['rollup_s'] * 1000:>14.1f} {'<= 100':>10}")
    label = "query: same panel, raw table (ms)"
    print(f"{label:<58} {query['raw_s'] * 1000:>14.1f}")
    print(
        f"(raw rows {int(query['raw_rows']):,}; points returned: roll-up "
        f"{int(query['rollup_points']):,}, raw {int(query['raw_points']):,})"
    )


if __name__ == "__main__":
    main()
