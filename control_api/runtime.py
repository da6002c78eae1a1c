"""What the API process runs besides requests when it hosts the engine (the embedded default).

* :func:`alert_listener`: the alert evaluator of one organization, told of every closed
  window after its results are durable.
* :class:`DeliveryLoop`: a background thread draining every organization's outboxes: alert
  notifications (:class:`AlertDrain`, opening the channels' sealed secrets; retries,
  grouping, silences and inhibition live in :class:`engine.alerts.delivery.Deliverer`) and
  deployment webhooks (:class:`control_api.deployment_webhooks.delivery.WebhookDrain`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.alerts.delivery import Deliverer, RetryPolicy
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.history import ClickHouseHistory
from engine.alerts.notifiers import build_notifier
from engine.alerts.notifiers.base import Notification, Notifier, NotifyError
from engine.sinks import WindowListener
from storage.clickhouse.client import MetricsClient
from storage.models import AlertChannel, AlertOutbox
from storage.secretbox import SecretBox, SecretsError
from storage.tenancy import unscoped

log = logging.getLogger("driftline.runtime")


def alert_listener(
    sessions: sessionmaker[Session], links: dict[str, str]
) -> Callable[[str, MetricsClient], WindowListener]:
    """A factory of per-organization alert evaluators writing history to the metrics store."""

    def make(organization: str, client: MetricsClient) -> WindowListener:
        return AlertEvaluator(
            sessions=sessions,
            organization=organization,
            history=ClickHouseHistory(client, organization),
            links=links,
        )

    return make


class Drain(Protocol):
    """One outbox: a pass over every organization's due messages, sent with ``client``."""

    def __call__(self, client: httpx.Client) -> int:
        """Deliver what is due; the number of messages sent."""
        ...


@dataclass
class _Unreadable:
    """The notifier of a channel whose sealed secrets open with no configured key."""

    error: SecretsError

    def send(self, notification: Notification) -> int | None:
        """Fail permanently: no attempt can succeed until the key is configured."""
        raise NotifyError(f"the channel's secrets cannot be read: {self.error}", retryable=False)


@dataclass
class AlertDrain:
    """Every organization's alert notification outbox (see :class:`Deliverer`).

    Channel secrets are opened with ``box`` at each send.
    """

    sessions: sessionmaker[Session]
    box: SecretBox
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __call__(self, client: httpx.Client) -> int:
        """One pass over every organization with pending rows; messages sent."""
        with self.sessions() as session, unscoped(session):
            organizations = session.scalars(
                select(AlertOutbox.org_id).where(AlertOutbox.delivery == "pending").distinct()
            ).all()

        def notifier_for(channel: AlertChannel) -> Notifier:
            try:
                secrets = self.box.open(channel.secrets)
            except SecretsError as error:
                return _Unreadable(error)
            return build_notifier(channel.kind, channel.config, secrets, client=client)

        sent = 0
        for organization in organizations:
            report = Deliverer(
                sessions=self.sessions,
                organization=organization,
                notifier_for=notifier_for,
                retry=self.retry,
            ).run_once()
            sent += report.sent
        return sent


@dataclass
class DeliveryLoop:
    """Drains each outbox (alert notifications, deployment webhooks) every interval."""

    drains: Sequence[Drain]
    interval_seconds: float = 2.0
    timeout_seconds: float = 10.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="outbox-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_seconds + self.interval_seconds)

    def run_once(self) -> int:
        """One pass over every outbox; returns messages sent (a failing drain raises)."""
        with httpx.Client(timeout=self.timeout_seconds) as client:
            return sum(drain(client) for drain in self.drains)

    def _run(self) -> None:
        # one client for the loop's life: building one (its TLS context) every pass cost
        # about 1 % of an idle API process's CPU
        with httpx.Client(timeout=self.timeout_seconds) as client:
            while not self._stop.wait(self.interval_seconds):
                for drain in self.drains:
                    try:
                        drain(client)
                    except Exception:  # a pass must never end the loop; rows stay pending
                        log.exception("outbox delivery pass failed; retrying next interval")
