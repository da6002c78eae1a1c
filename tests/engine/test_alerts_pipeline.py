"""The evaluator plugged into the real pipeline as its WindowListener; history into chDB."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import ClickHouseHistory, MemoryHistory
from engine.deadletter import MemoryDeadLetters
from engine.pipeline import Pipeline
from engine.sinks import MemorySink
from storage.clickhouse import reader
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from storage.models import AlertOutbox, AlertState
from tests.engine import alerts_support
from tests.engine.helpers import NOW, T0, event, monitor

db = alerts_support.db
MINUTE = 60_000


def _minute(minute, shift):
    return [
        event(minute * 10_000 + i, T0 + minute * MINUTE + i * 100, shift=shift) for i in range(200)
    ]


def test_drift_in_the_pipeline_fires_and_resolves(db):
    history = MemoryHistory()
    db.rule(
        {"kind": "p_value", "statistic": "ks", "features": ["x"], "alpha": 0.01},
        name="ks-x",
        for_windows=2,
        annotations={"summary": "KS p={{ '%.1e'|format(value) }} <= {{ threshold }}"},
    )
    channel = db.channel("webhook", {"url": "http://127.0.0.1:9"})
    listener = AlertEvaluator(db.sessions, db.org, history)
    pipeline = Pipeline(
        organization=db.org,
        monitors=[monitor()],
        sink=MemorySink(),
        dead_letters=MemoryDeadLetters(),
        listener=listener,
        clock=lambda: NOW,
    )
    shifts = [0.0, 1.5, 1.5, 1.5, 0.0, 0.0]
    for minute, shift in enumerate(shifts):
        pipeline.ingest(_minute(minute, shift))
    pipeline.flush()
    assert [t.state for t in history.transitions] == ["pending", "firing", "resolved"]
    firing = history.transitions[1]
    assert firing.changed_at_ms == T0 + 3 * MINUTE  # the second drifted window's end
    assert firing.value <= 0.01
    assert firing.message.startswith("KS p=")
    assert "<= 0.01" in firing.message
    with db.session() as s:
        (state,) = s.scalars(select(AlertState)).all()
        statuses = [r.status for r in s.scalars(select(AlertOutbox))]
    assert state.state == "resolved"
    assert statuses == ["firing", "firing", "resolved"]  # each firing window, then resolved
    assert channel.id


class Retried:
    """Writes every batch twice, as a retry after a lost acknowledgement would."""

    def __init__(self, inner):
        self.inner = inner

    def write(self, batch_id, transitions):
        self.inner.write(batch_id, transitions)
        self.inner.write(batch_id, transitions)


def test_history_lands_in_clickhouse_once(chdb_url, db):
    with connect(chdb_url) as client:
        migrate(client, MigrationParams(ttl_days=3650, dedup_window=1000))
        history = Retried(ClickHouseHistory(client, db.org))
        db.rule({"kind": "drift_statistic", "statistic": "psi", "features": ["x"]})
        evaluator = AlertEvaluator(db.sessions, db.org, history)
        evaluator.on_window_closed(alerts_support.window(0, psi=0.5))
        evaluator.on_window_closed(alerts_support.window(1, psi=0.0))
        start = datetime.fromtimestamp(alerts_support.T0 / 1000, tz=UTC)
        table = reader.alert_history(
            client, organization=db.org, start=start, end=start + timedelta(hours=1)
        )
        assert table.column("state").to_pylist() == ["resolved", "firing"]
        assert table.column("message").to_pylist()[1] == "drift 0.50"
        with db.session() as s:
            (state,) = s.scalars(select(AlertState)).all()
        assert table.column("alert_id").to_pylist() == [state.id, state.id]
