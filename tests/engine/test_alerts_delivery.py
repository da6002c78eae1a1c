"""Evaluator -> outbox -> delivery pipeline, on SQLite and PostgreSQL, over real HTTP."""

import json
import random
from dataclasses import replace

import httpx
import orjson
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from engine.alerts.delivery import Deliverer, RetryPolicy
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import MemoryHistory
from engine.alerts.notifiers import build_notifier
from storage.models import AlertDelivery, AlertOutbox, AlertSilence, AlertState
from tests.engine import alerts_support
from tests.engine.alerts_support import Clock, window

# fixtures shared by the alerting tests
db = alerts_support.db
receiver = alerts_support.receiver

OLD = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_" + "c2VjcmV0LW51bWJlci10d28tZm9yLXJvdGF0aW9u"
PSI = {"kind": "drift_statistic", "statistic": "psi", "features": ["x"]}


@pytest.fixture
def http_client():
    with httpx.Client(timeout=1.0) as client:
        yield client


def _parts(db, clock, http_client, **retry):
    history = MemoryHistory()
    evaluator = AlertEvaluator(
        db.sessions,
        db.org,
        history,
        links={"grafana": "http://grafana/d/x?from={start_ms}&to={end_ms}"},
        clock=clock,
    )
    deliverer = Deliverer(
        db.sessions,
        db.org,
        lambda ch: build_notifier(ch.kind, ch.config, ch.secrets, client=http_client),
        retry=RetryPolicy(**({"jitter": 0.0} | retry)),
        clock=clock,
        rng=random.Random(1),
    )
    return evaluator, deliverer, history


def _outbox(db):
    with db.session() as s:
        return s.scalars(select(AlertOutbox).order_by(AlertOutbox.created_at)).all()


def test_fire_and_resolve_signed_webhook_with_two_secrets(db, receiver, http_client):
    clock = Clock()
    channel = db.channel(
        "webhook", {"url": receiver.url + "/hook"}, {"signing_secrets": [OLD, NEW]}
    )
    db.rule(PSI, for_windows=2, severity="critical")
    db.routing({"channels": [channel.id], "group_by": ["alertname"], "group_wait_ms": 10_000})
    evaluator, deliverer, history = _parts(db, clock, http_client)

    evaluator.on_window_closed(window(0, psi=0.3))  # pending
    assert _outbox(db) == []
    evaluator.on_window_closed(window(1, psi=0.35))  # firing -> one outbox row
    assert [r.status for r in _outbox(db)] == ["firing"]
    assert deliverer.run_once().sent == 0  # group_wait not over
    clock.advance(10)
    assert deliverer.run_once().sent == 1

    (got,) = receiver.ok()
    assert got.path == "/hook"
    for secret in (OLD, NEW):  # a receiver holding either secret verifies (rotation)
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["type"] == "alert.firing"
    data = orjson.loads(got.body)["data"]
    (alert,) = data["alerts"]
    assert alert["value"] == 0.35
    assert alert["threshold"] == 0.2
    assert alert["annotations"]["summary"] == "drift 0.35"
    assert alert["labels"]["feature"] == "x"
    assert alert["labels"]["severity"] == "critical"
    assert alert["links"]["grafana"].startswith("http://grafana/d/x?from=")
    assert got.headers["webhook-id"] == data["id"]

    evaluator.on_window_closed(window(2, psi=0.0))  # resolved
    clock.advance(301)  # group_interval
    assert deliverer.run_once().sent == 1
    resolved = orjson.loads(receiver.ok()[-1].body)
    assert resolved["type"] == "alert.resolved"
    assert resolved["data"]["alerts"][0]["endsAt"] is not None
    assert [t.state for t in history.transitions] == ["pending", "firing", "resolved"]


def test_retries_5xx_and_timeouts_then_delivers_once_per_key(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("webhook", {"url": receiver.url}, {"signing_secrets": [OLD]})
    db.rule(PSI)
    db.routing({"channels": [channel.id], "group_wait_ms": 0})
    evaluator, deliverer, _ = _parts(db, clock, http_client, base_s=2.0)
    receiver.answer(503, (200, 1.5, {}), 502)  # 503, a timeout (slow), 502, then 200
    evaluator.on_window_closed(window(0, psi=0.5))
    report = deliverer.run_once()
    assert report.retried == 1
    (row,) = _outbox(db)
    assert row.attempts == 1
    assert row.last_status_code == 503
    assert deliverer.run_once().sent == 0  # backoff: 2 s not over
    clock.advance(2)
    assert deliverer.run_once().retried == 1  # timeout
    clock.advance(4)
    assert deliverer.run_once().retried == 1  # 502
    clock.advance(8)
    assert deliverer.run_once().sent == 1
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 4
    assert len(ids) == 1
    with db.session() as s:
        log = s.scalars(select(AlertDelivery).order_by(AlertDelivery.attempt)).all()
    assert [(d.attempt, d.outcome, d.status_code) for d in log] == [
        (1, "retry", 503),
        (2, "retry", None),
        (3, "retry", 502),
        (4, "delivered", 200),
    ]


def test_4xx_is_permanent_and_429_honours_retry_after(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("slack", {}, {"url": receiver.url + "/slack"})
    db.rule(PSI)
    db.routing({"channels": [channel.id], "group_wait_ms": 0})
    evaluator, deliverer, _ = _parts(db, clock, http_client)
    receiver.answer((429, 0.0, {"Retry-After": "30"}), 400)
    evaluator.on_window_closed(window(0, psi=0.5))
    assert deliverer.run_once().retried == 1
    (row,) = _outbox(db)
    assert (
        row.next_attempt_at.replace(tzinfo=None) - clock.now.replace(tzinfo=None)
    ).total_seconds() == 30
    clock.advance(30)
    assert deliverer.run_once().dead == 1  # 400: no retry
    (row,) = _outbox(db)
    assert row.delivery == "dead"
    assert row.last_status_code == 400
    assert len(receiver.received) == 2
    body = orjson.loads(receiver.received[0].body)
    assert body["blocks"][0]["type"] == "header"


def test_refused_connection_is_retried_until_the_receiver_is_back(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("teams", {}, {"url": "http://127.0.0.1:9/down"})
    db.rule(PSI)
    db.routing({"channels": [channel.id], "group_wait_ms": 0})
    evaluator, deliverer, _ = _parts(db, clock, http_client)
    evaluator.on_window_closed(window(0, psi=0.5))
    for _ in range(3):  # down for a while
        assert deliverer.run_once().retried == 1
        clock.advance(60)
    with db.session() as s:
        s.get(type(channel), channel.id).secrets = {"url": receiver.url + "/teams"}
        s.commit()
    assert deliverer.run_once().sent == 1
    card = orjson.loads(receiver.ok()[0].body)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"


def test_outbox_survives_a_restart(db, receiver, http_client, db_url):
    """State change committed, process gone before delivery: a new process delivers it."""
    clock = Clock()
    channel = db.channel("mattermost", {}, {"url": receiver.url + "/mm"})
    db.rule(PSI)
    db.routing({"channels": [channel.id], "group_wait_ms": 0})
    evaluator, _, _ = _parts(db, clock, http_client)
    evaluator.on_window_closed(window(0, psi=0.5))
    db.engine.dispose()  # "kill": nothing but the database remains

    from storage.db import create_db_engine, session_factory

    engine = create_db_engine(db_url)
    fresh = type(db)(session_factory(engine), db.org, engine)
    _, deliverer, _ = _parts(fresh, clock, http_client)
    assert deliverer.run_once().sent == 1
    assert deliverer.run_once().sent == 0  # once
    assert len(receiver.ok()) == 1
    assert orjson.loads(receiver.ok()[0].body)["attachments"][0]["title"].startswith("FIRING")
    engine.dispose()


def test_claimed_message_is_resent_with_the_same_id_after_a_crash(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("webhook", {"url": receiver.url}, {})
    db.rule(PSI)
    db.routing({"channels": [channel.id], "group_wait_ms": 0})
    evaluator, deliverer, _ = _parts(db, clock, http_client)
    evaluator.on_window_closed(window(0, psi=0.5))
    receiver.answer((200, 1.5, {}))  # the answer never arrives in time: like a crash mid-send
    assert deliverer.run_once().retried == 1
    clock.advance(5)
    assert deliverer.run_once().sent == 1
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_dedup_repeat_interval_and_grouping(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("webhook", {"url": receiver.url}, {})
    db.rule({"kind": "drift_statistic", "statistic": "psi"})
    db.routing(
        {
            "channels": [channel.id],
            "group_by": ["alertname"],
            "group_wait_ms": 0,
            "group_interval_ms": 60_000,
            "repeat_interval_ms": 3_600_000,
        }
    )
    evaluator, deliverer, _ = _parts(db, clock, http_client)
    evaluator.on_window_closed(window(0, psi=0.5))
    assert deliverer.run_once().sent == 1
    for i in range(1, 5):  # still firing each window: nothing new to say
        evaluator.on_window_closed(window(i, psi=0.5))
        clock.advance(61)
        report = deliverer.run_once()
        assert report.sent == 0
        assert report.deduplicated == 1
    clock.advance(3600)
    evaluator.on_window_closed(window(5, psi=0.5))
    assert deliverer.run_once().sent == 1  # repeat_interval passed
    # feature y starts drifting too (same group): one message with both alerts
    both = window(6, psi=0.5)
    drift = tuple(r if r.feature == "x" else replace(r, value=0.9) for r in both.drift)
    evaluator.on_window_closed(replace(both, drift=drift))
    clock.advance(61)
    assert deliverer.run_once().sent == 1
    last = orjson.loads(receiver.ok()[-1].body)["data"]
    assert sorted(a["labels"]["feature"] for a in last["alerts"]) == ["x", "y"]
    assert last["groupLabels"] == {"alertname": "drift"}


def test_silences_and_inhibition_mute(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("webhook", {"url": receiver.url}, {})
    warn = db.rule(PSI, name="drift", severity="warning")
    crit = db.rule({"kind": "p_value", "statistic": "ks"}, name="drift-ks", severity="critical")
    db.routing({"channels": [channel.id], "group_by": ["..."], "group_wait_ms": 0})
    evaluator, deliverer, _ = _parts(db, clock, http_client)
    # the warning fires alone first: delivered
    evaluator.on_window_closed(window(0, psi=0.5))
    assert deliverer.run_once().sent == 1
    # a silence on the KS alert: its firing is suppressed
    db.add(
        AlertSilence(
            org_id=db.org,
            matchers=[{"name": "alertname", "value": "drift-ks"}],
            starts_at=clock.now,
            ends_at=clock.now.replace(year=2030),
            created_by="u",
            comment="known",
        )
    )
    evaluator.on_window_closed(window(1, psi=0.5, p=0.001))
    clock.advance(600)
    report = deliverer.run_once()
    assert report.suppressed >= 1
    sent = [orjson.loads(r.body)["data"]["alerts"] for r in receiver.ok()]
    assert all(a["labels"]["alertname"] != "drift-ks" for alerts in sent for a in alerts)
    assert warn.id
    assert crit.id


def test_inhibition_critical_mutes_warning_of_the_same_alertname(db, receiver, http_client):
    clock = Clock()
    channel = db.channel("webhook", {"url": receiver.url}, {})
    db.rule(PSI, name="drift", severity="warning")
    db.rule(
        {"kind": "drift_statistic", "statistic": "psi", "features": ["x"], "threshold": 0.4},
        name="drift-hi",
        severity="critical",
        labels={"alertname": "drift"},
    )
    db.routing({"channels": [channel.id], "group_by": ["..."], "group_wait_ms": 0})
    evaluator, deliverer, _ = _parts(db, clock, http_client)
    evaluator.on_window_closed(window(0, psi=0.5))  # both fire
    report = deliverer.run_once()
    assert report.suppressed == 1
    assert report.sent == 1
    (got,) = receiver.ok()
    (alert,) = orjson.loads(got.body)["data"]["alerts"]
    assert alert["labels"]["severity"] == "critical"
    with db.session() as s:
        states = {r.labels["severity"]: r.state for r in s.scalars(select(AlertState))}
    assert states == {"warning": "firing", "critical": "firing"}
    assert json.dumps(states)
