"""The evaluator's few-statements path against the plain lifecycle, on SQLite and PostgreSQL.

An oracle steps every series with :func:`engine.alerts.lifecycle.step` one window at a time
(what the evaluator did row by row before it learnt to skip the series a window does not
change); the evaluator must end with the same states, history and outbox, also when it is
restarted, when two processes take turns, when a commit fails and the window comes again,
and when rules are edited or disabled in between.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy import event, select

from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.fingerprint import fingerprint
from engine.alerts.history import MemoryHistory
from engine.alerts.lifecycle import Series, Timing, step
from engine.alerts.rules import Condition, evaluate
from engine.results import DriftRow, WindowResult
from storage.models import (
    AlertChannel,
    AlertOutbox,
    AlertRouting,
    AlertRule,
    AlertState,
    Organization,
)
from storage.tenancy import scope_to
from tests.engine import alerts_support
from tests.engine.alerts_support import MINUTE, T0, Clock, Db, window

db = alerts_support.db

FEATURES = ("f0", "f1", "f2", "f3")
_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


class Ticking(Clock):
    """A clock one millisecond later at every call: outbox rows keep their order."""

    def __call__(self) -> Any:
        self.advance(0.001)
        return self.now


def _window(i: int, psi: dict[str, float], p: dict[str, float], errors: int) -> WindowResult:
    rows = []
    for feature in FEATURES:
        gone = feature not in psi  # too few events for this feature in this window
        value, pv = psi.get(feature, 0.0), p.get(feature, 0.5)
        rows.append(DriftRow(feature, "psi", value, None, None, 0.2, False, 1000, 900, gone))
        rows.append(DriftRow(feature, "ks", 0.1, pv, pv, 0.05, False, 1000, 900, gone))
    return replace(window(i), drift=tuple(rows), errors=errors)


# --- the oracle: every series stepped at every window, as the rows were before


@dataclass
class Oracle:
    """States, history and outbox of the plain row-by-row evaluation.

    One rule for replays on top of :func:`step`'s own: an inactive or resolved series is
    not moved by a window that ends at or before the last one its rule was evaluated on
    (``watermark``), even if the series itself did not see that window.
    """

    rules: dict[str, dict[str, Any]]
    watermark: dict[str, int] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    written: dict[str, Series] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    batches: dict[str, list[tuple[str, str, int, float]]] = field(default_factory=dict)
    outbox: list[tuple[str, str, str]] = field(default_factory=list)

    def close(self, result: WindowResult) -> None:
        transitions: list[tuple[str, str, int, float]] = []
        for rule_id, rule in self.rules.items():
            if not rule["enabled"]:
                continue
            samples = evaluate(_CONDITION.validate_python(rule["condition"]), result)
            timing = Timing(rule["for_windows"], rule["for_ms"], rule["keep_firing_for_ms"])
            watermark = self.watermark.get(rule_id, -1)
            if samples:
                self.watermark[rule_id] = max(watermark, result.end_ms)
            for sample in samples or ():
                labels = {"alertname": rule["name"]} | rule["labels"] | sample.labels
                labels |= {"deployment": result.deployment, "severity": "warning"}
                fp = fingerprint(rule_id, labels)
                before = self.series.get(fp)
                settled = before is not None and before.state in ("inactive", "resolved")
                if settled and result.end_ms <= watermark:
                    continue
                after, moved = step(
                    before,
                    active=sample.active,
                    value=sample.value,
                    start_ms=result.start_ms,
                    end_ms=result.end_ms,
                    timing=timing,
                )
                if after is before:
                    continue
                self.series[fp], self.names[fp] = after, rule["name"]
                if moved is not None:
                    self.seq[fp] = self.seq.get(fp, 0) + 1
                    transitions.append((fp, moved, after.evaluated_at_ms, after.value))
                if after.state == "firing" or moved == "resolved":
                    self.outbox.append((fp, str(after.evaluated_at_ms), after.state))
                if _rewritten(before, after, moved):
                    self.written[fp] = after
        if transitions:  # as the history keeps them: one batch per window, the last one
            self.batches[f"alerts/{result.key}/{result.phase}"] = transitions


def _rewritten(before: Series | None, after: Series, moved: str | None) -> bool:
    """Whether a window rewrites a series' row: new, moved, firing (a notification), or
    anything but its value and evaluated window changed."""
    if before is None or moved is not None or after.state == "firing":
        return True
    return replace(after, value=0.0, evaluated_at_ms=0) != replace(
        before, value=0.0, evaluated_at_ms=0
    )


def _check(db: Db, org: str, oracle: Oracle, history: MemoryHistory) -> None:
    with scope_to(db.sessions(), org) as s:
        rows = {r.fingerprint: r for r in s.scalars(select(AlertState))}
        outbox = s.scalars(select(AlertOutbox).order_by(AlertOutbox.created_at)).all()
    assert set(rows) == set(oracle.series)
    for fp, row in rows.items():
        truth, written = oracle.series[fp], oracle.written[fp]
        stored = (row.state, row.streak, row.active_since_ms, row.last_active_ms)
        assert stored == (truth.state, truth.streak, truth.active_since_ms, truth.last_active_ms)
        assert (row.fired_at_ms, row.resolved_at_ms) == (truth.fired_at_ms, truth.resolved_at_ms)
        # value and annotations: those of the last window that changed the series
        assert row.value == written.value
        assert row.annotations == {"summary": f"{oracle.names[fp]} {written.value:.2f}"}
        assert written.evaluated_at_ms <= row.evaluated_at_ms <= truth.evaluated_at_ms
        assert row.seq == oracle.seq.get(fp, 0)
    # the rules of a window come in the database's order (PostgreSQL's moves updated rows)
    got = [
        sorted((t.fingerprint, t.state, t.changed_at_ms, t.value) for t in batch)
        for batch in history.batches.values()
    ]
    assert got == [sorted(batch) for batch in oracle.batches.values()]
    keys = [r.idempotency_key.split(":") for r in outbox]
    assert sorted((k[0], k[1], k[2]) for k in keys) == sorted(oracle.outbox)


_PSI = {"kind": "drift_statistic", "statistic": "psi"}
_KS = {"kind": "p_value", "statistic": "ks", "alpha": 0.05}
_rule = st.fixed_dictionaries(
    {
        "condition": st.sampled_from([_PSI, _KS, {"kind": "error_rate", "threshold": 0.05}]),
        "for_windows": st.integers(1, 3),
        "for_ms": st.sampled_from([0, 2 * MINUTE]),
        "keep_firing_for_ms": st.sampled_from([0, 2 * MINUTE]),
    }
)
_window_step = st.tuples(
    st.just("window"),
    st.dictionaries(st.sampled_from(FEATURES), st.sampled_from([0.05, 0.3]), min_size=1),
    st.dictionaries(st.sampled_from(FEATURES), st.sampled_from([0.01, 0.5])),
    st.sampled_from([0, 100]),
)
_step = st.one_of(
    _window_step,  # about half of the steps close a new window
    _window_step,
    _window_step,
    st.tuples(st.just("replay"), st.integers(0, 100)),
    st.tuples(st.sampled_from(["restart", "other process", "failed commit"])),
    st.tuples(st.sampled_from(["relabel", "toggle"]), st.integers(0, 2)),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rules=st.lists(_rule, min_size=1, max_size=3), steps=st.lists(_step, min_size=8, max_size=30)
)
@example(  # a rule relabelled, then windows handed over again: new series, settled ones
    rules=[
        {"condition": _KS, "for_windows": 2, "for_ms": 0, "keep_firing_for_ms": 0},
        {"condition": _KS, "for_windows": 1, "for_ms": 0, "keep_firing_for_ms": 2 * MINUTE},
    ],
    steps=[
        ("window", {f: 0.1 for f in FEATURES}, {"f0": 0.01, "f1": 0.01}, 0),
        ("window", {f: 0.1 for f in FEATURES}, {"f1": 0.01, "f3": 0.01}, 0),
        ("window", {"f0": 0.1}, {"f0": 0.01}, 0),
        ("relabel", 0),
        ("replay", 1),
        ("replay", 2),
    ],
)
@example(  # a window closed while the rule was disabled, handed over again after a restart
    rules=[{"condition": _PSI, "for_windows": 1, "for_ms": 0, "keep_firing_for_ms": 0}],
    steps=[
        ("window", {"f0": 0.3}, {}, 0),
        ("window", {"f0": 0.05}, {}, 0),
        ("toggle", 0),
        ("window", {"f0": 0.3}, {}, 0),
        ("toggle", 0),
        ("window", {"f0": 0.05}, {}, 0),
        ("restart",),
        ("replay", 2),
    ],
)
def test_the_evaluator_agrees_with_the_plain_lifecycle(db, rules, steps):
    scenario(db, rules, steps)


def scenario(db: Db, rules: list[dict[str, Any]], steps: list[tuple[Any, ...]]) -> None:
    """Rules with these settings, then the steps: the evaluator must agree with the oracle."""
    org = _organization(db)
    specs = {}
    for n, spec in enumerate(rules):
        spec = spec | {"name": f"r{n}", "labels": {}, "enabled": True}
        specs[_add_rule(db, org, spec)] = spec
    oracle = Oracle(specs)
    history = MemoryHistory()
    clock = Ticking()
    processes = [AlertEvaluator(db.sessions, org, history, clock=clock) for _ in range(2)]
    current, sent, failing = 0, [], False
    armed = [False]  # fail the evaluator's commit, not the test's own

    def fail(session):
        if armed[0]:
            raise RuntimeError("the database went away")

    event.listen(db.sessions, "before_commit", fail)
    try:
        for item in steps:
            if item[0] == "window":
                sent.append(_window(len(sent), item[1], item[2], item[3]))
            if item[0] in ("window", "replay") and sent:
                result = sent[-1] if item[0] == "window" else sent[item[1] % len(sent)]
                if failing:  # the close fails; the pipeline hands the window over again
                    armed[0] = True
                    with contextlib.suppress(RuntimeError):
                        processes[current].on_window_closed(result)
                    armed[0] = failing = False
                processes[current].on_window_closed(result)
                oracle.close(result)
            elif item[0] == "restart":
                processes[current] = AlertEvaluator(db.sessions, org, history, clock=clock)
            elif item[0] == "other process":
                current = 1 - current
            elif item[0] == "failed commit":
                failing = True
            elif item[0] in ("relabel", "toggle"):
                rule_id = sorted(specs)[item[1] % len(specs)]
                spec = specs[rule_id]
                if item[0] == "relabel":
                    spec["labels"] = {} if spec["labels"] else {"team": "ml"}
                else:
                    spec["enabled"] = not spec["enabled"]
                with scope_to(db.sessions(), org) as s:
                    stored = s.get(AlertRule, rule_id)
                    stored.labels, stored.enabled = spec["labels"], spec["enabled"]
                    s.commit()
    finally:
        event.remove(db.sessions, "before_commit", fail)
    _check(db, org, oracle, history)


def _organization(db: Db) -> str:
    """A new organization whose alerts all go to one webhook channel."""
    org = Organization(id=str(uuid.uuid4()), slug=f"o-{uuid.uuid4().hex[:12]}", name="Prop")
    db.add(org)
    channel = AlertChannel(
        id=str(uuid.uuid4()), org_id=org.id, name="hook", kind="webhook",
        config={"url": "http://127.0.0.1:9"}, secrets={}, send_resolved=True,
    )  # fmt: skip
    routing = AlertRouting(id=str(uuid.uuid4()), org_id=org.id, tree={"channels": [channel.id]})
    db.add(channel, routing)
    return org.id


def _add_rule(db: Db, org: str, spec: dict[str, Any]) -> str:
    rule = AlertRule(
        id=str(uuid.uuid4()),
        org_id=org,
        deployment="d",
        severity="warning",
        annotations={"summary": "{{ rule }} {{ '%.2f'|format(value) }}"},
        **spec,
    )
    db.add(rule)
    return rule.id


# --- what a steady close writes


class Statements:
    """Counts the rows each kind of statement touches (executemany: one per parameter set)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.rows: dict[str, int] = {}
        event.listen(engine, "before_cursor_execute", self.count)

    def count(self, conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        if words[0] == "INSERT":  # INSERT INTO <table>
            name = f"INSERT {words[2]}"
        elif words[0] == "UPDATE":  # UPDATE <table> SET
            name = f"UPDATE {words[1]}"
        else:
            name = words[0]
        self.rows[name] = self.rows.get(name, 0) + (len(parameters) if executemany else 1)


def test_a_steady_close_writes_only_the_series_it_changes(db):
    """x fires at every window, y stays inactive: only x's row and outbox row are written."""
    db.rule({"kind": "drift_statistic", "statistic": "psi"})
    channel = db.channel("webhook", {"url": "http://127.0.0.1:9"})
    db.routing({"channels": [channel.id], "group_wait_ms": 0})
    clock = Ticking()
    evaluator = AlertEvaluator(db.sessions, db.org, MemoryHistory(), clock=clock)
    evaluator.on_window_closed(window(0, psi=0.5))  # both rows created, x fires
    with db.session() as s:
        quiet = s.scalars(select(AlertState).where(AlertState.state == "inactive")).one()
    counted = Statements(db.engine)
    for i in range(1, 4):
        evaluator.on_window_closed(window(i, psi=0.5))
    event.remove(db.engine, "before_cursor_execute", counted.count)
    assert counted.rows.get("UPDATE alert_states") == 3  # x at each of the three windows
    assert counted.rows.get("INSERT alert_outbox") == 3
    assert "INSERT alert_states" not in counted.rows
    with db.session() as s:
        again = s.get(AlertState, quiet.id)
        firing = s.scalars(select(AlertState).where(AlertState.state == "firing")).one()
    assert (again.evaluated_at_ms, again.updated_at) == (quiet.evaluated_at_ms, quiet.updated_at)
    assert firing.streak == 4
    assert firing.evaluated_at_ms == T0 + 4 * MINUTE


def test_a_series_turning_active_is_stepped_from_its_row(db):
    """A quiet series another process moved on is read before it changes: seq and times."""
    rule = db.rule({"kind": "drift_statistic", "statistic": "psi", "features": ["x"]})
    history = MemoryHistory()
    first = AlertEvaluator(db.sessions, db.org, history)
    second = AlertEvaluator(db.sessions, db.org, history)
    first.on_window_closed(window(0, psi=0.0))  # x inactive: first knows the row
    second.on_window_closed(window(1, psi=0.5))  # fires
    second.on_window_closed(window(2, psi=0.0))  # resolves
    first.on_window_closed(window(3, psi=0.5))  # fires again: from the row, not its memory
    with db.session() as s:
        (row,) = s.scalars(select(AlertState).where(AlertState.rule_id == rule.id)).all()
    assert (row.state, row.seq, row.fired_at_ms) == ("firing", 3, T0 + 4 * MINUTE)
    assert [t.state for t in history.transitions] == ["firing", "resolved", "firing"]
