"""Alert engine speed: rule evaluation at a window close, and notification delivery.

(a) Evaluation: one window of a deployment with ``--features`` features (KS and PSI rows)
    against one ``drift_statistic`` rule on PSI over every feature: one active series per
    feature (10,000 by default), each
    stepped through its lifecycle, states read and written in the control database (SQLite
    file, as the embedded default), a share of them firing into the outbox. Timed per window
    close, the first close (creating the states) and a steady one (updating them) apart.
(b) Delivery: the firing alerts' notifications drained from the outbox to a local HTTP
    receiver on 127.0.0.1 answering 200, one message per alert (grouped by feature).

    .venv/bin/python benchmarks/alerts.py [--features 10000]
"""

from __future__ import annotations

import argparse
import http.server
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402

from engine.alerts.delivery import Deliverer, RetryPolicy  # noqa: E402
from engine.alerts.evaluator import AlertEvaluator  # noqa: E402
from engine.alerts.history import MemoryHistory  # noqa: E402
from engine.alerts.notifiers import build_notifier  # noqa: E402
from engine.results import DriftRow, WindowResult  # noqa: E402
from storage import db_migrations  # noqa: E402
from storage.db import create_db_engine, session_factory  # noqa: E402
from storage.models import AlertChannel, AlertRouting, AlertRule, Organization  # noqa: E402

T0 = 1_764_237_600_000
MINUTE = 60_000


def window(i: int, features: int, drifted_every: int) -> WindowResult:
    rows = []
    for j in range(features):
        hot = j % drifted_every == 0
        value = 0.5 if hot else 0.01
        rows.append(DriftRow(f"f{j}", "psi", value, None, None, 0.2, hot, 1000, 1000, False))
        rows.append(DriftRow(f"f{j}", "ks", 0.1, 0.01, 0.02, 0.05, hot, 1000, 1000, False))
    return WindowResult(
        organization="bench", deployment="d", start_ms=T0 + i * MINUTE,
        end_ms=T0 + (i + 1) * MINUTE, events=1000, errors=0, late=0, insufficient=False,
        drift=tuple(rows), features=(), latency_ms=(1.0, 2.0, 3.0), prediction_mean=0.0,
        prediction_std=0.0, class_counts={}, custom_metrics={},
    )  # fmt: skip


class _Receiver:
    def __init__(self) -> None:
        self.count = 0
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                counter.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--drifted-every", type=int, default=50)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'alerts.db'}"
    db_migrations.upgrade(url)
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    org = str(uuid.uuid4())
    receivers = {"ok": _Receiver()}
    with sessions() as s:
        s.add(Organization(id=org, slug="bench", name="Bench"))
        s.flush()
        channels = []
        for name, receiver in receivers.items():
            channel = AlertChannel(
                id=str(uuid.uuid4()), org_id=org, name=name, kind="webhook",
                config={"url": receiver.url}, secrets={}, send_resolved=True,
            )  # fmt: skip
            s.add(channel)
            channels.append(channel.id)
        s.add(AlertRouting(
            id=str(uuid.uuid4()), org_id=org, version=1,
            tree={"channels": channels[:1], "group_by": ["alertname", "feature"],
                  "group_wait_ms": 0},
        ))  # fmt: skip
        s.add(AlertRule(
            id=str(uuid.uuid4()), org_id=org, name="psi", deployment="d",
            condition={"kind": "drift_statistic", "statistic": "psi"}, for_windows=1,
            for_ms=0, keep_firing_for_ms=0, severity="warning", labels={},
            annotations={"summary": "{{ feature }} {{ '%.2f'|format(value) }}"}, enabled=True,
        ))  # fmt: skip
        s.commit()
    evaluator = AlertEvaluator(sessions=sessions, organization=org, history=MemoryHistory())
    series = args.features  # one PSI series per feature for this rule
    timings = []
    for i in range(3):
        start = time.perf_counter()
        evaluator.on_window_closed(window(i, args.features, args.drifted_every))
        timings.append(time.perf_counter() - start)
    print(f"alert benchmark: SQLite control database, {series:,} active series per window close")
    print(f"  evaluation, first close (states created):  {timings[0] * 1000:8.1f} ms")
    print(f"  evaluation, steady closes (median of 2):    {sorted(timings[1:])[0] * 1000:8.1f} ms")
    print("  (target <= 50 ms for 10,000 series; this rule has one series per feature)")
    with httpx.Client(timeout=5) as client:
        deliverer = Deliverer(
            sessions=sessions, organization=org,
            notifier_for=lambda c: build_notifier(c.kind, c.config, c.secrets, client=client),
            retry=RetryPolicy(),
        )  # fmt: skip
        start = time.perf_counter()
        sent = 0
        while True:
            report = deliverer.run_once()
            sent += report.sent
            if report.sent == 0 and report.retried == 0:
                break
        elapsed = time.perf_counter() - start
    receiver = receivers["ok"]
    print(f"  delivery to a local receiver: {sent} messages in {elapsed:.2f} s "
          f"= {sent / elapsed:,.0f} messages/s ({receiver.count} requests received)")  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    main()
