"""Helpers of the Kafka worker tests: events, monitors, worker processes, store dumps.

Worker processes each own a chDB folder (a folder serves one process); the test process
already holds the session's folder, so a worker's folder is read by a child process:
``python -m tests.engine.kafka_worker_tools dump FOLDER`` prints its rows as JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from storage.clickhouse.client import MetricsClient, connect
from tests.engine.helpers import event, profile

MINUTE = 60_000
RESULT_TABLES = (
    "window_aggregates",
    "feature_window_stats",
    "drift_results",
    "performance_metrics",
    "resource_metrics",
)
ROOT = Path(__file__).resolve().parents[2]


def start_of_run() -> int:
    """Event time of the first window: two hours ago, on a minute (inside the TTL, past)."""
    now = int(time.time() * 1000)
    return now - now % MINUTE - 120 * MINUTE


def pick_deployments(count: int, partitions: int) -> list[str]:
    """``count`` deployment names whose keys cover every partition (Kafka's murmur2)."""
    names: list[str] = []
    covered: set[int] = set()
    i = 0
    while len(names) < count:
        name = f"dep-{i}"
        partition = (murmur2(name.encode()) & 0x7FFFFFFF) % partitions
        if partition not in covered or len(covered) == partitions:
            names.append(name)
            covered.add(partition)
        i += 1
    return names


def make_events(
    deployments: Sequence[str],
    *,
    t0: int,
    windows: int,
    per_window: int,
    drifting: Sequence[str] = (),
    drift_from: int = 3,
) -> list[tuple[bytes, bytes]]:
    """(key, value) in event-time order, deployments interleaved, ``per_window`` per minute.

    ``drifting`` deployments get a 1.5-sd shift of feature x from window ``drift_from`` on.
    """
    step = MINUTE // per_window
    messages = []
    for w in range(windows):
        for i in range(per_window):
            for n, name in enumerate(deployments):
                shift = 1.5 if name in drifting and w >= drift_from else 0.0
                index = (w * per_window + i) * len(deployments) + n
                body = event(index, t0 + w * MINUTE + i * step, shift=shift, deployment=name)
                messages.append((name.encode(), body))
    return messages


def write_monitors(folder: Path, deployments: Sequence[str]) -> Path:
    """A monitors YAML (one-minute tumbling windows) with the reference profile beside it."""
    (folder / "profile.json").write_text(json.dumps(profile().to_dict()))
    monitors = [
        {
            "deployment": name,
            "reference": "profile.json",
            "window": {"kind": "tumbling", "size": "1m"},
            "min_samples": 20,
        }
        for name in deployments
    ]
    path = folder / "monitors.yaml"
    path.write_text(json.dumps(monitors))  # JSON is YAML
    return path


async def produce(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]
) -> list[tuple[int, int]]:
    """Send ``messages`` in order; answer each one's (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, key=k, value=v) for k, v in messages]
        metadata = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metadata]


def ends(placed: Sequence[tuple[int, int]]) -> dict[int, int]:
    """The last offset produced on each partition."""
    last: dict[int, int] = {}
    for partition, offset in placed:
        last[partition] = max(offset, last.get(partition, -1))
    return last


def dump(client: MetricsClient) -> dict[str, list[Any]]:
    """Every result row of every table, sorted, as JSON-comparable values."""
    rows = {
        table: client.query_rows(f"SELECT * EXCEPT (inserted_at) FROM {table} ORDER BY ALL")
        for table in RESULT_TABLES
    }
    rows["dead_letters"] = client.query_rows(
        "SELECT organization, deployment, reason, payload FROM dead_letters ORDER BY ALL"
    )
    normalised: dict[str, list[Any]] = orjson.loads(orjson.dumps(rows, default=str))
    return normalised


def first_difference(got: Any, want: Any, path: str = "") -> str | None:
    """Where two dumps differ, or ``None``; floats agree to 1e-9 relative or 1e-7 absolute.

    A window's sums (means, moments) depend in their last bits on how its events were
    batched, so a batched worker and one in-process call agree to rounding only; a standard
    deviation from moments of equal values is the square root of a rounding residue (about
    1e-8 instead of 0).
    """
    if isinstance(got, dict) and isinstance(want, dict):
        if set(got) != set(want):
            return f"{path}: keys {sorted(got)} != {sorted(want)}"
        for key in got:
            found = first_difference(got[key], want[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{path}: {len(got)} rows != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            found = first_difference(g, w, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(got, float) and isinstance(want, float):
        close = math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-7)
        return None if close else f"{path}: {got!r} != {want!r}"
    return None if got == want else f"{path}: {got!r} != {want!r}"


def _in_child(command: str, data_dir: Path, stdin: bytes = b"") -> Any:
    """:func:`main`'s ``command`` on ``<data_dir>/metrics`` in a child process; its JSON."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.engine.kafka_worker_tools",
            command,
            str(data_dir / "metrics"),
        ],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return orjson.loads(done.stdout)


def dump_folder(data_dir: Path) -> dict[str, list[Any]]:
    """:func:`dump` of a worker's chDB folder (``<data_dir>/metrics``), by a child process."""
    result: dict[str, list[Any]] = _in_child("dump", data_dir)
    return result


def query_folder(data_dir: Path, queries: Sequence[str]) -> list[list[Any]]:
    """The rows of each query on a worker's chDB folder, by a child process (JSON values)."""
    result: list[list[Any]] = _in_child("query", data_dir, orjson.dumps(list(queries)))
    return result


@dataclass
class WorkerProcess:
    """``driftline worker`` as a child process, its log in a file.

    Every started worker is remembered in ``running`` until it ends, so a test that fails
    before stopping its workers does not leave them behind (``tests/conftest.py`` kills them).
    """

    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = 0.0
    running: ClassVar[list[WorkerProcess]] = []

    @classmethod
    def start(cls, folder: Path, env: Mapping[str, str]) -> WorkerProcess:
        """Start a worker whose data (chDB, faust) lives in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"worker-{time.monotonic_ns()}.log"
        environment = {**os.environ, **env, "DRIFTLINE_DATA_DIR": str(folder)}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("driftline")), "worker"],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = cls(process, log_path, time.monotonic())
        cls.running.append(worker)
        return worker

    @classmethod
    def kill_leftovers(cls) -> None:
        """Kill the workers a test left running."""
        for worker in cls.running:
            if worker.process.poll() is None:
                worker.kill()
        cls.running.clear()

    def diagnose(self) -> str:
        """Ask a running worker for its thread and task stacks; answers its log's story.

        The timeline (seconds since start of "Worker ready" and of the last batch) and the
        stacks (SIGUSR1, SIGUSR2: see ``driftline worker``) tell a stuck worker from a slow one.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            self.process.send_signal(signal.SIGUSR2)
            time.sleep(2)
        text = self.log()
        marks = {
            "ready": "Worker ready",
            "last batch": "driftline.worker batch ",
        }
        told = [f"{time.monotonic() - self.started:.1f} s since start"]
        for label, marker in marks.items():
            lines = [line for line in text.splitlines() if marker in line]
            told.append(f"{label}: {lines[-1][:23] if lines else 'never'}")
        first = text.splitlines()[0][:23] if text else "no log"
        head = f"{self.log_path.name}: started {first}; " + "; ".join(told)
        cut = text.find("Thread 0x")
        if cut < 0:
            cut = text.find("asyncio tasks (SIGUSR2)")
        if cut < 0:
            return f"{head}\n{text[-3000:]}"
        return f"{head}\n{text[max(0, cut - 3000) : cut]}\n[stacks]\n{text[cut:]}"

    def log(self) -> str:
        """What the worker wrote so far."""
        return self.log_path.read_text(errors="replace")

    def batches(self) -> list[dict[str, int]]:
        """The worker's per-batch log records."""
        marker = "driftline.worker batch "
        return [
            json.loads(line.split(marker, 1)[1])
            for line in self.log().splitlines()
            if marker in line
        ]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM, then wait for the clean exit; answers the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def reached(workers: Sequence[WorkerProcess], targets: Mapping[int, int]) -> bool:
    """Whether the workers' logs together show every partition processed up to its target."""
    seen: dict[int, int] = {}
    for worker in workers:
        for batch in worker.batches():
            seen[batch["partition"]] = max(batch["last"], seen.get(batch["partition"], -1))
    return all(seen.get(p, -1) >= offset for p, offset in targets.items())


def wait_until(
    workers: Sequence[WorkerProcess], targets: Mapping[int, int], *, timeout: float = 90
) -> None:
    """Wait until :func:`reached`; fail with the logs' end when it does not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reached(workers, targets):
            return
        for worker in workers:
            if worker.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.log()[-4000:]}")
        time.sleep(0.2)
    tails = "\n---\n".join(w.diagnose() for w in workers)
    raise AssertionError(f"workers did not reach {dict(targets)} in {timeout}s:\n{tails}")


def main(argv: Sequence[str]) -> None:
    """``dump FOLDER``: print :func:`dump` of the chDB folder as JSON; ``query FOLDER``: run
    the JSON list of queries on standard input, print each one's rows as JSON."""
    command, folder = argv
    if command not in ("dump", "query"):
        raise SystemExit(f"unknown command {command!r}")
    with connect(f"chdb://{folder}", default_database="driftline") as client:
        if command == "dump":
            out: Any = dump(client)
        else:
            out = [client.query_rows(sql) for sql in orjson.loads(sys.stdin.buffer.read())]
        sys.stdout.buffer.write(orjson.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
