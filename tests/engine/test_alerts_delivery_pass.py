"""A delivery pass as a whole: two commits, concurrent sends, exactly once despite failures."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import event, select

from engine.alerts.delivery import Deliverer, RetryPolicy
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import MemoryHistory
from engine.alerts.notifiers import build_notifier
from engine.alerts.notifiers.base import Notification
from engine.results import DriftRow
from storage.models import AlertChannel, AlertDelivery, AlertOutbox
from tests.engine import alerts_support
from tests.engine.alerts_support import Clock, window

db = alerts_support.db
receiver = alerts_support.receiver


def _alerts(db, url: str, count: int, clock: Clock) -> None:
    """``count`` firing alerts (one feature each), one message each, due at once."""
    channel = db.channel("webhook", {"url": url})
    db.rule({"kind": "drift_statistic", "statistic": "psi"})
    db.routing({"channels": [channel.id], "group_by": ["feature"], "group_wait_ms": 0})
    rows = tuple(
        DriftRow(f"f{i}", "psi", 0.5, None, None, 0.2, True, 1000, 500, False) for i in range(count)
    )
    evaluator = AlertEvaluator(db.sessions, db.org, MemoryHistory(), clock=clock)
    evaluator.on_window_closed(replace(window(0), drift=rows))


def _deliverer(db, client: httpx.Client, clock: Clock, **options) -> Deliverer:
    return Deliverer(
        db.sessions,
        db.org,
        lambda ch: build_notifier(ch.kind, ch.config, ch.secrets, client=client),
        retry=RetryPolicy(base_s=0.001, jitter=0.0, max_attempts=20),
        clock=clock,
        rng=random.Random(3),
        **options,
    )


def test_a_pass_commits_twice_and_sends_concurrently(db, receiver):
    clock = Clock()
    _alerts(db, receiver.url, 6, clock)
    receiver.answer(*[(200, 0.3, {})] * 6)  # each answer takes 0.3 s
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))
    with httpx.Client(timeout=5) as client:
        deliverer = _deliverer(db, client, clock, concurrency=3)
        start = time.perf_counter()
        assert deliverer.run_once().sent == 6
        elapsed = time.perf_counter() - start
    assert len(commits) == 2  # the claims, then the outcomes
    assert elapsed < 6 * 0.3  # at most three at a time: about two rounds of 0.3 s
    assert len({r.headers["webhook-id"] for r in receiver.ok()}) == 6


def test_failures_timeouts_and_429_still_deliver_every_message_once(db, receiver):
    """500 to every 3rd request, 429 (Retry-After: 0) to every 7th, every 10th too slow."""
    clock = Clock()
    _alerts(db, receiver.url, 24, clock)
    script = []
    for n in range(1, 200):
        if n % 10 == 0:
            script.append((503, 0.5, {}))  # answered after the client gave up
        elif n % 3 == 0:
            script.append((500, 0.0, {}))
        elif n % 7 == 0:
            script.append((429, 0.0, {"Retry-After": "0"}))
        else:
            script.append((200, 0.0, {}))
    receiver.answer(*script)
    with httpx.Client(timeout=0.25) as client:
        deliverer = _deliverer(db, client, clock)
        for _ in range(50):
            deliverer.run_once()
            clock.advance(1)
            with db.session() as s:
                if not s.scalars(
                    select(AlertOutbox).where(AlertOutbox.delivery == "pending")
                ).all():
                    break
    with db.session() as s:
        rows = s.scalars(select(AlertOutbox)).all()
        attempts = s.scalars(select(AlertDelivery)).all()
    assert {r.delivery for r in rows} == {"delivered"}
    messages = {r.notification_id for r in rows}
    assert len(messages) == 24
    accepted = Counter(r.headers["webhook-id"] for r in receiver.ok())
    assert accepted == Counter(dict.fromkeys(messages, 1))  # each accepted exactly once
    # every request is in the delivery log (and attempts refused before the receiver's
    # handler: its listen queue is shorter than the sends in flight)
    assert len(receiver.received) <= len(attempts)
    assert Counter(a.outcome for a in attempts)["delivered"] == 24
    assert {a.status_code for a in attempts if a.outcome == "retry"} == {500, 429, None}


class Exploding:
    """A notifier with a bug for one group: it raises something that is not a NotifyError."""

    def __init__(self, inner, victim: str) -> None:
        self.inner, self.victim = inner, victim

    def send(self, notification: Notification) -> int | None:
        if f'"{self.victim}"' in notification.group_key:
            raise KeyError("a bug")
        return self.inner.send(notification)


def test_a_bug_in_one_send_keeps_the_others_and_resends_it_with_its_id(db, receiver):
    clock = Clock()
    _alerts(db, receiver.url, 3, clock)
    with httpx.Client(timeout=5) as client:
        broken = True

        def notifier_for(channel: AlertChannel):
            inner = build_notifier(channel.kind, channel.config, channel.secrets, client=client)
            return Exploding(inner, "f1") if broken else inner

        deliverer = Deliverer(db.sessions, db.org, notifier_for, clock=clock)
        with pytest.raises(KeyError):
            deliverer.run_once()
        assert len(receiver.ok()) == 2  # the other two went out and are recorded
        with db.session() as s:
            left = s.scalars(select(AlertOutbox).where(AlertOutbox.delivery == "pending")).one()
        assert left.notification_id is not None  # claimed: the same message next time
        broken = False
        assert deliverer.run_once().sent == 1
    assert receiver.ok()[-1].headers["webhook-id"] == left.notification_id
    # the bug is no delivery failure: no attempt of it was logged
    with db.session() as s:
        logged = s.scalars(
            select(AlertDelivery).where(AlertDelivery.notification_id == left.notification_id)
        ).all()
    assert [(d.attempt, d.outcome) for d in logged] == [(1, "delivered")]
