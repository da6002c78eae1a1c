"""Alerting resources of one organization: rules, channels, routing, silences, alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import update
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
    RoutingRead,
    RoutingWrite,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    SilenceCreate,
    SilenceRead,
)
from control_api.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from control_api.projects.service import parse_if_match
from control_api.schemas import Page
from engine.alerts.evaluator import load_route
from engine.alerts.notifiers import (
    AlertPayload,
    Notification,
    NotifyError,
    build_notifier,
    validate_channel,
)
from engine.alerts.routing import Route
from storage.models import (
    AlertChannel,
    AlertRouting,
    AlertRule,
    AlertSilence,
    AlertState,
)

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


def create_rule(session: Session, *, org_id: str, body: RuleCreate) -> RuleRead:
    """A new rule in ``org_id`` (names unique within the organization)."""
    now = _now()
    values = body.model_dump(mode="json")
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
    values = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
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


def create_channel(session: Session, *, org_id: str, body: ChannelCreate) -> ChannelRead:
    """A new channel; its settings are checked for its kind."""
    config, secrets = _validated(body.kind, body.config, body.secrets)
    now = _now()
    channel = AlertChannel(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        kind=body.kind,
        config=config,
        secrets=secrets,
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


def update_channel(
    session: Session, *, org_id: str, channel_id: str, body: ChannelUpdate
) -> ChannelRead:
    """Change a channel; given ``secrets`` replace the stored ones."""
    channel = _channel(session, org_id, channel_id)
    config = channel.config if body.config is None else body.config
    secrets = channel.secrets if body.secrets is None else body.secrets
    channel.config, channel.secrets = _validated(channel.kind, config, secrets)
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
    session: Session, *, org_id: str, channel_id: str, timeout_s: float = 5.0
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
        notifier = build_notifier(channel.kind, channel.config, channel.secrets, client=client)
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


def create_silence(
    session: Session, *, org_id: str, created_by: str, body: SilenceCreate
) -> SilenceRead:
    """A new silence by ``created_by``, starting now unless ``starts_at`` is given."""
    starts = body.starts_at or _now()
    if body.ends_at <= starts:
        raise InvalidInput("ends_at must be in the future.")
    silence = AlertSilence(
        id=str(uuid.uuid4()),
        org_id=org_id,
        matchers=[m.model_dump() for m in body.matchers],
        starts_at=starts,
        ends_at=body.ends_at,
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
    """A page of silences; ``active`` keeps only those in force now (or only the others)."""
    now = _now()
    filters: list[Any] = []
    if active is True:
        filters = [AlertSilence.starts_at <= now, AlertSilence.ends_at > now]
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
