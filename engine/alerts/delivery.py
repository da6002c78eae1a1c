"""The delivery pipeline draining the outbox, in Alertmanager's stages.

1. **wait** - a group's first message waits ``group_wait`` after its oldest row; later ones
   ``group_interval`` after the last message (:func:`due`).
2. **mute** - firing alerts matched by a silence in force (a rollout silence only while its
   deployment rolls out, :mod:`.silence`), or inhibited by a firing alert (:mod:`.inhibit`),
   are dropped (rows ``suppressed``).
3. **dedup** - :func:`engine.alerts.nflog.needs_update` on the notification log; rows that
   change nothing are ``deduplicated``.
4. **claim** - the rows get the message's id (a UUID derived from the rows: its idempotency
   key) and are committed *before* sending, so a restart resends the same message.
5. **retry/notify** - the notifier sends; a retryable failure schedules the next attempt after
   an exponential backoff with jitter (at least the receiver's ``Retry-After``), a permanent
   one, too many attempts or a passed deadline make the rows ``dead``. Every attempt is
   logged (:class:`~storage.models.AlertDelivery`). A finished message queued again over
   the API (redelivery) keeps its id and rows and gets a fresh budget: attempts from 1, the
   deadline from ``requeued_at``.

Delivery is at least once per message id; receivers deduplicate on it (``webhook-id``).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerts.inhibit import DEFAULT_INHIBIT_RULES, InhibitRule, inhibited
from engine.alerts.matchers import Matcher
from engine.alerts.nflog import LogEntry, needs_update
from engine.alerts.notifiers.base import AlertPayload, Notification, Notifier, NotifyError
from engine.alerts.silence import Silence, in_force, silenced_by
from storage.models import (
    AlertChannel,
    AlertDelivery,
    AlertNotificationLog,
    AlertOutbox,
    AlertSilence,
    AlertState,
)
from storage.tenancy import scope_to

__all__ = ["Deliverer", "DeliveryReport", "RetryPolicy", "aware", "due", "latest_by_fingerprint"]

_NAMESPACE = uuid.UUID("6f1c4a52-8d0b-4c1e-9a57-3f0e2f7b9d11")


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC attached when naive (SQLite keeps no time zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, a cap, an attempt limit and a deadline.

    Attempt ``n`` (1-based) waits ``min(cap, base * factor**(n-1))``
    seconds times a uniform jitter in ``[1 - jitter, 1 + jitter]``, and at least the
    receiver's ``Retry-After``. After ``max_attempts`` attempts, or ``deadline_s`` seconds
    after the oldest row was written (or queued again), the message is dead.
    """

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 300.0
    jitter: float = 0.2
    max_attempts: int = 10
    deadline_s: float = 86_400.0

    def delay_s(self, attempt: int, rng: random.Random, retry_after_s: float | None) -> float:
        """Seconds to wait before the attempt after ``attempt``.

        >>> RetryPolicy(jitter=0).delay_s(3, random.Random(0), None)
        4.0
        >>> RetryPolicy(jitter=0).delay_s(1, random.Random(0), 30)
        30
        """
        delay = min(self.cap_s, self.base_s * self.factor ** (attempt - 1))
        delay *= 1 + self.jitter * (2 * rng.random() - 1)
        return max(delay, retry_after_s or 0)

    def next_attempt_at(
        self,
        attempt: int,
        error: NotifyError,
        *,
        since: datetime,
        now: datetime,
        rng: random.Random,
    ) -> datetime | None:
        """When to try again after failed attempt ``attempt``, or ``None``: the message is dead.

        Dead: a permanent failure, ``max_attempts`` reached, or the next attempt would come
        more than ``deadline_s`` after ``since`` (when the message was written).
        """
        retry_at = now + timedelta(seconds=self.delay_s(attempt, rng, error.retry_after_s))
        late = retry_at > since + timedelta(seconds=self.deadline_s)
        if not error.retryable or attempt >= self.max_attempts or late:
            return None
        return retry_at


@dataclass
class DeliveryReport:
    """Counts of one pass: messages sent, retried, dead; rows suppressed and deduplicated."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    suppressed: int = 0
    deduplicated: int = 0


def due(rows: Sequence[AlertOutbox], entry: LogEntry | None, now: datetime) -> bool:
    """The wait stage: whether a group's pending rows may become a message at ``now``."""
    if entry is None:
        oldest = min(aware(r.created_at) for r in rows)
        return oldest + timedelta(milliseconds=rows[0].group_wait_ms) <= now
    return entry.sent_at + timedelta(milliseconds=rows[0].group_interval_ms) <= now


def latest_by_fingerprint(rows: Iterable[AlertOutbox]) -> dict[str, AlertOutbox]:
    """Each alert's newest row.

    By the window end it reports (in its idempotency key), then by when it was written.
    """
    latest: dict[str, AlertOutbox] = {}
    for row in sorted(rows, key=lambda r: (_window_ms(r), aware(r.created_at))):
        latest[row.fingerprint] = row
    return latest


@dataclass
class Deliverer:
    """Drains one organization's outbox; call :meth:`run_once` periodically."""

    sessions: sessionmaker[Session]
    organization: str
    notifier_for: Callable[[AlertChannel], Notifier]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    rng: random.Random = field(default_factory=random.Random)
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES

    def run_once(self) -> DeliveryReport:
        """One pass over the due rows: in-flight messages first, then new groups."""
        report = DeliveryReport()
        now = self.clock()
        with self.sessions() as session:
            scope_to(session, self.organization)
            pending = session.scalars(
                select(AlertOutbox)
                .where(AlertOutbox.delivery == "pending")
                .order_by(AlertOutbox.created_at, AlertOutbox.id)
            ).all()
            inflight: dict[str, list[AlertOutbox]] = defaultdict(list)
            fresh: dict[tuple[str, str], list[AlertOutbox]] = defaultdict(list)
            for row in pending:
                if row.notification_id is not None:
                    inflight[row.notification_id].append(row)
                else:
                    fresh[(row.channel_id, row.group_key)].append(row)
            channels = {c.id: c for c in session.scalars(select(AlertChannel))}
            busy = {(rs[0].channel_id, rs[0].group_key) for rs in inflight.values()}
            for message_id, rows in inflight.items():
                if all(aware(r.next_attempt_at or now) <= now for r in rows):
                    self._send(session, channels[rows[0].channel_id], message_id, rows, report)
            for (channel_id, key), rows in fresh.items():
                if (channel_id, key) not in busy:
                    self._group(session, channels[channel_id], key, rows, now, report)
        return report

    def _group(
        self,
        session: Session,
        channel: AlertChannel,
        key: str,
        rows: list[AlertOutbox],
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        log = self._log(session, channel.id, key)
        entry = (
            LogEntry(frozenset(log.firing), frozenset(log.resolved), aware(log.sent_at))
            if log is not None
            else None
        )
        if not due(rows, entry, now):
            return
        muted = self._muted(session, latest_by_fingerprint(rows).values(), now)
        kept = [r for r in rows if r.fingerprint not in muted]
        for row in rows:
            if row.fingerprint in muted:
                self._finish(row, "suppressed", now)
                report.suppressed += 1
        latest = latest_by_fingerprint(kept)
        firing = frozenset(fp for fp, r in latest.items() if r.status == "firing")
        resolved = frozenset(fp for fp, r in latest.items() if r.status == "resolved")
        repeat = timedelta(milliseconds=rows[0].repeat_interval_ms)
        wanted = needs_update(
            entry,
            firing=firing,
            resolved=resolved,
            send_resolved=channel.send_resolved,
            repeat_interval=repeat,
            now=now,
        )
        shown = firing | (resolved if channel.send_resolved else frozenset())
        if not wanted or not shown:
            for row in kept:
                self._finish(row, "deduplicated", now)
                report.deduplicated += 1
            if wanted:  # everything resolved, resolved notices off: remember, send nothing
                self._remember(session, channel.id, key, firing, resolved, now)
            session.commit()
            return
        message_id = str(uuid.uuid5(_NAMESPACE, ",".join(sorted(r.id for r in kept))))
        for row in kept:
            row.notification_id = message_id
        session.commit()  # the claim is durable before the first attempt
        self._send(session, channel, message_id, kept, report)

    def _muted(self, session: Session, latest: Iterable[AlertOutbox], now: datetime) -> set[str]:
        firing = [r for r in latest if r.status == "firing"]
        if not firing:
            return set()
        silences = [
            Silence(
                s.id,
                tuple(Matcher.model_validate(m) for m in s.matchers),
                aware(s.starts_at),
                aware(s.ends_at),
            )
            for s in session.scalars(select(AlertSilence).where(*in_force(now)))
        ]
        sources = [
            dict(labels)
            for labels in session.scalars(
                select(AlertState.labels).where(AlertState.state == "firing")
            )
        ]
        return {
            r.fingerprint
            for r in firing
            if silenced_by(silences, r.alert["labels"], now)
            or inhibited(r.alert["labels"], sources, self.inhibit_rules)
        }

    def _send(
        self,
        session: Session,
        channel: AlertChannel,
        message_id: str,
        rows: list[AlertOutbox],
        report: DeliveryReport,
    ) -> None:
        latest = latest_by_fingerprint(rows)
        alerts = tuple(
            _payload(r)
            for _, r in sorted(latest.items())
            if r.status == "firing" or channel.send_resolved
        )
        labels = alerts[0].labels if alerts else {}
        group_labels = {k: labels[k] for k in sorted(labels) if f'"{k}"' in rows[0].group_key}
        notification = Notification(message_id, channel.id, rows[0].group_key, alerts, group_labels)
        attempt = max(r.attempts for r in rows) + 1
        now = self.clock()
        try:
            code = self.notifier_for(channel).send(notification)
        except NotifyError as error:
            self._failed(session, channel, message_id, rows, attempt, error, now, report)
            return
        for row in rows:
            row.attempts, row.last_status_code, row.last_error = attempt, code, ""
            self._finish(row, "delivered", now)
        firing = frozenset(fp for fp, r in latest.items() if r.status == "firing")
        resolved = frozenset(fp for fp, r in latest.items() if r.status == "resolved")
        self._remember(session, channel.id, rows[0].group_key, firing, resolved, now)
        session.add(_attempt(self.organization, message_id, channel.id, attempt, "delivered", code))
        session.commit()
        report.sent += 1

    def _failed(
        self,
        session: Session,
        channel: AlertChannel,
        message_id: str,
        rows: list[AlertOutbox],
        attempt: int,
        error: NotifyError,
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        oldest = min(aware(r.requeued_at or r.created_at) for r in rows)
        retry_at = self.retry.next_attempt_at(attempt, error, since=oldest, now=now, rng=self.rng)
        dead = retry_at is None
        for row in rows:
            row.attempts, row.last_status_code = attempt, error.status_code
            row.last_error = str(error)[:2000]
            if dead:
                self._finish(row, "dead", now)
            else:
                row.next_attempt_at = retry_at
        outcome = "dead" if dead else "retry"
        session.add(
            _attempt(
                self.organization,
                message_id,
                channel.id,
                attempt,
                outcome,
                error.status_code,
                str(error),
            )
        )
        session.commit()
        if dead:
            report.dead += 1
        else:
            report.retried += 1

    def _log(self, session: Session, channel_id: str, key: str) -> AlertNotificationLog | None:
        return session.scalars(
            select(AlertNotificationLog).where(
                AlertNotificationLog.channel_id == channel_id,
                AlertNotificationLog.group_key == key,
            )
        ).first()

    def _remember(
        self,
        session: Session,
        channel_id: str,
        key: str,
        firing: frozenset[str],
        resolved: frozenset[str],
        now: datetime,
    ) -> None:
        log = self._log(session, channel_id, key)
        if log is None:
            log = AlertNotificationLog(
                org_id=self.organization, channel_id=channel_id, group_key=key
            )
            session.add(log)
        log.firing, log.resolved, log.sent_at = sorted(firing), sorted(resolved), now

    @staticmethod
    def _finish(row: AlertOutbox, outcome: str, now: datetime) -> None:
        row.delivery, row.finished_at, row.next_attempt_at = outcome, now, None


def _window_ms(row: AlertOutbox) -> int:
    parts = row.idempotency_key.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].lstrip("-").isdigit() else 0


def _payload(row: AlertOutbox) -> AlertPayload:
    alert = row.alert
    return AlertPayload(
        fingerprint=alert["fingerprint"],
        status=alert["status"],
        labels=alert["labels"],
        annotations=alert["annotations"],
        value=alert["value"],
        threshold=alert["threshold"],
        starts_at=alert["startsAt"],
        ends_at=alert.get("endsAt"),
        links=alert.get("links", {}),
    )


def _attempt(
    org_id: str,
    message_id: str,
    channel_id: str,
    attempt: int,
    outcome: str,
    code: int | None,
    error: str = "",
) -> AlertDelivery:
    return AlertDelivery(
        id=str(uuid.uuid4()),
        org_id=org_id,
        notification_id=message_id,
        channel_id=channel_id,
        attempt=attempt,
        outcome=outcome,
        status_code=code,
        error=error[:2000],
        at=datetime.now(UTC),
    )
