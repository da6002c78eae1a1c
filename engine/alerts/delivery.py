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

A pass reads what the stages need once (the notification log of its groups, the silences in
force, the firing alerts), commits every group's outcome and every claim together, sends
the claimed messages up to ``concurrency`` at a time (one per group at most), then commits
their outcomes together: two commits per pass, not two per message.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerts.inhibit import DEFAULT_INHIBIT_RULES, InhibitRule, inhibited
from engine.alerts.matchers import Matcher, matches_all
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
_CHUNK = 500
"""Group keys per ``IN (...)`` list when reading the notification log."""


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


@dataclass(frozen=True)
class _Message:
    """A claimed message of one pass: where it goes, its rows and its next attempt."""

    channel: AlertChannel
    rows: list[AlertOutbox]
    notification: Notification
    attempt: int


_Outcome = int | None | NotifyError | Exception
"""A send's status code, its failure, or an error no notifier should raise (a bug)."""


@dataclass
class _Pass:
    """What one pass reads once: its groups' notification log, silences, firing alerts."""

    session: Session
    now: datetime
    logs: dict[tuple[str, str], AlertNotificationLog]
    silences: list[Silence] | None = None
    sources: list[dict[str, str]] | None = None


@dataclass
class Deliverer:
    """Drains one organization's outbox; call :meth:`run_once` periodically.

    ``concurrency`` bounds the messages of a pass in flight at once (one per group at most).
    """

    sessions: sessionmaker[Session]
    organization: str
    notifier_for: Callable[[AlertChannel], Notifier]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    rng: random.Random = field(default_factory=random.Random)
    inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES
    concurrency: int = 8

    def run_once(self) -> DeliveryReport:
        """One pass over the due rows: in-flight messages, then new groups.

        Every group's decision and every claim are committed together before the first
        attempt; the claimed messages then go out, and their outcomes are committed
        together.
        """
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
            state = _Pass(session, now, self._logs(session, {r.group_key for r in pending}))
            messages = [
                self._message(channels[rows[0].channel_id], message_id, rows)
                for message_id, rows in inflight.items()
                if all(aware(r.next_attempt_at or now) <= now for r in rows)
            ]
            for (channel_id, key), rows in fresh.items():
                if (channel_id, key) not in busy:
                    claimed = self._group(state, channels[channel_id], key, rows, report)
                    if claimed is not None:
                        messages.append(claimed)
            session.commit()  # decisions and claims are durable before the first attempt
            if not messages:
                return report
            sent_at = self.clock()
            outcomes = self._deliver(messages)
            for message, outcome in zip(messages, outcomes, strict=True):
                if isinstance(outcome, NotifyError):
                    self._failed(session, message, outcome, sent_at, report)
                elif not isinstance(outcome, Exception):
                    self._sent(state, message, outcome, sent_at, report)
            session.commit()
        for outcome in outcomes:  # the others' outcomes are kept; this one's rows stay claimed
            if isinstance(outcome, Exception) and not isinstance(outcome, NotifyError):
                raise outcome
        return report

    def _group(
        self,
        state: _Pass,
        channel: AlertChannel,
        key: str,
        rows: list[AlertOutbox],
        report: DeliveryReport,
    ) -> _Message | None:
        """Wait, mute and dedup one group's rows; the message they become, claimed, if any."""
        now = state.now
        log = state.logs.get((channel.id, key))
        entry = (
            LogEntry(frozenset(log.firing), frozenset(log.resolved), aware(log.sent_at))
            if log is not None
            else None
        )
        if not due(rows, entry, now):
            return None
        muted = self._muted(state, latest_by_fingerprint(rows).values())
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
                self._remember(state, channel.id, key, firing, resolved, now)
            return None
        message_id = str(uuid.uuid5(_NAMESPACE, ",".join(sorted(r.id for r in kept))))
        for row in kept:
            row.notification_id = message_id
        return self._message(channel, message_id, kept)

    def _muted(self, state: _Pass, latest: Iterable[AlertOutbox]) -> set[str]:
        firing = [r for r in latest if r.status == "firing"]
        if not firing:
            return set()
        if state.silences is None or state.sources is None:
            state.silences = [
                Silence(
                    s.id,
                    tuple(Matcher.model_validate(m) for m in s.matchers),
                    aware(s.starts_at),
                    aware(s.ends_at),
                )
                for s in state.session.scalars(select(AlertSilence).where(*in_force(state.now)))
            ]
            firing_labels = state.session.scalars(
                select(AlertState.labels).where(AlertState.state == "firing")
            )
            # only alerts some rule takes as a source can inhibit (usually the critical few)
            state.sources = [
                dict(labels)
                for labels in firing_labels
                if any(matches_all(rule.source, labels) for rule in self.inhibit_rules)
            ]
        silences, sources = state.silences, state.sources
        return {
            r.fingerprint
            for r in firing
            if silenced_by(silences, r.alert["labels"], state.now)
            or inhibited(r.alert["labels"], sources, self.inhibit_rules)
        }

    @staticmethod
    def _message(channel: AlertChannel, message_id: str, rows: list[AlertOutbox]) -> _Message:
        latest = latest_by_fingerprint(rows)
        alerts = tuple(
            _payload(r)
            for _, r in sorted(latest.items())
            if r.status == "firing" or channel.send_resolved
        )
        labels = alerts[0].labels if alerts else {}
        group_labels = {k: labels[k] for k in sorted(labels) if f'"{k}"' in rows[0].group_key}
        notification = Notification(message_id, channel.id, rows[0].group_key, alerts, group_labels)
        return _Message(channel, rows, notification, max(r.attempts for r in rows) + 1)

    def _deliver(self, messages: list[_Message]) -> list[_Outcome]:
        """Send every message, up to ``concurrency`` at once; their outcomes in order."""

        def attempt(message: _Message) -> _Outcome:
            try:
                return self.notifier_for(message.channel).send(message.notification)
            except Exception as error:  # NotifyError, or a bug raised after the others
                return error

        workers = min(self.concurrency, len(messages))
        if workers <= 1:
            return [attempt(message) for message in messages]
        with ThreadPoolExecutor(workers, thread_name_prefix="alert-send") as pool:
            return list(pool.map(attempt, messages))

    def _sent(
        self,
        state: _Pass,
        message: _Message,
        code: int | None,
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        rows, channel_id = message.rows, message.channel.id
        for row in rows:
            row.attempts, row.last_status_code, row.last_error = message.attempt, code, ""
            self._finish(row, "delivered", now)
        latest = latest_by_fingerprint(rows)
        firing = frozenset(fp for fp, r in latest.items() if r.status == "firing")
        resolved = frozenset(fp for fp, r in latest.items() if r.status == "resolved")
        self._remember(state, channel_id, rows[0].group_key, firing, resolved, now)
        message_id = message.notification.id
        state.session.add(
            _attempt(self.organization, message_id, channel_id, message.attempt, "delivered", code)
        )
        report.sent += 1

    def _failed(
        self,
        session: Session,
        message: _Message,
        error: NotifyError,
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        rows, attempt = message.rows, message.attempt
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
                message.notification.id,
                message.channel.id,
                attempt,
                outcome,
                error.status_code,
                str(error),
            )
        )
        if dead:
            report.dead += 1
        else:
            report.retried += 1

    def _logs(
        self, session: Session, keys: set[str]
    ) -> dict[tuple[str, str], AlertNotificationLog]:
        """The notification log of the groups ``keys`` (every channel), in few queries."""
        ordered = sorted(keys)
        found: dict[tuple[str, str], AlertNotificationLog] = {}
        for i in range(0, len(ordered), _CHUNK):
            for log in session.scalars(
                select(AlertNotificationLog).where(
                    AlertNotificationLog.group_key.in_(ordered[i : i + _CHUNK])
                )
            ):
                found[(log.channel_id, log.group_key)] = log
        return found

    def _remember(
        self,
        state: _Pass,
        channel_id: str,
        key: str,
        firing: frozenset[str],
        resolved: frozenset[str],
        now: datetime,
    ) -> None:
        log = state.logs.get((channel_id, key))
        if log is None:
            log = AlertNotificationLog(
                org_id=self.organization, channel_id=channel_id, group_key=key
            )
            state.session.add(log)
            state.logs[(channel_id, key)] = log
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
