"""Routes of the alerting resources: each a permission check and one service call.

Editors and up write rules and silences and acknowledge alerts; admins and up manage
channels and the routing tree, read the delivery log and redeliver from it (the same
``channels:manage`` permission as the log and the test message: a redelivery sends to the
channel's receiver); viewers read (channel secrets are never returned).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from control_api.alerts import service
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
from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["routers"]

Reader = Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.ALERTS_WRITE))]
Admin = Annotated[Principal, Depends(require(Permission.CHANNELS_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX)]
Cursor = Annotated[str | None, Query(max_length=512)]
_READ = responses(400, 401, 403, 422, 429)
_ONE = responses(401, 403, 404, 429)
_WRITE = responses(401, 403, 404, 409, 422, 429)

rules = APIRouter(prefix="/v1/alert-rules", tags=["alerts"])
channels = APIRouter(prefix="/v1/channels", tags=["alerts"])
routing = APIRouter(prefix="/v1/alert-routing", tags=["alerts"])
silences = APIRouter(prefix="/v1/silences", tags=["alerts"])
alerts = APIRouter(prefix="/v1/alerts", tags=["alerts"])
routers = (rules, channels, routing, silences, alerts)


@rules.post("", status_code=status.HTTP_201_CREATED, responses=_WRITE)
def create_rule(
    body: RuleCreate, principal: Writer, session: SessionDep, response: Response
) -> RuleRead:
    """Create an alert rule."""
    rule = service.create_rule(session, org_id=principal.org_id, body=body)
    response.headers["ETag"] = f'"{rule.version}"'
    return rule


@rules.get("", responses=_READ)
def list_rules(
    principal: Reader,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
    deployment: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[RuleRead]:
    """The organization's rules, oldest first, optionally of one deployment."""
    return service.list_rules(
        session, org_id=principal.org_id, limit=limit, cursor=cursor, deployment=deployment
    )


@rules.get("/{rule_id}", responses=_ONE)
def get_rule(rule_id: str, principal: Reader, session: SessionDep, response: Response) -> RuleRead:
    """One rule; its ETag is its version."""
    rule = service.get_rule(session, org_id=principal.org_id, rule_id=rule_id)
    response.headers["ETag"] = f'"{rule.version}"'
    return rule


@rules.patch("/{rule_id}", responses=responses(401, 403, 404, 409, 412, 422, 428, 429))
def update_rule(
    rule_id: str,
    body: RuleUpdate,
    principal: Writer,
    session: SessionDep,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> RuleRead:
    """Change a rule; ``If-Match`` must carry the version read."""
    rule = service.update_rule(
        session, org_id=principal.org_id, rule_id=rule_id, if_match=if_match, body=body
    )
    response.headers["ETag"] = f'"{rule.version}"'
    return rule


@rules.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ONE)
def delete_rule(rule_id: str, principal: Writer, session: SessionDep) -> None:
    """Delete a rule and its alerts' current state."""
    service.delete_rule(session, org_id=principal.org_id, rule_id=rule_id)


@channels.post("", status_code=status.HTTP_201_CREATED, responses=_WRITE)
def create_channel(
    body: ChannelCreate, principal: Admin, session: SessionDep, ctx: ContextDep
) -> ChannelRead:
    """Create a notification channel; its secrets are write-only (and encrypted at rest)."""
    return service.create_channel(session, org_id=principal.org_id, body=body, box=ctx.secret_box)


@channels.get("", responses=_READ)
def list_channels(
    principal: Reader, session: SessionDep, limit: Limit = LIMIT_DEFAULT, cursor: Cursor = None
) -> Page[ChannelRead]:
    """The organization's channels, without secrets."""
    return service.list_channels(session, org_id=principal.org_id, limit=limit, cursor=cursor)


@channels.get("/{channel_id}", responses=_ONE)
def get_channel(channel_id: str, principal: Reader, session: SessionDep) -> ChannelRead:
    """One channel, without secrets."""
    return service.get_channel(session, org_id=principal.org_id, channel_id=channel_id)


@channels.patch("/{channel_id}", responses=_WRITE)
def update_channel(
    channel_id: str, body: ChannelUpdate, principal: Admin, session: SessionDep, ctx: ContextDep
) -> ChannelRead:
    """Change a channel."""
    return service.update_channel(
        session, org_id=principal.org_id, channel_id=channel_id, body=body, box=ctx.secret_box
    )


@channels.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ONE)
def delete_channel(channel_id: str, principal: Admin, session: SessionDep) -> None:
    """Delete a channel."""
    service.delete_channel(session, org_id=principal.org_id, channel_id=channel_id)


@channels.post("/{channel_id}/test", responses=responses(401, 403, 404, 409, 429))
def send_test(
    channel_id: str, principal: Admin, session: SessionDep, ctx: ContextDep
) -> ChannelTestResult:
    """Send a test message now; the answer says whether it was delivered."""
    return service.send_test_message(
        session, org_id=principal.org_id, channel_id=channel_id, box=ctx.secret_box
    )


@channels.get("/{channel_id}/deliveries", responses=responses(400, 401, 403, 404, 422, 429))
def list_deliveries(
    channel_id: str,
    principal: Admin,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> Page[DeliveryRead]:
    """The channel's delivery log (attempts, outcome, status code), newest first."""
    return service.list_deliveries(
        session, org_id=principal.org_id, channel_id=channel_id, limit=limit, cursor=cursor
    )


@channels.post(
    "/{channel_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(401, 403, 404, 409, 429),
)
def redeliver(
    channel_id: str, delivery_id: str, principal: Admin, session: SessionDep
) -> RedeliveryRead:
    """Queue a logged attempt's finished message again (same ``webhook-id``, fresh budget)."""
    return service.redeliver(
        session, org_id=principal.org_id, channel_id=channel_id, delivery_id=delivery_id
    )


@routing.get("", responses=responses(401, 403, 429))
def get_routing(principal: Reader, session: SessionDep) -> RoutingRead:
    """The routing tree in force."""
    return service.get_routing(session, org_id=principal.org_id)


@routing.put("", responses=responses(401, 403, 409, 422, 429))
def put_routing(body: RoutingWrite, principal: Admin, session: SessionDep) -> RoutingRead:
    """Replace the routing tree."""
    return service.put_routing(session, org_id=principal.org_id, body=body)


@silences.post("", status_code=status.HTTP_201_CREATED, responses=_WRITE)
def create_silence(body: SilenceCreate, principal: Writer, session: SessionDep) -> SilenceRead:
    """Create a silence; the caller is its creator."""
    return service.create_silence(
        session, org_id=principal.org_id, created_by=principal.id, body=body
    )


@silences.get("", responses=_READ)
def list_silences(
    principal: Reader,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
    active: bool | None = None,
) -> Page[SilenceRead]:
    """The organization's silences (``active=true``: only those in force now)."""
    return service.list_silences(
        session, org_id=principal.org_id, limit=limit, cursor=cursor, active=active
    )


@silences.delete("/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ONE)
def expire_silence(silence_id: str, principal: Writer, session: SessionDep) -> None:
    """End a silence now."""
    service.expire_silence(session, org_id=principal.org_id, silence_id=silence_id)


@alerts.get("", responses=_READ)
def list_alerts(
    principal: Reader,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
    state: Annotated[str | None, Query(pattern="^(inactive|pending|firing|resolved)$")] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
    deployment: Annotated[str | None, Query(max_length=200)] = None,
    rule_id: Annotated[str | None, Query(max_length=36)] = None,
    acknowledged: bool | None = None,
) -> Page[AlertRead]:
    """Alerts, most recently changed first, filtered by state, severity, deployment, rule."""
    return service.list_alerts(
        session,
        org_id=principal.org_id,
        limit=limit,
        cursor=cursor,
        state=state,
        severity=severity,
        deployment=deployment,
        rule_id=rule_id,
        acknowledged=acknowledged,
    )


@alerts.get("/{alert_id}", responses=_ONE)
def get_alert(alert_id: str, principal: Reader, session: SessionDep) -> AlertRead:
    """One alert's current state."""
    return service.get_alert(session, org_id=principal.org_id, alert_id=alert_id)


@alerts.post("/{alert_id}/acknowledge", responses=responses(401, 403, 404, 409, 429))
def acknowledge(alert_id: str, principal: Writer, session: SessionDep) -> AlertRead:
    """Acknowledge a pending or firing alert."""
    return service.acknowledge(
        session, org_id=principal.org_id, alert_id=alert_id, user_id=principal.id
    )
