"""The engine's :class:`~engine.sinks.WindowListener` for alerts.

One closed window in; the alert states, their history and their notifications out.

For each enabled rule that applies to the window (:mod:`.targets`), the condition's samples
step the series' lifecycle (:mod:`.lifecycle`). Transitions go to the history (ClickHouse,
idempotent by the window's key) first, then in ONE control-database transaction: the
current states and the outbox rows of the notifications they cause - a firing row for each
route that takes the alert at every window it fires (the dedup stage turns repeats into a
message only after ``repeat_interval``), a resolved row when it resolves. A crash before
the commit loses nothing: the window is evaluated again (history deduplicated); after it,
the outbox holds the notification until the delivery pipeline reports it sent.

Only what a window changes is read and written (:mod:`.states`). Most series of a rule are
inactive (or resolved) and stay so in a window where they are inactive: their rows are
left as they were (``value``, ``annotations`` and ``evaluated_at_ms`` are those of the
last window that changed the series). The others are stepped from their rows as read in
the transaction: the pending and firing ones, and those turning active. Knowing which
series have a row, and the last window each saw, comes from a per-rule memory of this
process (:class:`_Known`), loaded once from the database and kept up to date; it never
decides a step on its own, so another process evaluating the same rules in between (a
partition moved, a restart) leaves it correct.

Windows handed over again (replays): a pending or firing series ignores a window that ends
at or before its row's ``evaluated_at_ms`` (:func:`.lifecycle.step`); an inactive or
resolved one, whose row may be older than the windows it saw, ignores any window that ends
at or before the rule's watermark - the last window of that deployment the rule was
evaluated on. The watermark lives in the rows (their largest ``evaluated_at_ms``): when no
row of the rule changes in a window, one unchanged row's ``evaluated_at_ms`` moves to it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerts import states
from engine.alerts.fingerprint import fingerprint
from engine.alerts.history import HistoryWriter, Transition
from engine.alerts.lifecycle import Series, Timing, step
from engine.alerts.notifiers.base import AlertPayload
from engine.alerts.routing import Route, group_key, match
from engine.alerts.rules import Condition, Readings, Sample, read
from engine.alerts.states import Rows, Stored
from engine.alerts.targets import rules_for_window, rules_left_behind
from engine.alerts.templates import render_all
from engine.results import WindowResult
from storage.models import AlertChannel, AlertRouting, AlertRule
from storage.tenancy import scope_to

__all__ = ["AlertEvaluator", "iso_ms", "load_route"]

_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2025-11-27T10:00:00Z``)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_route(session: Session) -> Route:
    """The session organization's routing tree.

    Without a stored tree: every channel, grouped by rule name and deployment.
    """
    stored = session.scalars(select(AlertRouting)).first()
    if stored is not None:
        return Route.model_validate(stored.tree)
    channels = tuple(session.scalars(select(AlertChannel.id).order_by(AlertChannel.name)))
    return Route(channels=channels, group_by=("alertname", "deployment"))


@dataclass(slots=True)
class _Series:
    """One series as the evaluating process knows it: its identity and the last window it saw.

    ``evaluated`` is the end of that window (at least its row's ``evaluated_at_ms``), or
    ``None`` when no row of it is known.
    """

    fingerprint: str
    labels: dict[str, str]
    evaluated: int | None


@dataclass
class _Known:
    """What the evaluating process remembers of one rule's series.

    ``named``: per window deployment and statistic, a reading's key (:class:`Readings`) ->
    the series (valid while the rule's ``signature`` - name, severity, labels - stays).
    ``unnamed``: the rule's rows not met in a reading yet, fingerprint ->
    ``evaluated_at_ms``. ``watermark``: per window deployment, the end of the last window
    the rule was evaluated on (:func:`.states.watermark`). ``deployments``: the window
    deployments it served, to forget rules that no longer apply.
    """

    signature: tuple[Any, ...]
    unnamed: dict[str, int]
    watermark: dict[str, int]
    named: dict[tuple[str, str | None], dict[str, _Series]] = field(default_factory=dict)
    deployments: set[str] = field(default_factory=set)


@dataclass
class _Close:
    """One window close in progress: its transaction and what it writes."""

    session: Session
    result: WindowResult
    window_start: str
    window_end: str
    hot: dict[str, Stored] | None = None
    route: Route | None = None
    rows: Rows = field(default_factory=Rows)
    transitions: list[Transition] = field(default_factory=list)


@dataclass(frozen=True)
class _Alert:
    """One series after the window, as its row now reads."""

    id: str
    rule_id: str
    deployment: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    series: Series


@dataclass
class AlertEvaluator:
    """Evaluates one organization's rules at every closed window (a ``WindowListener``).

    ``links`` maps a link name to a URL template with ``{deployment}``, ``{start_ms}`` and
    ``{end_ms}`` (for example a Grafana panel over the window). Called by one pipeline at a
    time (the engine holds the organization's lock), as its memory of the series assumes.
    """

    sessions: sessionmaker[Session]
    organization: str
    history: HistoryWriter
    links: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _known: dict[str, _Known] = field(default_factory=dict, init=False, repr=False)

    def on_window_closed(self, result: WindowResult) -> None:
        """Step every rule that applies to the window (:mod:`.targets`); see the module doc."""
        with self.sessions() as session:
            scope_to(session, self.organization)
            rules = rules_for_window(
                session, organization=self.organization, deployment=result.deployment
            )
            self._forget(result.deployment, rules)
            behind = rules_left_behind(
                session,
                organization=self.organization,
                deployment=result.deployment,
                applicable=[rule.id for rule in rules],
            )
            if not rules and not behind:
                return
            close = _Close(session, result, iso_ms(result.start_ms), iso_ms(result.end_ms))
            try:
                for rule in rules:
                    readings = read(_CONDITION.validate_python(rule.condition), result)
                    if readings is not None and readings.keys:
                        self._evaluate(close, rules, rule, readings)
                for rule in behind:
                    self._let_go(close, rule)
                self.history.write(f"alerts/{result.key}/{result.phase}", close.transitions)
                states.write(session, self.organization, close.rows)
                session.commit()
            except BaseException:
                self._known.clear()  # it may hold steps that were not committed
                raise

    def _forget(self, deployment: str, rules: Sequence[AlertRule]) -> None:
        applies = {rule.id for rule in rules}
        for rule_id, known in list(self._known.items()):
            if rule_id not in applies and deployment in known.deployments:
                known.deployments.discard(deployment)
                if not known.deployments:
                    del self._known[rule_id]

    def _let_go(self, close: _Close, rule: AlertRule) -> None:
        """Step the rule's pending and firing series on this deployment as inactive.

        The rule's target alias moved away from the deployment: its alerts there resolve
        (after ``keep_firing_for``, if set) instead of firing forever.
        """
        timing = Timing(rule.for_windows, rule.for_ms, rule.keep_firing_for_ms)
        for fp, labels, stored in states.hot_on(
            close.session, self.organization, rule.id, close.result.deployment
        ):
            value = stored.series.value
            sample = Sample(value=value, threshold=math.nan, active=False)
            self._step(close, rule, sample, _Series(fp, labels, None), stored, timing)

    def _remember(self, session: Session, rule: AlertRule) -> tuple[_Known, bool]:
        """The rule's memory, and whether it was loaded now (then it knows every row)."""
        signature = (rule.name, rule.severity, tuple(sorted(rule.labels.items())))
        known = self._known.get(rule.id)
        if known is None:
            unnamed, watermark = states.evaluated(session, self.organization, rule.id)
            known = self._known[rule.id] = _Known(signature, unnamed, watermark)
            return known, True
        if known.signature != signature:  # other labels: other series
            known.signature, known.named = signature, {}
        return known, False

    def _evaluate(
        self, close: _Close, rules: Sequence[AlertRule], rule: AlertRule, readings: Readings
    ) -> None:
        end, deployment = close.result.end_ms, close.result.deployment
        known, complete = self._remember(close.session, rule)
        known.deployments.add(deployment)
        if close.hot is None:
            close.hot = states.hot(close.session, self.organization, [r.id for r in rules])
        hot, active = close.hot, readings.active
        # an inactive or resolved row may be older than the windows its series saw: none of
        # them changed it. Up to the rule's watermark, a window is one the series saw.
        floor = known.watermark.get(deployment, -1)
        named = known.named.setdefault((deployment, readings.statistic), {})
        stepping: list[tuple[int, _Series]] = []
        unread: list[str] = []
        quiet: str | None = None
        for i, key in enumerate(readings.keys):
            series = named.get(key)
            if series is None:
                fp, labels = self._name(rule, readings.labels(key), deployment)
                series = named[key] = _Series(fp, labels, known.unnamed.pop(fp, None))
            seen = series.evaluated
            if seen is not None:
                if end <= seen:
                    continue  # a window this series saw already
                if series.fingerprint not in hot:
                    if not active[i]:  # inactive or resolved, and stays so: row unchanged
                        series.evaluated = end
                        quiet = quiet or series.fingerprint
                        continue
                    if end <= floor:
                        continue  # turning active in a window it saw already (a replay)
            stepping.append((i, series))
            if series.fingerprint not in hot and (seen is not None or not complete):
                unread.append(series.fingerprint)  # its row (another process's, maybe) decides
        if unread and not complete:  # another process may have evaluated later windows
            floor = max(
                floor, states.watermark(close.session, self.organization, rule.id, deployment) or -1
            )
        found = states.by_fingerprint(close.session, self.organization, unread) if unread else {}
        timing = Timing(rule.for_windows, rule.for_ms, rule.keep_firing_for_ms)
        written = False
        for i, series in stepping:
            if series.evaluated is not None and series.evaluated >= end:
                continue  # the same series twice in one window: the first one counts
            stored = hot.get(series.fingerprint) or found.get(series.fingerprint)
            if stored is not None and series.fingerprint not in hot and end <= floor:
                continue  # as above: a window its series saw already
            sample = readings.sample(i)
            series.evaluated = self._step(close, rule, sample, series, stored, timing)
            written = written or series.evaluated >= end
        if end > floor:
            if not written and quiet is not None:  # keep the watermark in the rows
                close.rows.seen.append({"row_fp": quiet, "end_ms": end})
            floor = end
        known.watermark[deployment] = floor

    @staticmethod
    def _name(
        rule: AlertRule, extra: dict[str, str], deployment: str
    ) -> tuple[str, dict[str, str]]:
        # a rule may set ``alertname`` (two rules, warning and critical, sharing one name
        # for inhibition); the severity is always the rule's, the deployment the window's
        labels = {"alertname": rule.name} | rule.labels | extra
        labels |= {"deployment": deployment, "severity": rule.severity}
        return fingerprint(rule.id, labels), labels

    def _step(
        self,
        close: _Close,
        rule: AlertRule,
        sample: Sample,
        tracked: _Series,
        stored: Stored | None,
        timing: Timing,
    ) -> int:
        """Step one series from its row (``None``: it has none yet); its new evaluated end."""
        result, fp, labels = close.result, tracked.fingerprint, tracked.labels
        before = stored.series if stored is not None else None
        series, moved = step(
            before,
            active=sample.active,
            value=sample.value,
            start_ms=result.start_ms,
            end_ms=result.end_ms,
            timing=timing,
        )
        if series is before:
            return series.evaluated_at_ms  # its row saw this window already
        context = {
            "value": sample.value,
            "threshold": sample.threshold,
            "labels": labels,
            "rule": rule.name,
            "severity": rule.severity,
            "deployment": result.deployment,
            "window_start": close.window_start,
            "window_end": close.window_end,
            "state": series.state,
        }
        annotations = render_all(rule.annotations, context)
        values: dict[str, Any] = {
            "annotations": annotations,
            "state": series.state,
            "value": series.value,
            "streak": series.streak,
            "active_since_ms": series.active_since_ms,
            "last_active_ms": series.last_active_ms,
            "fired_at_ms": series.fired_at_ms,
            "resolved_at_ms": series.resolved_at_ms,
            "evaluated_at_ms": series.evaluated_at_ms,
            "seq": (stored.seq if stored is not None else 0) + (moved is not None),
            "updated_at": self.clock(),
        }
        if stored is None:
            row_id = str(uuid.uuid4())
            close.rows.new.append(
                values
                | {
                    "id": row_id,
                    "org_id": self.organization,
                    "rule_id": rule.id,
                    "fingerprint": fp,
                    "deployment": result.deployment,
                    "severity": rule.severity,
                    "labels": labels,
                    "acknowledged_at": None,
                    "acknowledged_by": None,
                }
            )
        elif moved == "firing":  # firing again: a new acknowledgement is needed
            row_id = stored.id
            cleared = {"acknowledged_at": None, "acknowledged_by": None}
            close.rows.fired.append(values | cleared | {"row_id": row_id})
        else:
            row_id = stored.id
            close.rows.changed.append(values | {"row_id": row_id})
        alert = _Alert(row_id, rule.id, result.deployment, fp, labels, annotations, series)
        if moved is not None:
            close.transitions.append(_transition(alert, moved))
        if series.state == "firing" or moved == "resolved":
            self._enqueue(close, alert, series.state, sample)
        return series.evaluated_at_ms

    def _enqueue(self, close: _Close, alert: _Alert, status: str, sample: Sample) -> None:
        series = alert.series
        payload = AlertPayload(
            fingerprint=alert.fingerprint,
            status=status,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            value=sample.value,
            threshold=sample.threshold,
            starts_at=iso_ms(series.fired_at_ms or series.evaluated_at_ms),
            ends_at=iso_ms(series.resolved_at_ms) if series.resolved_at_ms is not None else None,
            links=self._links(alert),
        ).as_json()
        now = self.clock()
        if close.route is None:
            close.route = load_route(close.session)
        for found in match(close.route, alert.labels):
            key = group_key(found, alert.labels)
            for channel_id in found.channels:
                close.rows.outbox.append(
                    {
                        "id": str(uuid.uuid4()),
                        "org_id": self.organization,
                        "idempotency_key": (
                            f"{alert.fingerprint}:{series.evaluated_at_ms}:{status}:{channel_id}"
                            f":{found.path}"
                        ),
                        "channel_id": channel_id,
                        "group_key": key,
                        "fingerprint": alert.fingerprint,
                        "status": status,
                        "alert": payload,
                        "group_wait_ms": found.group_wait_ms,
                        "group_interval_ms": found.group_interval_ms,
                        "repeat_interval_ms": found.repeat_interval_ms,
                        "delivery": "pending",
                        "attempts": 0,
                        "next_attempt_at": None,
                        "last_error": "",
                        "created_at": now,
                    }
                )

    def _links(self, alert: _Alert) -> dict[str, str]:
        series = alert.series
        start = series.active_since_ms or series.fired_at_ms or series.evaluated_at_ms
        values: dict[str, Any] = {
            "deployment": alert.deployment,
            "start_ms": start,
            "end_ms": series.evaluated_at_ms,
        }
        return {name: url.format(**values) for name, url in self.links.items()}


def _transition(alert: _Alert, moved: str) -> Transition:
    return Transition(
        alert_id=alert.id,
        rule_id=alert.rule_id,
        deployment=alert.deployment,
        fingerprint=alert.fingerprint,
        state=moved,
        changed_at_ms=alert.series.evaluated_at_ms,
        value=alert.series.value,
        message=alert.annotations.get("summary", ""),
        labels=dict(alert.labels),
    )
