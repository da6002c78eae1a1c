"""The engine's :class:`~engine.sinks.WindowListener` for alerts.

One closed window in; the alert states, their history and their notifications out.

For each enabled rule of the window's deployment, the condition's samples step the series'
lifecycle (:mod:`.lifecycle`). Transitions go to the history (ClickHouse, idempotent by the
window's key) first, then in ONE control-database transaction: the current states and the
outbox rows of the notifications they cause - a firing row for each route that takes the
alert at every window it fires (the dedup stage turns repeats into a message only after
``repeat_interval``), a resolved row when it resolves. A crash before the commit loses
nothing: the window is evaluated again (history deduplicated); after it, the outbox holds
the notification until the delivery pipeline reports it sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerts.fingerprint import fingerprint
from engine.alerts.history import HistoryWriter, Transition
from engine.alerts.lifecycle import Series, Timing, step
from engine.alerts.notifiers.base import AlertPayload
from engine.alerts.routing import Route, group_key, match
from engine.alerts.rules import Condition, Sample, evaluate
from engine.alerts.targets import rules_for_window
from engine.alerts.templates import render_all
from engine.results import WindowResult
from storage.models import AlertChannel, AlertOutbox, AlertRouting, AlertRule, AlertState
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


def _series(row: AlertState) -> Series:
    return Series(
        state=row.state,  # type: ignore[arg-type]
        value=row.value,
        streak=row.streak,
        active_since_ms=row.active_since_ms,
        last_active_ms=row.last_active_ms,
        fired_at_ms=row.fired_at_ms,
        resolved_at_ms=row.resolved_at_ms,
        evaluated_at_ms=row.evaluated_at_ms,
    )


@dataclass
class AlertEvaluator:
    """Evaluates one organization's rules at every closed window (a ``WindowListener``).

    ``links`` maps a link name to a URL template with ``{deployment}``, ``{start_ms}`` and
    ``{end_ms}`` (for example a Grafana panel over the window).
    """

    sessions: sessionmaker[Session]
    organization: str
    history: HistoryWriter
    links: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def on_window_closed(self, result: WindowResult) -> None:
        """Step every rule that applies to the window (:mod:`.targets`); see the module doc."""
        with self.sessions() as session:
            scope_to(session, self.organization)
            rules = rules_for_window(
                session, organization=self.organization, deployment=result.deployment
            )
            if not rules:
                return
            rows = session.scalars(
                select(AlertState).where(AlertState.rule_id.in_([r.id for r in rules]))
            ).all()
            states = {row.fingerprint: row for row in rows}
            route: Route | None = None
            transitions: list[Transition] = []
            for rule in rules:
                samples = evaluate(_CONDITION.validate_python(rule.condition), result)
                for sample in samples or ():
                    moved, row, notify = self._step(session, rule, sample, result, states)
                    if moved is not None:
                        transitions.append(_transition(row, moved))
                    if notify is not None:
                        route = route or load_route(session)
                        self._enqueue(session, route, row, notify, sample)
            self.history.write(f"alerts/{result.key}/{result.phase}", transitions)
            session.commit()

    def _step(
        self,
        session: Session,
        rule: AlertRule,
        sample: Sample,
        result: WindowResult,
        states: dict[str, AlertState],
    ) -> tuple[str | None, AlertState, str | None]:
        # a rule may set ``alertname`` (two rules, warning and critical, sharing one name
        # for inhibition); the severity is always the rule's, the deployment the window's
        labels = {"alertname": rule.name} | rule.labels | sample.labels
        labels |= {"deployment": result.deployment, "severity": rule.severity}
        fp = fingerprint(rule.id, labels)
        row = states.get(fp)
        timing = Timing(rule.for_windows, rule.for_ms, rule.keep_firing_for_ms)
        before = _series(row) if row is not None else None
        series, moved = step(
            before,
            active=sample.active,
            value=sample.value,
            start_ms=result.start_ms,
            end_ms=result.end_ms,
            timing=timing,
        )
        if row is None:
            row = AlertState(
                id=str(uuid.uuid4()),
                org_id=self.organization,
                rule_id=rule.id,
                fingerprint=fp,
                seq=0,
                labels=labels,
            )
            session.add(row)
            states[fp] = row
        elif series is before:
            return None, row, None
        context = {
            "value": sample.value,
            "threshold": sample.threshold,
            "labels": labels,
            "rule": rule.name,
            "severity": rule.severity,
            "deployment": result.deployment,
            "window_start": iso_ms(result.start_ms),
            "window_end": iso_ms(result.end_ms),
            "state": series.state,
        }
        row.deployment, row.severity, row.labels = result.deployment, rule.severity, labels
        row.annotations = render_all(rule.annotations, context)
        row.state, row.value, row.streak = series.state, series.value, series.streak
        row.active_since_ms, row.last_active_ms = series.active_since_ms, series.last_active_ms
        row.fired_at_ms, row.resolved_at_ms = series.fired_at_ms, series.resolved_at_ms
        row.evaluated_at_ms, row.updated_at = series.evaluated_at_ms, self.clock()
        if moved is not None:
            row.seq = (row.seq or 0) + 1
        if moved == "firing":
            row.acknowledged_at, row.acknowledged_by = None, None
        notify = (
            "firing" if series.state == "firing" else "resolved" if moved == "resolved" else None
        )
        return moved, row, notify

    def _enqueue(
        self, session: Session, route: Route, row: AlertState, status: str, sample: Sample
    ) -> None:
        payload = AlertPayload(
            fingerprint=row.fingerprint,
            status=status,
            labels=dict(row.labels),
            annotations=dict(row.annotations),
            value=sample.value,
            threshold=sample.threshold,
            starts_at=iso_ms(row.fired_at_ms or row.evaluated_at_ms),
            ends_at=iso_ms(row.resolved_at_ms) if row.resolved_at_ms is not None else None,
            links=self._links(row),
        ).as_json()
        now = self.clock()
        for found in match(route, row.labels):
            key = group_key(found, row.labels)
            for channel_id in found.channels:
                session.add(
                    AlertOutbox(
                        org_id=self.organization,
                        idempotency_key=(
                            f"{row.fingerprint}:{row.evaluated_at_ms}:{status}:{channel_id}"
                            f":{found.path}"
                        ),
                        channel_id=channel_id,
                        group_key=key,
                        fingerprint=row.fingerprint,
                        status=status,
                        alert=payload,
                        group_wait_ms=found.group_wait_ms,
                        group_interval_ms=found.group_interval_ms,
                        repeat_interval_ms=found.repeat_interval_ms,
                        delivery="pending",
                        attempts=0,
                        next_attempt_at=None,
                        last_error="",
                        created_at=now,
                    )
                )

    def _links(self, row: AlertState) -> dict[str, str]:
        start = row.active_since_ms or row.fired_at_ms or row.evaluated_at_ms
        values: dict[str, Any] = {
            "deployment": row.deployment,
            "start_ms": start,
            "end_ms": row.evaluated_at_ms,
        }
        return {name: url.format(**values) for name, url in self.links.items()}


def _transition(row: AlertState, moved: str) -> Transition:
    return Transition(
        alert_id=row.id,
        rule_id=row.rule_id,
        deployment=row.deployment,
        fingerprint=row.fingerprint,
        state=moved,
        changed_at_ms=row.evaluated_at_ms,
        value=row.value,
        message=row.annotations.get("summary", ""),
        labels=dict(row.labels),
    )
