"""Alert engine speed: rule evaluation at a window close, and notification delivery.

(a) Evaluation: one window of a deployment with ``--features`` features (KS and PSI rows)
    against one ``drift_statistic`` rule on PSI over every feature: one active series per
    feature (10,000 by default), one in ``--drifted-every`` (50) firing at every window, the
    rest inactive; states read and written in the control database (a SQLite file, as the
    embedded default, or ``--database-url``), the firing ones into the outbox. Timed per
    window close: the first close (creating the states) and the steady ones (updating them)
    apart, medians over ``--repeats`` fresh rules x ``--closes`` closes (on PostgreSQL the
    tables are analyzed after the first close, as autovacuum would soon: a fresh table's
    statistics make the planner read all 10,000 rows). Target: a steady close of 10,000
    series in 50 ms or less.
(b) Delivery: ``--messages`` firing alerts (one message each: grouped by feature) drained
    from the outbox to a local HTTP receiver on 127.0.0.1 (HTTP/1.1, keep-alive), once
    answering 200 to everything, once with injected failures: 500 to every 3rd request, 429
    with ``Retry-After: 0`` to every 7th, and every 40th answered only after the client's
    timeout. Retries are due at once (1 ms backoff), so the figure is the pipeline's own
    speed. Checked: every message accepted exactly once by the receiver (by ``webhook-id``)
    and marked delivered.

The machine's load average is printed with the figures: on a shared machine they move.

    .venv/bin/python benchmarks/alerts.py [--features 10000] [--repeats 3] [--closes 6]
        [--messages 200] [--database-url postgresql://user:pw@host:5432/db]

A PostgreSQL URL names a server and a database to connect to; the benchmark creates its own
database there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import http.server
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from benchmarks.scratch import migrated_postgres  # noqa: E402
from engine.alerts.delivery import Deliverer, RetryPolicy  # noqa: E402
from engine.alerts.evaluator import AlertEvaluator  # noqa: E402
from engine.alerts.history import MemoryHistory  # noqa: E402
from engine.alerts.notifiers import build_notifier  # noqa: E402
from engine.results import DriftRow, WindowResult  # noqa: E402
from storage import db_migrations  # noqa: E402
from storage.db import create_db_engine, normalize_url, session_factory  # noqa: E402
from storage.models import (  # noqa: E402
    AlertChannel,
    AlertOutbox,
    AlertRouting,
    AlertRule,
    Organization,
)
from storage.tenancy import scope_to  # noqa: E402

T0 = 1_764_237_600_000
MINUTE = 60_000
TARGET_MS = 50.0


def window(i: int, features: int, drifted_every: int, deployment: str = "d") -> WindowResult:
    rows = []
    for j in range(features):
        hot = j % drifted_every == 0
        value = 0.5 if hot else 0.01
        rows.append(DriftRow(f"f{j}", "psi", value, None, None, 0.2, hot, 1000, 1000, False))
        rows.append(DriftRow(f"f{j}", "ks", 0.1, 0.01, 0.02, 0.05, hot, 1000, 1000, False))
    return WindowResult(
        organization="bench", deployment=deployment, start_ms=T0 + i * MINUTE,
        end_ms=T0 + (i + 1) * MINUTE, events=1000, errors=0, late=0, insufficient=False,
        drift=tuple(rows), features=(), latency_ms=(1.0, 2.0, 3.0), prediction_mean=0.0,
        prediction_std=0.0, class_counts={}, custom_metrics={},
    )  # fmt: skip


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # a real receiver's backlog, not socketserver's 5


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers from a rule on the request's number.

    ``fail(n)`` gives the status and headers for the n-th request (1-based), or ``None``
    for "answer after the client gave up". ``accepted`` counts the 2xx answers per
    ``webhook-id``.
    """

    def __init__(self, fail: Any = None, slow_s: float = 0.0) -> None:
        self.requests = 0
        self.accepted: Counter[str] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests += 1
                    answer = fail(receiver.requests) if fail else (200, {})
                    if answer is not None and 200 <= answer[0] < 300:
                        receiver.accepted[self.headers["webhook-id"]] += 1
                if answer is None:  # a timeout: the sender has gone when this answers
                    time.sleep(slow_s)
                    answer = (503, {"Connection": "close"})
                try:
                    self.send_response(answer[0])
                    for name, value in answer[1].items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                return

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def injected(n: int) -> tuple[int, dict[str, str]] | None:
    """500 every 3rd request, 429 (Retry-After: 0) every 7th, a timeout every 40th."""
    if n % 40 == 0:
        return None
    if n % 3 == 0:
        return 500, {}
    if n % 7 == 0:
        return 429, {"Retry-After": "0"}
    return 200, {}


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A fresh, migrated control database: a SQLite file, or a new PostgreSQL database."""
    if url is None or normalize_url(url).get_backend_name() == "sqlite":
        folder = Path(tempfile.mkdtemp())
        fresh = url or f"sqlite:///{folder / 'alerts.db'}"
        db_migrations.upgrade(fresh)
        yield fresh
        return
    with migrated_postgres(url, "alerts_bench") as fresh:
        yield fresh


def organization(sessions: sessionmaker[Session], deployment: str, url: str) -> str:
    """A new organization with one webhook channel at ``url`` and one PSI rule."""
    org = str(uuid.uuid4())
    with sessions() as s:
        s.add(Organization(id=org, slug=f"bench-{org[:8]}", name="Bench"))
        s.flush()
        channel = AlertChannel(
            id=str(uuid.uuid4()), org_id=org, name="hook", kind="webhook",
            config={"url": url}, secrets={"signing_secrets": ["whsec_" + "MfKQ9r8GKYqrTwjU"]},
            send_resolved=True,
        )  # fmt: skip
        s.add(channel)
        s.add(AlertRouting(
            id=str(uuid.uuid4()), org_id=org, version=1,
            tree={"channels": [channel.id], "group_by": ["alertname", "feature"],
                  "group_wait_ms": 0},
        ))  # fmt: skip
        s.add(AlertRule(
            id=str(uuid.uuid4()), org_id=org, name="psi", deployment=deployment,
            condition={"kind": "drift_statistic", "statistic": "psi"}, for_windows=1,
            for_ms=0, keep_firing_for_ms=0, severity="warning", labels={},
            annotations={"summary": "{{ feature }} {{ '%.2f'|format(value) }}"}, enabled=True,
        ))  # fmt: skip
        s.commit()
    return org


def evaluation(sessions: sessionmaker[Session], args: argparse.Namespace) -> None:
    first: list[tuple[float, float]] = []
    steady: list[tuple[float, float]] = []
    windows = [window(i, args.features, args.drifted_every) for i in range(args.closes + 1)]
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    for _ in range(args.repeats):
        org = organization(sessions, "d", "http://127.0.0.1:9/unused")
        evaluator = AlertEvaluator(sessions=sessions, organization=org, history=MemoryHistory())
        for i, result in enumerate(windows):
            start, cpu = time.perf_counter(), time.process_time()
            evaluator.on_window_closed(result)
            spent = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
            (first if i == 0 else steady).append(spent)
            if i == 0 and postgres:  # the planner's statistics, as autovacuum soon has them
                with sessions() as s:
                    s.execute(sa.text("ANALYZE alert_states, alert_outbox"))
                    s.commit()
    for name, runs in (("first close (states created)", first), ("steady close", steady)):
        wall = [w for w, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        print(f"  evaluation, {name}, median of {len(runs)}: "
              f"{statistics.median(wall):.1f} ms wall (min {min(wall):.1f}, "
              f"max {max(wall):.1f}), {cpu:.1f} ms CPU")  # fmt: skip
    median = statistics.median(w for w, _ in steady)
    firing = len(range(0, args.features, args.drifted_every))
    verdict = (
        ("met" if median <= TARGET_MS else "NOT met")
        if args.features >= 10_000
        else "not assessed (fewer series)"
    )
    print(f"  target, a steady close of 10,000 series <= {TARGET_MS:.0f} ms: {verdict}"
          f" ({args.features:,} series here, {firing:,} firing)")  # fmt: skip


def delivery(
    sessions: sessionmaker[Session], args: argparse.Namespace, name: str, receiver: Receiver
) -> None:
    deployment = name.replace(" ", "-")
    org = organization(sessions, deployment, receiver.url)
    evaluator = AlertEvaluator(sessions=sessions, organization=org, history=MemoryHistory())
    evaluator.on_window_closed(window(0, args.messages, 1, deployment=deployment))
    with httpx.Client(timeout=args.timeout) as client:
        deliverer = Deliverer(
            sessions=sessions, organization=org,
            notifier_for=lambda c: build_notifier(c.kind, c.config, c.secrets, client=client),
            retry=RetryPolicy(base_s=0.001, max_attempts=20), rng=random.Random(7),
        )  # fmt: skip
        start = time.perf_counter()
        passes = retried = 0
        while True:
            report = deliverer.run_once()
            passes += 1
            retried += report.retried
            with sessions() as s:
                scope_to(s, org)
                pending = s.scalar(
                    sa.select(sa.func.count()).where(
                        AlertOutbox.org_id == org, AlertOutbox.delivery == "pending"
                    )
                )
            if not pending:
                break
        elapsed = time.perf_counter() - start
    with sessions() as s:
        scope_to(s, org)
        rows = s.execute(
            sa.select(AlertOutbox.delivery, AlertOutbox.notification_id).where(
                AlertOutbox.org_id == org
            )
        ).all()
    delivered = {message for outcome, message in rows if outcome == "delivered"}
    once = all(n == 1 for n in receiver.accepted.values())
    exact = once and set(receiver.accepted) == delivered and len(delivered) == args.messages
    check = "every message accepted exactly once" if exact else "CHECK FAILED"
    print(f"  delivery, {name}: {len(delivered)} messages in {elapsed:.2f} s = "
          f"{len(delivered) / elapsed:,.0f} messages/s ({receiver.requests} requests, "
          f"{retried} retries, {passes} passes; {check})")  # fmt: skip
    if not exact:
        outcomes = Counter(outcome for outcome, _ in rows)
        print(f"    outbox {dict(outcomes)}; accepted ids {len(receiver.accepted)}, "
              f"duplicates {sum(n - 1 for n in receiver.accepted.values())}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--drifted-every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="fresh rules (first closes)")
    parser.add_argument("--closes", type=int, default=6, help="steady closes per rule")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=0.25, help="HTTP timeout, seconds")
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--skip-delivery", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    with database(args.database_url) as url:
        engine = create_db_engine(url)
        sessions = session_factory(engine)
        backend = normalize_url(url).get_backend_name()
        print(f"alert benchmark: {backend} control database, {os.cpu_count()} CPUs, "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")  # fmt: skip
        evaluation(sessions, args)
        if not args.skip_delivery:
            for name, receiver in (
                ("answering 200", Receiver()),
                ("injected failures", Receiver(injected, slow_s=args.timeout * 1.5)),
            ):
                delivery(sessions, args, name, receiver)
                receiver.close()
        engine.dispose()
    load = os.getloadavg()
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")


if __name__ == "__main__":
    main()
