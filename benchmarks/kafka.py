"""Kafka path per worker: events/s of one `driftline worker` process on one partition.

The same stream as ``benchmarks/engine.py`` (20 numeric + 2 categorical features, 5-minute
windows of ~30,000 events, results written to the worker's own chDB folder) is produced to a
fresh one-partition topic of the real broker, in three wire forms:

* single events, one JSON event per message;
* row envelopes of 1,000 events per message;
* columnar envelopes of 1,000 events per message (10,000 would be ~4 MB, over the broker's
  default 1 MiB message limit; the SDK splits its envelopes to fit it).

A warm-up slice (the first 5 % of the messages) is in the topic when the worker starts and
is consumed first, so start-up, group join and the first checkpoint are not measured; then
the rest is produced and timed until the worker's log shows the last offset processed
(decoded, windowed, detected, written, checkpointed in the changelog topic). The worker's
own CPU time comes from ``/proc/<pid>/stat`` (every thread of the process), so the figure
is events per CPU-second of the worker: the broker and this script (producing while the
worker consumes) run on the same 2 cores and are not counted; the wall figure includes them.

    .venv/bin/python benchmarks/kafka.py [--events 200000] [--bootstrap 127.0.0.1:59092]

``--bootstrap`` defaults to ``DRIFTLINE_TEST_KAFKA_BOOTSTRAP`` (exported by
``source .ci/services.sh``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from engine.kafka.admin import create_topics  # noqa: E402
from engine.kafka.app import TopicSpec  # noqa: E402

# benchmarks/engine.py makes the stream; loaded by path ("engine" is also the package's name)
_spec = importlib.util.spec_from_file_location("bench_engine", HERE / "engine.py")
assert _spec is not None
assert _spec.loader is not None
bench_engine: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_engine)

TARGET_ENVELOPES = 100_000
_BATCH_MARKER = "driftline.worker batch "
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wire_forms(events: list[dict[str, Any]]) -> dict[str, list[bytes]]:
    """The stream as Kafka message values, per wire form."""
    return {
        "single events (1 per message)": [orjson.dumps(e) for e in events],
        "row envelopes (1,000 events per message)": [
            orjson.dumps({"schema_version": 1, "events": events[i : i + 1000]})
            for i in range(0, len(events), 1000)
        ],
        "columnar envelopes (1,000 events per message)": [
            bench_engine.columnar(events[i : i + 1000]) for i in range(0, len(events), 1000)
        ],
    }


async def _produce(bootstrap: str, topic: str, values: Sequence[bytes]) -> list[int]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=1 << 20,
        max_request_size=64 << 20,
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, key=b"bench", value=v) for v in values]
        return [m.offset for m in await asyncio.gather(*sent)]
    finally:
        await producer.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _last_offset(log: Path) -> tuple[int, int]:
    """The highest offset the worker's log reports processed, and events accepted so far."""
    last, accepted = -1, 0
    for line in log.read_text(errors="replace").splitlines():
        if _BATCH_MARKER in line:
            batch = json.loads(line.split(_BATCH_MARKER, 1)[1])
            last = max(last, int(batch["last"]))
            accepted += int(batch["accepted"])
    return last, accepted


def _wait_for(process: subprocess.Popen[bytes], log: Path, offset: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last, accepted = _last_offset(log)
        if last >= offset:
            return accepted
        if process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"worker did not reach offset {offset} in {timeout}s")


def run_form(bootstrap: str, values: list[bytes], events: int, folder: Path) -> dict[str, float]:
    """Produce ``values`` to a fresh topic, run one worker over them; its timings."""
    name = uuid.uuid4().hex[:8]
    topic, dead = f"bench-events-{name}", f"bench-dead-{name}"
    asyncio.run(create_topics(bootstrap, [TopicSpec(topic, 1), TopicSpec(dead, 1)]))
    warm = max(1, len(values) // 20)
    warm_offsets = asyncio.run(_produce(bootstrap, topic, values[:warm]))
    (folder / "profile.json").write_text(json.dumps(bench_engine.monitor().reference.to_dict()))
    monitors = folder / "monitors.yaml"
    monitors.write_text(
        json.dumps(
            [
                {
                    "deployment": "bench",
                    "reference": "profile.json",
                    "window": {"kind": "tumbling", "size": "5m"},
                    "min_samples": 100,
                }
            ]
        )
    )
    env = {
        **os.environ,
        "DRIFTLINE_DATA_DIR": str(folder),
        "DRIFTLINE_KAFKA_BOOTSTRAP": bootstrap,
        "DRIFTLINE_KAFKA_ORGANIZATION": "bench",
        "DRIFTLINE_KAFKA_EVENTS_TOPIC": topic,
        "DRIFTLINE_KAFKA_DEAD_LETTER_TOPIC": dead,
        "DRIFTLINE_KAFKA_GROUP_ID": f"bench-{name}",
        "DRIFTLINE_KAFKA_PARTITIONS": "1",
        "DRIFTLINE_MONITORS_FILE": str(monitors),
    }
    log = folder / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("driftline")), "worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        warm_events = _wait_for(process, log, warm_offsets[-1], timeout=180)
        wall, cpu = time.perf_counter(), _cpu_seconds(process.pid)
        offsets = asyncio.run(_produce(bootstrap, topic, values[warm:]))
        accepted = _wait_for(process, log, offsets[-1], timeout=1800)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds(process.pid) - cpu
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    timed = accepted - warm_events
    if accepted != events:
        raise RuntimeError(f"worker accepted {accepted} of {events} events:\n{log.read_text()}")
    return {"events": timed, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    """Run the three wire forms through one worker each and print events per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bootstrap", default=os.environ.get("DRIFTLINE_TEST_KAFKA_BOOTSTRAP"))
    args = parser.parse_args()
    if not args.bootstrap:
        raise SystemExit("no broker: pass --bootstrap or `source .ci/services.sh` first")
    now = int(time.time() * 1000)
    # event time inside the metrics TTL: the stream's ~35 minutes end 10 minutes ago
    bench_engine.T0 = now - now % 60_000 - (args.events // 100 + 600) * 1000
    events = bench_engine.make_events(args.events)
    print(
        f"Kafka worker benchmark: {args.events:,} events, 20 numeric + 2 categorical features, "
        f"5-minute windows, one partition, one worker; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'wire form':<50} {'events/cpu-s':>13} {'events/s wall':>14} {'target':>10}")
    for form, values in wire_forms(events).items():
        with tempfile.TemporaryDirectory(prefix="driftline-bench-kafka-") as tmp:
            result = run_form(args.bootstrap, values, args.events, Path(tmp))
        target = f">= {TARGET_ENVELOPES:,}" if "envelopes" in form else "as is"
        print(
            f"{form:<50} {result['events'] / result['cpu_s']:>13,.0f} "
            f"{result['events'] / result['wall_s']:>14,.0f} {target:>10}"
        )


if __name__ == "__main__":
    main()
