"""Alerting resources of one organization: rules, channels, routing, silences, alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import and_, not_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.alerts import repository
from control_api.alerts.schemas import (
    AlertRead,
    ChannelCreate,
    ChannelRead,
    ChannelTestResult,
    ChannelUpdate,
    DeliveryRead,
    RedeliveryRead,
    RoutingRead,
    RoutingWrite,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    SilenceCreate,
    SilenceRead,
)
from control_api.deployments import repository as deployments
from control_api.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from control_api.models_registry import repository as registry
from control_api.projects.service import parse_if_match
from control_api.schemas import Page
from engine.alerts.evaluator import load_route
from engine.alerts.matchers import Matcher
from engine.alerts.notifiers import (
    AlertPayload,
    Notification,
    NotifyError,
    build_notifier,
    validate_channel,
)
from engine.alerts.routing import Route
from engine.alerts.silence import ROLLOUT_STATES, in_force
from engine.alerts.targets import parse_target
from storage.models import (
    AlertChannel,
    AlertDelivery,
    AlertRouting,
    AlertRule,
    AlertSilence,
    AlertState,
)
from storage.secretbox import SecretBox, SecretsError

__all__ = [
    "acknowledge",
    "create_channel",
    "create_rule",
    "create_silence",
    "delete_channel",
    "delete_rule",
    "expire_silence",
    "get_alert",
    "get_channel",
    "get_routing",
    "get_rule",
    "list_alerts",
    "list_channels",
    "list_deliveries",
    "list_rules",
    "list_silences",
    "put_routing",
    "redeliver",
    "send_test_message",
    "update_channel",
    "update_rule",
]


def _now() -> datetime:
    return datetime.now(UTC)


def _commit(session: Session, duplicate: str) -> None:
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(duplicate) from error


# --- rules


def _rule(session: Session, org_id: str, rule_id: str) -> AlertRule:
    rule = repository.by_id(session, AlertRule, org_id=org_id, object_id=rule_id)
    if rule is None:
        raise NotFound("No such alert rule.")
    return rule


def _subject(session: Session, org_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``target`` split into its columns; setting one subject clears the other.

    A target's model must exist in ``org_id`` (422); its alias may be set later.
    """
    target = values.pop("target", None)
    if target is None:
        if values.get("deployment") is not None:
            values |= {"target_model": None, "target_alias": None}
        return values
    model, alias = parse_target(target)
    if registry.model_by_name(session, org_id=org_id, name=model) is None:
        raise InvalidInput(f"The target names an unknown model: {model}.")
    return values | {"deployment": None, "target_model": model, "target_alias": alias}


def create_rule(session: Session, *, org_id: str, body: RuleCreate) -> RuleRead:
    """A new rule in ``org_id`` (names unique within the organization)."""
    now = _now()
    values = _subject(session, org_id, body.model_dump(mode="json"))
    rule = AlertRule(
        id=str(uuid.uuid4()), org_id=org_id, version=1, created_at=now, updated_at=now, **values
    )
    session.add(rule)
    _commit(session, "An alert rule with this name already exists.")
    return RuleRead.model_validate(rule)


def get_rule(session: Session, *, org_id: str, rule_id: str) -> RuleRead:
    """One rule; 404 if missing or another organization's."""
    return RuleRead.model_validate(_rule(session, org_id, rule_id))


def list_rules(
    session: Session, *, org_id: str, limit: int, cursor: str | None, deployment: str | None
) -> Page[RuleRead]:
    """A page of rules, optionally of one deployment."""
    filters = [AlertRule.deployment == deployment] if deployment else []
    rows, next_cursor = repository.page(
        session, AlertRule, org_id=org_id, limit=limit, cursor=cursor, filters=filters
    )
    return Page(items=[RuleRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def update_rule(
    session: Session, *, org_id: str, rule_id: str, if_match: str | None, body: RuleUpdate
) -> RuleRead:
    """Change a rule still at the version named by ``if_match`` (412 if it moved on)."""
    version = parse_if_match(if_match)
    _rule(session, org_id, rule_id)
    values = _subject(
        session, org_id, body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    )
    result = session.execute(
        update(AlertRule)
        .where(AlertRule.org_id == org_id, AlertRule.id == rule_id, AlertRule.version == version)
        .values(**values, version=version + 1, updated_at=_now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise PreconditionFailed("The rule changed since you read it; read it again.")
    _commit(session, "An alert rule with this name already exists.")
    session.expire_all()
    return get_rule(session, org_id=org_id, rule_id=rule_id)


def delete_rule(session: Session, *, org_id: str, rule_id: str) -> None:
    """Delete a rule and its alerts' current state (their history stays in ClickHouse)."""
    session.delete(_rule(session, org_id, rule_id))
    session.commit()


# --- channels


def _channel(session: Session, org_id: str, channel_id: str) -> AlertChannel:
    channel = repository.by_id(session, AlertChannel, org_id=org_id, object_id=channel_id)
    if channel is None:
        raise NotFound("No such channel.")
    return channel


def _channel_read(channel: AlertChannel) -> ChannelRead:
    return ChannelRead(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        config=channel.config,
        secret_fields=sorted(k for k, v in channel.secrets.items() if v),
        send_resolved=channel.send_resolved,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _validated(kind: str, config: dict[str, Any], secrets: dict[str, Any]) -> tuple[Any, Any]:
    try:
        return validate_channel(kind, config, secrets)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInput(f"Invalid {kind} channel settings: {fields}") from error


def create_channel(
    session: Session, *, org_id: str, body: ChannelCreate, box: SecretBox
) -> ChannelRead:
    """A new channel; its settings are checked for its kind, its secrets sealed by ``box``."""
    config, secrets = _validated(body.kind, body.config, body.secrets)
    now = _now()
    channel = AlertChannel(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        kind=body.kind,
        config=config,
        secrets=box.seal(secrets),
        send_resolved=body.send_resolved,
        created_at=now,
        updated_at=now,
    )
    session.add(channel)
    _commit(session, "A channel with this name already exists.")
    return _channel_read(channel)


def get_channel(session: Session, *, org_id: str, channel_id: str) -> ChannelRead:
    """One channel without its secrets."""
    return _channel_read(_channel(session, org_id, channel_id))


def list_channels(
    session: Session, *, org_id: str, limit: int, cursor: str | None
) -> Page[ChannelRead]:
    """A page of channels."""
    rows, next_cursor = repository.page(
        session, AlertChannel, org_id=org_id, limit=limit, cursor=cursor
    )
    return Page(items=[_channel_read(r) for r in rows], next_cursor=next_cursor)


def _opened(box: SecretBox, channel: AlertChannel) -> dict[str, Any]:
    try:
        return box.open(channel.secrets)
    except SecretsError as error:
        raise Conflict(
            f"The channel's stored secrets cannot be read ({error}); send them again."
        ) from error


def update_channel(
    session: Session, *, org_id: str, channel_id: str, body: ChannelUpdate, box: SecretBox
) -> ChannelRead:
    """Change a channel; given ``secrets`` replace the stored ones (sealed again either way)."""
    channel = _channel(session, org_id, channel_id)
    config = channel.config if body.config is None else body.config
    secrets = _opened(box, channel) if body.secrets is None else body.secrets
    channel.config, secrets = _validated(channel.kind, config, secrets)
    channel.secrets = box.seal(secrets)
    if body.name is not None:
        channel.name = body.name
    if body.send_resolved is not None:
        channel.send_resolved = body.send_resolved
    channel.updated_at = _now()
    _commit(session, "A channel with this name already exists.")
    return _channel_read(channel)


def delete_channel(session: Session, *, org_id: str, channel_id: str) -> None:
    """Delete a channel (its pending notifications go with it)."""
    session.delete(_channel(session, org_id, channel_id))
    session.commit()


def send_test_message(
    session: Session, *, org_id: str, channel_id: str, box: SecretBox, timeout_s: float = 5.0
) -> ChannelTestResult:
    """Send a test message through the channel now (not through the outbox)."""
    channel = _channel(session, org_id, channel_id)
    stamp = _now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    alert = AlertPayload(
        fingerprint="test",
        status="firing",
        labels={"alertname": "DriftlineTest", "severity": "info", "channel": channel.name},
        annotations={"summary": "Test message from Driftline: this channel works."},
        value=0.0,
        threshold=0.0,
        starts_at=stamp,
    )
    notification = Notification(str(uuid.uuid4()), channel.id, "test", (alert,))
    with httpx.Client(timeout=timeout_s) as client:
        secrets = _opened(box, channel)
        notifier = build_notifier(channel.kind, channel.config, secrets, client=client)
        try:
            code = notifier.send(notification)
        except NotifyError as error:
            return ChannelTestResult(
                delivered=False,
                status_code=error.status_code,
                error=str(error),
                retryable=error.retryable,
            )
    return ChannelTestResult(delivered=True, status_code=code)


def list_deliveries(
    session: Session, *, org_id: str, channel_id: str, limit: int, cursor: str | None
) -> Page[DeliveryRead]:
    """A page of the channel's delivery log, newest first."""
    _channel(session, org_id, channel_id)
    rows, next_cursor = repository.deliveries_page(
        session, org_id=org_id, channel_id=channel_id, limit=limit, cursor=cursor
    )
    return Page(items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def redeliver(
    session: Session, *, org_id: str, channel_id: str, delivery_id: str
) -> RedeliveryRead:
    """Queue the finished message of the delivery attempt ``delivery_id`` again.

    The message keeps its id (``webhook-id``, the receivers' idempotency key) and alerts and
    gets a fresh budget: attempts count from 1 and the deadline from now. 404 for an unknown
    attempt, 409 while the message is still being delivered. The log records the request as
    attempt 0 with the outcome ``requeued``.
    """
    _channel(session, org_id, channel_id)
    attempt = repository.delivery(
        session, org_id=org_id, channel_id=channel_id, delivery_id=delivery_id
    )
    if attempt is None:
        raise NotFound("No such delivery.")
    rows = repository.message_rows(
        session, org_id=org_id, channel_id=channel_id, notification_id=attempt.notification_id
    )
    if not rows:
        raise NotFound("The message is no longer in the outbox.")
    if any(row.delivery == "pending" for row in rows):
        raise Conflict("The message is still being delivered.")
    now = _now()
    for row in rows:
        row.delivery, row.attempts, row.next_attempt_at = "pending", 0, None
        row.finished_at, row.requeued_at = None, now
        row.last_error, row.last_status_code = "", None
    session.add(
        AlertDelivery(
            id=str(uuid.uuid4()),
            org_id=org_id,
            notification_id=attempt.notification_id,
            channel_id=channel_id,
            attempt=0,
            outcome="requeued",
            status_code=None,
            error="",
            at=now,
        )
    )
    session.commit()
    return RedeliveryRead(
        notification_id=attempt.notification_id,
        channel_id=channel_id,
        alerts=len({row.fingerprint for row in rows}),
        requeued_at=now,
    )


# --- routing


def get_routing(session: Session, *, org_id: str) -> RoutingRead:
    """The routing tree in force (the default one, version 0, until one is stored)."""
    stored = repository.routing(session, org_id=org_id)
    if stored is None:
        return RoutingRead(tree=load_route(session), version=0)
    return RoutingRead(tree=Route.model_validate(stored.tree), version=stored.version)


def _channel_ids(route: Route) -> set[str]:
    found = set(route.channels or ())
    for child in route.routes:
        found |= _channel_ids(child)
    return found


def put_routing(session: Session, *, org_id: str, body: RoutingWrite) -> RoutingRead:
    """Replace the routing tree; every channel it names must exist (422 otherwise)."""
    for channel_id in sorted(_channel_ids(body.tree)):
        if repository.by_id(session, AlertChannel, org_id=org_id, object_id=channel_id) is None:
            raise InvalidInput(f"The routing tree names an unknown channel: {channel_id}.")
    stored = repository.routing(session, org_id=org_id)
    tree = body.tree.model_dump(mode="json", by_alias=True, exclude_none=True)
    if stored is None:
        stored = AlertRouting(
            id=str(uuid.uuid4()), org_id=org_id, tree=tree, version=1, updated_at=_now()
        )
        session.add(stored)
    else:
        stored.tree, stored.version, stored.updated_at = tree, stored.version + 1, _now()
    _commit(session, "The routing tree changed concurrently; try again.")
    return RoutingRead(tree=body.tree, version=stored.version)


# --- silences


ROLLOUT_SILENCE_SPAN = timedelta(days=7)
"""How long a rollout silence without ``ends_at`` may last if the rollout never ends."""


def _rollout_matchers(session: Session, org_id: str, deployment_id: str) -> list[Matcher]:
    """The matcher of a rollout silence: 422 for an unknown deployment, 409 if not rolling out."""
    deployment = deployments.by_id(session, org_id=org_id, deployment_id=deployment_id)
    if deployment is None:
        raise InvalidInput(f"No such deployment: {deployment_id}.")
    if deployment.state not in ROLLOUT_STATES:
        raise Conflict(f"The deployment is not rolling out (it is {deployment.state}).")
    return [Matcher(name="deployment", value=deployment_id)]


def create_silence(
    session: Session, *, org_id: str, created_by: str, body: SilenceCreate
) -> SilenceRead:
    """A new silence by ``created_by``, starting now unless ``starts_at`` is given.

    A rollout silence (``rollout_of``) matches the deployment's alerts and is in force only
    while the deployment rolls out (:data:`engine.alerts.silence.ROLLOUT_STATES`).
    """
    starts = body.starts_at or _now()
    matchers = list(body.matchers)
    if body.rollout_of is not None:
        matchers = _rollout_matchers(session, org_id, body.rollout_of) + matchers
    try:
        ends = body.ends_at or starts + ROLLOUT_SILENCE_SPAN
    except OverflowError as error:
        raise InvalidInput("starts_at leaves no room for the default span.") from error
    if ends <= starts:
        raise InvalidInput("ends_at must be in the future.")
    silence = AlertSilence(
        id=str(uuid.uuid4()),
        org_id=org_id,
        matchers=[m.model_dump() for m in matchers],
        starts_at=starts,
        ends_at=ends,
        rollout_of=body.rollout_of,
        created_by=created_by,
        comment=body.comment,
        created_at=_now(),
    )
    session.add(silence)
    session.commit()
    return SilenceRead.model_validate(silence)


def list_silences(
    session: Session, *, org_id: str, limit: int, cursor: str | None, active: bool | None
) -> Page[SilenceRead]:
    """A page of silences; ``active`` keeps only those in force now (or only the others).

    A rollout silence is in force only while its deployment rolls out.
    """
    filters: list[Any] = []
    if active is not None:
        force = and_(*in_force(_now()))
        filters = [force if active else not_(force)]
    rows, next_cursor = repository.page(
        session, AlertSilence, org_id=org_id, limit=limit, cursor=cursor, filters=filters
    )
    return Page(items=[SilenceRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def expire_silence(session: Session, *, org_id: str, silence_id: str) -> None:
    """End a silence now (kept for the record)."""
    silence = repository.by_id(session, AlertSilence, org_id=org_id, object_id=silence_id)
    if silence is None:
        raise NotFound("No such silence.")
    silence.ends_at = min(_now(), _aware(silence.ends_at))
    session.commit()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- alerts


def list_alerts(
    session: Session,
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    state: str | None,
    severity: str | None,
    deployment: str | None,
    rule_id: str | None,
    acknowledged: bool | None,
) -> Page[AlertRead]:
    """A page of alerts, most recently changed first, filtered."""
    filters: list[Any] = []
    for column, value in (
        (AlertState.state, state),
        (AlertState.severity, severity),
        (AlertState.deployment, deployment),
        (AlertState.rule_id, rule_id),
    ):
        if value is not None:
            filters.append(column == value)
    if acknowledged is not None:
        acked = AlertState.acknowledged_at
        filters.append(acked.is_not(None) if acknowledged else acked.is_(None))
    rows, next_cursor = repository.alerts_page(
        session, org_id=org_id, limit=limit, cursor=cursor, filters=filters
    )
    return Page(items=[AlertRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def _alert(session: Session, org_id: str, alert_id: str) -> AlertState:
    alert = repository.by_id(session, AlertState, org_id=org_id, object_id=alert_id)
    if alert is None:
        raise NotFound("No such alert.")
    return alert


def get_alert(session: Session, *, org_id: str, alert_id: str) -> AlertRead:
    """One alert's current state."""
    return AlertRead.model_validate(_alert(session, org_id, alert_id))


def acknowledge(session: Session, *, org_id: str, alert_id: str, user_id: str) -> AlertRead:
    """Mark an alert acknowledged by ``user_id`` (cleared when it fires again)."""
    alert = _alert(session, org_id, alert_id)
    if alert.state not in ("firing", "pending"):
        raise Conflict("Only a pending or firing alert can be acknowledged.")
    alert.acknowledged_at, alert.acknowledged_by = _now(), user_id
    session.commit()
    return AlertRead.model_validate(alert)
