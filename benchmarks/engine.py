"""Engine throughput, embedded, end to end: decode -> windows -> detectors -> chDB writes.

Events carry 20 numeric and 2 categorical features. For each wire form the same stream goes
through :class:`engine.pipeline.Pipeline` into a temporary chDB folder (results written as
they close, one batch per table):

* row JSON, one event per message (what single-event producers send);
* row envelopes of 1,000 events (``{"events": [...]}``);
* columnar envelopes of 10,000 events (``{"columns": {...}}``);
* Arrow IPC streams of 10,000 and of 100,000 events (features flattened as ``features.<name>``,
  the categorical features and the deployment dictionary-encoded; built once with pyarrow,
  outside the timing).

Each form is also run with a sink that keeps nothing ("engine without the store"): the
decode, dedup, windows, sketches and window close alone, so that the chDB writes' share is
the difference of the two figures.

Results are written as the embedded runner writes them (:func:`engine.writes.write_policy`):
with ``--write-behind-ms 0`` (``DRIFTLINE_ENGINE_WRITE_BEHIND_MS``'s default) the windows an
ingest call closes are written before it returns, one insert per table; with a delay they
wait up to that long (the pipeline's clock runs at wall speed) and go in one insert per
table together. An insert costs chDB about the same for one window as for hundreds.

Beside them: polars ``read_ndjson`` on the same row JSON (a decode-only ceiling: no
validation, no windows), and River's ADWIN updated per event and per feature as the peer
(measured in the peer venv on one feature's stream and scaled by the number of features).
Also: memory allocated (tracemalloc) per monitored (deployment x feature) series with 10
coarse + 100 fine bins, for 1,000 deployments x 50 features of open windows.

CPU seconds (process time) are reported beside wall seconds: the machine has 2 cores and
other work, and the targets are per core.

    .venv/bin/python benchmarks/engine.py [--events 200000] [--repeat 3] [--write-behind-ms 0]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from detectors import ReferenceProfile, WindowSketch  # noqa: E402
from engine.deadletter import MemoryDeadLetters  # noqa: E402
from engine.monitor import Monitor  # noqa: E402
from engine.pipeline import Pipeline  # noqa: E402
from engine.results import WindowResult  # noqa: E402
from engine.sinks import MetricsStoreSink, ResultSink  # noqa: E402
from engine.writes import WritePolicy, write_policy  # noqa: E402
from storage.clickhouse.client import connect  # noqa: E402
from storage.clickhouse.migrations import MigrationParams, migrate  # noqa: E402

NUMERIC = tuple(f"n{i}" for i in range(20))
CATEGORICAL = ("c0", "c1")
T0 = 1_764_237_600_000
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def make_events(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """A stream of prediction events, 100 per second of event time, drifting half-way."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(count, len(NUMERIC)))
    values[count // 2 :, :5] += 0.5
    cats = rng.choice(["a", "b", "c"], size=(count, len(CATEGORICAL)))
    return [
        {
            "event_id": f"e{i}",
            "ts": T0 + i * 10,
            "deployment": "bench",
            "features": dict(zip(NUMERIC, values[i].tolist(), strict=True))
            | dict(zip(CATEGORICAL, cats[i].tolist(), strict=True)),
            "prediction": float(values[i, 0] > 0),
            "latency_ms": 5.0 + float(values[i, 1] ** 2),
        }
        for i in range(count)
    ]


def columnar(events: list[dict[str, Any]]) -> bytes:
    columns: dict[str, Any] = {
        "event_id": [e["event_id"] for e in events],
        "ts": [e["ts"] for e in events],
        "deployment": [e["deployment"] for e in events],
        "prediction": [e["prediction"] for e in events],
        "latency_ms": [e["latency_ms"] for e in events],
        "features": {n: [e["features"][n] for e in events] for n in NUMERIC + CATEGORICAL},
    }
    return orjson.dumps({"schema_version": 1, "columns": columns})


def arrow_stream(events: list[dict[str, Any]]) -> bytes:
    """The events as one Arrow IPC stream (the columnar envelope's columns, flattened)."""
    columns: dict[str, Any] = {
        "event_id": pa.array([e["event_id"] for e in events]),
        "ts": pa.array([e["ts"] for e in events], pa.int64()),
        "deployment": pa.array([e["deployment"] for e in events]).dictionary_encode(),
        "prediction": pa.array([e["prediction"] for e in events], pa.float64()),
        "latency_ms": pa.array([e["latency_ms"] for e in events], pa.float64()),
    }
    for name in NUMERIC:
        columns[f"features.{name}"] = pa.array([e["features"][name] for e in events], pa.float64())
    for name in CATEGORICAL:
        values = pa.array([e["features"][name] for e in events])
        columns[f"features.{name}"] = values.dictionary_encode()
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class DiscardSink:
    """Keeps nothing: what the engine costs without the metrics store."""

    def write(self, results: Sequence[WindowResult] | WindowResult) -> None:
        """Drop the results."""


def monitor(seed: int = 1) -> Monitor:
    rng = np.random.default_rng(seed)
    reference = {n: rng.normal(size=20_000) for n in NUMERIC} | {
        c: rng.choice(["a", "b", "c"], size=20_000) for c in CATEGORICAL
    }
    return Monitor(
        deployment="bench",
        reference=ReferenceProfile.fit(reference, numeric=NUMERIC, categorical=CATEGORICAL),
        window={"kind": "tumbling", "size": "5m"},
        min_samples=100,
    )


def run_pipeline(
    batches: list[list[bytes]], folder: Path, repeat_id: int, writes: WritePolicy
) -> tuple[float, float]:
    """Wall and CPU seconds to push every batch through a fresh pipeline into chDB."""
    with connect(f"chdb://{folder}?database=bench{repeat_id}") as client:
        migrate(client, MigrationParams(ttl_days=7300))
        return timed_pipeline(batches, MetricsStoreSink(client, "bench"), writes)


def timed_pipeline(
    batches: list[list[bytes]], sink: ResultSink, writes: WritePolicy
) -> tuple[float, float]:
    """Wall and CPU seconds to push every batch through a fresh pipeline writing to ``sink``."""
    started = time.monotonic()
    pipeline = Pipeline(
        organization="bench",
        monitors=[monitor()],
        sink=sink,
        dead_letters=MemoryDeadLetters(),
        clock=lambda: T0 + 10**10 + int((time.monotonic() - started) * 1000),
        writes=writes,
    )
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        pipeline.ingest(batch)
    pipeline.flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert pipeline.pending == 0
    return wall, cpu


def median_runs(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def peer_river(events: list[dict[str, Any]], repeat: int) -> float | None:
    """River ADWIN events/s: one feature's stream through the peer venv, divided by 20."""
    if not PEER_PYTHON.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.npz"
        stream = np.array([e["features"]["n0"] for e in events[:100_000]])
        np.savez(path, values=stream)
        out = subprocess.run(
            [str(PEER_PYTHON), str(HERE / "peers" / "run_peers.py"), "--data", str(path),
             "--case", "ingest", "--repeat", str(repeat)],
            capture_output=True, check=True, text=True,
        )  # fmt: skip
    result = json.loads(out.stdout)["results"]["river_adwin"]
    seconds = statistics.median(result["seconds"])
    return result["values"] / seconds / len(NUMERIC)


def memory_per_series(deployments: int = 1000, features: int = 50) -> tuple[float, int]:
    """Bytes allocated per open (deployment x feature) window sketch, and in all.

    Counted with :mod:`tracemalloc` (numpy reports its buffers to it), not from the resident
    set: after the throughput runs the allocator reuses freed pages, and the resident set
    then grew by a quarter of what the sketches hold.
    """
    rng = np.random.default_rng(0)
    names = tuple(f"f{i}" for i in range(features))
    profile = ReferenceProfile.fit(
        {n: rng.normal(size=5000) for n in names}, numeric=names, fine_bins=100
    )
    batch = {n: rng.normal(size=50) for n in names}
    gc.collect()
    tracemalloc.start()
    sketches = [WindowSketch.empty(profile).update(batch) for _ in range(deployments)]
    gc.collect()
    grown, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(sketches) == deployments
    return grown / (deployments * features), grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-behind-ms", type=int, default=0)
    args = parser.parse_args()
    writes = write_policy(args.write_behind_ms)
    events = make_events(args.events)
    rows = [orjson.dumps(e) for e in events]
    forms: dict[str, list[list[bytes]]] = {
        "row JSON, one event per message (batches of 1,000 messages)": [
            rows[i : i + 1000] for i in range(0, len(rows), 1000)
        ],
        "row envelopes of 1,000 events": [
            [orjson.dumps({"schema_version": 1, "events": events[i : i + 1000]})]
            for i in range(0, len(events), 1000)
        ],
        "columnar envelopes of 10,000 events": [
            [columnar(events[i : i + 10_000])] for i in range(0, len(events), 10_000)
        ],
        "Arrow IPC streams of 10,000 events": [
            [arrow_stream(events[i : i + 10_000])] for i in range(0, len(events), 10_000)
        ],
        "Arrow IPC streams of 100,000 events": [
            [arrow_stream(events[i : i + 100_000])] for i in range(0, len(events), 100_000)
        ],
    }
    ndjson = b"\n".join(rows)
    decode_runs = []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        pl.read_ndjson(io.BytesIO(ndjson))
        decode_runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    print(f"engine benchmark: {args.events:,} events, 20 numeric + 2 categorical features, "
          f"5-minute windows (~30,000 events each), medians of {args.repeat}, "
          f"write-behind {args.write_behind_ms} ms")  # fmt: skip
    print(f"{'':<62} {'end to end, into chDB':>32}   {'engine without the store':>24}")
    print(f"{'path':<62} {'wall s':>8} {'cpu s':>8} {'events/cpu-s':>14}   "
          f"{'cpu s':>8} {'events/cpu-s':>14}")  # fmt: skip
    wall, cpu = median_runs(decode_runs)
    print(f"{'polars read_ndjson, decode only (ceiling)':<62} {wall:>8.3f} {cpu:>8.3f} "
          f"{args.events / cpu:>14,.0f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, batches) in enumerate(forms.items()):
            runs = [
                run_pipeline(batches, Path(tmp), k * 10 + r, writes) for r in range(args.repeat)
            ]
            bare = [timed_pipeline(batches, DiscardSink(), writes) for _ in range(args.repeat)]
            wall, cpu = median_runs(runs)
            _, bare_cpu = median_runs(bare)
            print(f"{name:<62} {wall:>8.3f} {cpu:>8.3f} {args.events / cpu:>14,.0f}   "
                  f"{bare_cpu:>8.3f} {args.events / bare_cpu:>14,.0f}")  # fmt: skip
    river = peer_river(events, args.repeat)
    if river is not None:
        print(f"{'peer: River ADWIN per event x 20 features':<62} {'':>8} {'':>8} {river:>14,.0f}")
    per_series, total = memory_per_series()
    print(
        f"memory: {per_series:,.0f} bytes per (deployment x feature) open window "
        f"(1,000 deployments x 50 features: {total / 2**20:,.0f} MiB; target <= 4 KB)"
    )


if __name__ == "__main__":
    main()
