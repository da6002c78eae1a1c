"""Requests and responses of the alerting resources.

Times ending in ``_ms`` are event-time epoch milliseconds (window ends); durations ending in
``_ms`` are milliseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from control_api.schemas import ORMModel, RequestModel, UtcDatetime
from engine.alerts.matchers import Matcher
from engine.alerts.notifiers import ChannelKind
from engine.alerts.routing import Route
from engine.alerts.rules import Condition
from engine.alerts.targets import TARGET_PATTERN

__all__ = [
    "AlertRead",
    "ChannelCreate",
    "ChannelRead",
    "ChannelTestResult",
    "ChannelUpdate",
    "DeliveryRead",
    "RedeliveryRead",
    "RoutingRead",
    "RoutingWrite",
    "RuleCreate",
    "RuleRead",
    "RuleUpdate",
    "SilenceCreate",
    "SilenceRead",
]

Severity = Literal["info", "warning", "critical"]


MAX_SPAN_MS = 366 * 86_400_000
"""Longest ``for`` / ``keep_firing_for`` span: a year (larger ones are refused with a 422)."""


class RuleCreate(RequestModel):
    """A new rule: a condition on a deployment's windows, ``for``, hysteresis and texts.

    The rule names one ``deployment``, or a ``target`` ``model@alias`` (``fraud-model@champion``):
    then it evaluates the windows of every deployment serving the version that alias points
    at when the window closes, and follows the alias when it moves.

    Annotations are Jinja2 templates seeing ``value``, ``threshold``, ``labels``, ``rule``,
    ``severity``, ``deployment``, ``window_start``, ``window_end`` and ``state``.
    """

    name: str = Field(min_length=1, max_length=200)
    deployment: str | None = Field(default=None, min_length=1, max_length=200)
    target: str | None = Field(default=None, max_length=251, pattern=TARGET_PATTERN)
    condition: Condition
    for_windows: int = Field(default=1, ge=1, le=10_000)
    for_ms: int = Field(default=0, ge=0, le=MAX_SPAN_MS)
    keep_firing_for_ms: int = Field(default=0, ge=0, le=MAX_SPAN_MS)
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=50)
    enabled: bool = True

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.deployment is None) == (self.target is None):
            raise ValueError("name either a deployment or a target (model@alias)")
        return self


class RuleUpdate(RequestModel):
    """Fields to change; send the current ``version`` as ``If-Match``.

    Setting ``deployment`` clears the rule's ``target`` and the other way round.
    """

    name: str | None = Field(default=None, min_length=1, max_length=200)
    deployment: str | None = Field(default=None, min_length=1, max_length=200)
    target: str | None = Field(default=None, max_length=251, pattern=TARGET_PATTERN)
    condition: Condition | None = None
    for_windows: int | None = Field(default=None, ge=1, le=10_000)
    for_ms: int | None = Field(default=None, ge=0, le=MAX_SPAN_MS)
    keep_firing_for_ms: int | None = Field(default=None, ge=0, le=MAX_SPAN_MS)
    severity: Severity | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if self.deployment is not None and self.target is not None:
            raise ValueError("name either a deployment or a target (model@alias), not both")
        return self


class RuleRead(RuleCreate, ORMModel):
    """A rule; ``version`` grows at each update (its ETag)."""

    id: str
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ChannelCreate(RequestModel):
    """A channel; ``secrets`` are stored but never returned (see ``secret_fields``)."""

    name: str = Field(min_length=1, max_length=200)
    kind: ChannelKind
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict)
    send_resolved: bool = True


class ChannelUpdate(RequestModel):
    """Fields to change; ``secrets`` given replace the stored ones."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    send_resolved: bool | None = None


class ChannelRead(ORMModel):
    """A channel without its secrets; ``secret_fields`` names those that are set."""

    id: str
    name: str
    kind: str
    config: dict[str, Any]
    secret_fields: list[str]
    send_resolved: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ChannelTestResult(ORMModel):
    """The outcome of a test message: delivered, or the error and whether it may pass later."""

    delivered: bool
    status_code: int | None = None
    error: str = ""
    retryable: bool | None = None


class RoutingWrite(RequestModel):
    """The organization's routing tree (replaces the current one)."""

    tree: Route


class RoutingRead(ORMModel):
    """The routing tree in force; ``version`` 0 is the default (every channel)."""

    tree: Route
    version: int


class SilenceCreate(RequestModel):
    """Mute alerts matching every matcher from ``starts_at`` (default now) to ``ends_at``.

    With ``rollout_of`` (a deployment id) the silence mutes that deployment's alerts (a
    ``deployment`` matcher is added; more matchers narrow it) while its rollout is in
    progress and ends by itself when the rollout does (promoted, rolled back or failed);
    ``ends_at`` is then optional, a bound in case the rollout stays pending (default: 7 days).
    """

    matchers: list[Matcher] = Field(default_factory=list, max_length=20)
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    rollout_of: str | None = Field(default=None, min_length=1, max_length=36)
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _bounded(self) -> SilenceCreate:
        if self.rollout_of is None and (not self.matchers or self.ends_at is None):
            raise ValueError("a silence needs matchers and ends_at, or rollout_of")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceRead(ORMModel):
    """A silence and who made it; ``rollout_of``: in force only during that rollout."""

    id: str
    matchers: list[Matcher]
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    rollout_of: str | None
    created_by: str
    comment: str
    created_at: UtcDatetime


class AlertRead(ORMModel):
    """An alert series' current state.

    ``value``, ``annotations`` and ``evaluated_at_ms`` are those of the last window that
    changed the series: every window while it is pending or firing; an inactive or resolved
    series keeps them until a window moves it again.
    """

    id: str
    rule_id: str
    fingerprint: str
    deployment: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    value: float
    streak: int
    active_since_ms: int | None
    fired_at_ms: int | None
    resolved_at_ms: int | None
    evaluated_at_ms: int
    acknowledged_at: UtcDatetime | None
    acknowledged_by: str | None
    updated_at: UtcDatetime


class DeliveryRead(ORMModel):
    """One delivery attempt of one message (``notification_id``, its idempotency key)."""

    id: str
    notification_id: str
    channel_id: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str
    at: datetime


class RedeliveryRead(ORMModel):
    """A finished message queued again, for the delivery loop to send.

    ``notification_id`` is its unchanged id (``webhook-id``); ``alerts`` counts its alerts.
    """

    notification_id: str
    channel_id: str
    alerts: int
    requeued_at: UtcDatetime
