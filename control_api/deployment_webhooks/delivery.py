"""Delivering the deployment webhook outbox: in order per subscription, retried with backoff.

A pass takes one organization's pending messages oldest first. Per subscription they go out
in the order of their transitions, and the first failure stops that subscription for the
pass (head of line): a CD system never gets ``promoted`` before the ``created`` it follows,
unless that one is dead. A failure is retried after the alert outbox's backoff
(:class:`engine.alerts.delivery.RetryPolicy`: exponential with jitter, at least the
receiver's ``Retry-After``); a permanent failure (4xx other than 408/429), the last attempt
or a passed deadline make the message ``dead`` and the next one goes. A disabled
subscription's messages wait. Every attempt is logged
(:class:`~storage.models.DeploymentWebhookDelivery`).

Messages are signed like the alert webhook (:func:`engine.alerts.notifiers.webhook.
signed_message`): ``webhook-id`` is the outbox row's id on every attempt, so delivery is at
least once and receivers deduplicate on it; ``webhook-timestamp`` is the attempt's time.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_api.deployment_webhooks import repository
from engine.alerts.delivery import DeliveryReport, RetryPolicy, aware
from engine.alerts.notifiers.base import NotifyError, post_json
from engine.alerts.notifiers.webhook import signed_message
from storage.models import DeploymentWebhook, DeploymentWebhookDelivery, DeploymentWebhookOutbox
from storage.secretbox import SecretBox, SecretsError
from storage.tenancy import scope_to, unscoped

__all__ = ["WebhookDeliverer", "WebhookDrain"]

_USER_AGENT = {"User-Agent": "driftline-webhooks"}


@dataclass
class WebhookDeliverer:
    """Drains one organization's deployment webhook outbox; call :meth:`run_once` often.

    ``clock`` schedules retries; ``stamp`` (Unix seconds) is what messages are signed with.
    """

    sessions: sessionmaker[Session]
    organization: str
    client: httpx.Client
    box: SecretBox
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stamp: Callable[[], float] = field(default=time.time)
    rng: random.Random = field(default_factory=random.Random)

    def run_once(self) -> DeliveryReport:
        """One pass over the due messages (see the module docstring)."""
        report = DeliveryReport()
        now = self.clock()
        with self.sessions() as session:
            scope_to(session, self.organization)
            hooks = {hook.id: hook for hook in session.scalars(select(DeploymentWebhook))}
            held: set[str] = set()
            for row in repository.pending(session, org_id=self.organization):
                hook = hooks[row.webhook_id]
                if hook.id in held or not hook.enabled:
                    continue
                if row.next_attempt_at is not None and aware(row.next_attempt_at) > now:
                    held.add(hook.id)
                    continue
                if not self._send(session, hook, row, now, report):
                    held.add(hook.id)
        return report

    def _send(
        self,
        session: Session,
        hook: DeploymentWebhook,
        row: DeploymentWebhookOutbox,
        now: datetime,
        report: DeliveryReport,
    ) -> bool:
        """Send one message; whether the subscription may go on to its next message."""
        attempt = row.attempts + 1
        error: NotifyError | None = None
        code: int | None = None
        try:
            secrets = tuple(
                self.box.open_value("signing_secrets", sealed)
                for sealed in hook.secrets.get("signing_secrets", ())
            )
            body, headers = signed_message(
                secrets, row.id, row.event_type, row.payload, int(self.stamp())
            )
            code = post_json(self.client, hook.url, body, headers | _USER_AGENT)
        except SecretsError as unreadable:  # no attempt can succeed until the key is set
            detail = f"the webhook's secrets cannot be read: {unreadable}"
            error = NotifyError(detail, retryable=False)
        except NotifyError as failed:
            error = failed
        if error is not None:
            since = aware(row.created_at)
            retry_at = self.retry.next_attempt_at(
                attempt, error, since=since, now=now, rng=self.rng
            )
            row.attempts, row.last_status_code = attempt, error.status_code
            row.last_error = str(error)[:2000]
            row.next_attempt_at = retry_at
            if retry_at is None:
                row.delivery, row.finished_at = "dead", now
                report.dead += 1
            else:
                report.retried += 1
            outcome = "dead" if retry_at is None else "retry"
            session.add(_logged(row, attempt, outcome, error.status_code, str(error)))
            session.commit()
            return retry_at is None
        row.attempts, row.last_status_code, row.last_error = attempt, code, ""
        row.delivery, row.finished_at, row.next_attempt_at = "delivered", now, None
        session.add(_logged(row, attempt, "delivered", code))
        session.commit()
        report.sent += 1
        return True


def _logged(
    row: DeploymentWebhookOutbox, attempt: int, outcome: str, code: int | None, error: str = ""
) -> DeploymentWebhookDelivery:
    return DeploymentWebhookDelivery(
        id=str(uuid.uuid4()),
        org_id=row.org_id,
        webhook_id=row.webhook_id,
        message_id=row.id,
        event_type=row.event_type,
        deployment_id=str(row.payload["deployment"]["id"]),
        attempt=attempt,
        outcome=outcome,
        status_code=code,
        error=error[:2000],
        at=datetime.now(UTC),
    )


@dataclass
class WebhookDrain:
    """Every organization's deployment webhook outbox (a drain of the runtime's delivery loop)."""

    sessions: sessionmaker[Session]
    box: SecretBox

    def __call__(self, client: httpx.Client) -> int:
        """One pass over every organization with pending messages; messages delivered."""
        with self.sessions() as session, unscoped(session):
            organizations = session.scalars(
                select(DeploymentWebhookOutbox.org_id)
                .where(DeploymentWebhookOutbox.delivery == "pending")
                .distinct()
            ).all()
        return sum(
            WebhookDeliverer(self.sessions, organization, client, self.box).run_once().sent
            for organization in organizations
        )
