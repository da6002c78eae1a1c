"""Tables of the control database (SQLAlchemy 2 declarative models).

Every table belongs to an organization; later issues add users, projects, models,
deployments, monitors and alert rules here, each with its Alembic migration in
``migrations/versions``. Constraint names follow :data:`NAMING_CONVENTION`, so that
Alembic can alter them by name on PostgreSQL and in SQLite batch mode alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "AlertChannel",
    "AlertDelivery",
    "AlertNotificationLog",
    "AlertOutbox",
    "AlertRouting",
    "AlertRule",
    "AlertSilence",
    "AlertState",
    "ApiKey",
    "AuthSession",
    "Base",
    "Deployment",
    "DeploymentEvent",
    "DeploymentWebhook",
    "DeploymentWebhookDelivery",
    "DeploymentWebhookOutbox",
    "Experiment",
    "Membership",
    "ModelAlias",
    "ModelEvent",
    "ModelVersion",
    "ModelVersionReview",
    "MonitorConfig",
    "Organization",
    "Project",
    "ReferenceDataset",
    "RegisteredModel",
    "Run",
    "RunLatestMetric",
    "RunMetric",
    "RunParam",
    "TenantScoped",
    "User",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base of every control-database model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Organization(Base):
    """A tenant: every other row belongs to exactly one organization."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class TenantScoped:
    """Mixin of every row that belongs to one organization (``org_id``).

    :mod:`storage.tenancy` adds ``org_id = <the session's organization>`` to every ORM
    statement on these models, so a query that forgets the filter still cannot leak.
    """

    @declared_attr
    def org_id(cls) -> Mapped[str]:  # noqa: N805 - declared_attr takes the class
        """The owning organization."""
        return mapped_column(
            String(36), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
        )


class User(Base):
    """A person who logs in; belongs to organizations through memberships."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Membership(TenantScoped, Base):
    """A user's single role in one organization: owner, admin, editor or viewer."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AuthSession(TenantScoped, Base):
    """One login: a family of rotating refresh tokens, of which only the newest is valid.

    Presenting an older refresh token of the family (a reuse) revokes the whole session.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    refresh_jti: Mapped[str] = mapped_column(String(36))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ApiKey(TenantScoped, Base):
    """A machine credential: only the SHA-256 of the secret is kept; the prefix is visible."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Project(TenantScoped, Base):
    """The first tenant-scoped resource; ``version`` guards concurrent updates (If-Match)."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_projects_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# --- alerting (issue 7): rules, current alert state, channels, routing, silences, outbox ---


class AlertRule(TenantScoped, Base):
    """A condition over a deployment's closed windows; see :mod:`engine.alerts.rules`.

    ``condition`` is the JSON of one :class:`engine.alerts.rules.Condition`. ``for_windows``
    (consecutive active windows) and ``for_ms`` (event-time span since the first active
    window's start) must both be met before pending turns firing; ``keep_firing_for_ms`` keeps
    a firing alert firing that long (event time) after the condition clears.

    A rule names either one ``deployment`` or a target ``target_model@target_alias``: the
    deployments serving the version that alias points at when a window closes
    (:mod:`engine.alerts.targets`).
    """

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_alert_rules_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200), index=True, default=None)
    target_model: Mapped[str | None] = mapped_column(String(150), default=None)
    target_alias: Mapped[str | None] = mapped_column(String(100), default=None)
    condition: Mapped[dict[str, Any]] = mapped_column(JSON)
    for_windows: Mapped[int] = mapped_column(Integer, default=1)
    for_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    keep_firing_for_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @property
    def target(self) -> str | None:
        """``model@alias`` of a rule that follows an alias, else ``None``."""
        if self.target_model is None:
            return None
        return f"{self.target_model}@{self.target_alias}"


class AlertState(TenantScoped, Base):
    """The current state of one alert series (a rule and its labels: the fingerprint).

    ``state`` is pending, firing or resolved (inactive series whose last transition was
    pending -> inactive keep the row with state ``inactive``). Times ending in ``_ms`` are
    event-time epoch milliseconds of window ends; ``streak`` counts consecutive active
    windows; ``seq`` counts transitions (part of the notifications' idempotency keys).
    """

    __tablename__ = "alert_states"
    __table_args__ = (
        UniqueConstraint("org_id", "fingerprint", name="uq_alert_states_org_fingerprint"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    rule_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(16))
    deployment: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    value: Mapped[float] = mapped_column(Float)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    active_since_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_active_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    fired_at_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    resolved_at_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    evaluated_at_ms: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(36), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AlertChannel(TenantScoped, Base):
    """Where notifications go.

    ``kind`` is webhook, slack, teams, mattermost, email or alertmanager; ``config`` is
    visible, ``secrets`` (signing keys, chat webhook URLs, the SMTP password) are write-only
    in the API and each value is stored encrypted (:mod:`storage.secretbox`).
    """

    __tablename__ = "alert_channels"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_alert_channels_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    send_resolved: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AlertRouting(TenantScoped, Base):
    """An organization's routing tree (JSON of :class:`engine.alerts.routing.Route`)."""

    __tablename__ = "alert_routing"
    __table_args__ = (UniqueConstraint("org_id", name="uq_alert_routing_org"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    tree: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AlertSilence(TenantScoped, Base):
    """Mutes the firing notifications of alerts matching every matcher between two times.

    A silence with ``rollout_of`` (a deployment) is in force only while that deployment's
    rollout is in progress (:data:`engine.alerts.silence.ROLLOUT_STATES`) and ends by itself
    when the rollout does.
    """

    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rollout_of: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("deployments.id", ondelete="CASCADE"), index=True, default=None
    )
    created_by: Mapped[str] = mapped_column(String(36))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AlertOutbox(TenantScoped, Base):
    """One alert's notification to one channel, written with the state change it reports.

    ``status`` is what it reports (firing or resolved); ``delivery`` is pending, delivered,
    deduplicated, suppressed or dead. ``notification_id`` is set when the row joins a
    message (its idempotency key, sent as ``webhook-id``); a restart resends that same
    message. Timings (milliseconds) come from the matched route. ``requeued_at`` is set when
    a finished message is redelivered over the API: its retry deadline counts from then.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("org_id", "idempotency_key", name="uq_alert_outbox_org_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True
    )
    group_key: Mapped[str] = mapped_column(String(400))
    fingerprint: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    alert: Mapped[dict[str, Any]] = mapped_column(JSON)
    group_wait_ms: Mapped[int] = mapped_column(BigInteger)
    group_interval_ms: Mapped[int] = mapped_column(BigInteger)
    repeat_interval_ms: Mapped[int] = mapped_column(BigInteger)
    delivery: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    notification_id: Mapped[str | None] = mapped_column(String(36), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    requeued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AlertNotificationLog(TenantScoped, Base):
    """What was last sent for one (channel, group): the dedup stage's memory.

    ``firing`` and ``resolved`` hold the fingerprints of the last message sent.
    """

    __tablename__ = "alert_notification_log"
    __table_args__ = (
        UniqueConstraint("org_id", "channel_id", "group_key", name="uq_alert_nflog_group"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    channel_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("alert_channels.id", ondelete="CASCADE")
    )
    group_key: Mapped[str] = mapped_column(String(400))
    firing: Mapped[list[str]] = mapped_column(JSON)
    resolved: Mapped[list[str]] = mapped_column(JSON)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertDelivery(TenantScoped, Base):
    """One delivery attempt of one message: the delivery log."""

    __tablename__ = "alert_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    notification_id: Mapped[str] = mapped_column(String(36), index=True)
    channel_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("alert_channels.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# --- model registry, deployments, reference datasets, monitors (issue 6) ---------------------


class RegisteredModel(TenantScoped, Base):
    """A named model of one organization; its versions are numbered 1, 2, ... in order."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_registered_models_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    project_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("projects.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    latest_number: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ModelVersion(TenantScoped, Base):
    """One version of a registered model: where it came from and what it takes as input."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_model_versions_model_number"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    model_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    source_run: Mapped[str] = mapped_column(String(200), default="")
    artifact_uri: Mapped[str] = mapped_column(String(1000), default="")
    feature_schema: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ModelVersionReview(TenantScoped, Base):
    """An approval or an evaluation recorded on a version; promotion rules read these."""

    __tablename__ = "model_version_reviews"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    version_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    passed: Mapped[bool] = mapped_column(Boolean)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ModelAlias(TenantScoped, Base):
    """A name (champion, challenger, ...) pointing at one version of a model."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias", name="uq_model_aliases_model_alias"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    model_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    alias: Mapped[str] = mapped_column(String(100))
    version_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ModelEvent(TenantScoped, Base):
    """The registry's audit trail: registrations, alias moves (promotions), archives."""

    __tablename__ = "model_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    model_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(100), default=None)
    from_number: Mapped[int | None] = mapped_column(Integer, default=None)
    to_number: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Deployment(TenantScoped, Base):
    """A model version served in an environment; ``version`` guards transitions (If-Match).

    Deployments with the same ``name`` and ``environment`` form a slot: at most one of them
    is active; promoting another supersedes it (kept in ``previous_id`` for rollback).
    """

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(1000), default="")
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    model_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    model_version_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    strategy: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    traffic_steps: Mapped[list[int]] = mapped_column(JSON, default=list)
    traffic_percent: Mapped[int] = mapped_column(Integer, default=0)
    previous_id: Mapped[str | None] = mapped_column(String(36), default=None)
    rollback_policy: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DeploymentEvent(TenantScoped, Base):
    """One audited transition of a deployment: who, when, why, from which state to which."""

    __tablename__ = "deployment_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    deployment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16), default=None)
    to_state: Mapped[str] = mapped_column(String(16))
    traffic_percent: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ReferenceDataset(TenantScoped, Base):
    """An uploaded reference dataset (object store) and the profile fitted on it.

    Versions of one ``name`` are numbered 1, 2, ...; the profile is kept as JSON in the
    object store under ``profile_key``.
    """

    __tablename__ = "reference_datasets"
    __table_args__ = (
        UniqueConstraint("org_id", "name", "number", name="uq_reference_datasets_org_name_number"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    number: Mapped[int] = mapped_column(Integer)
    file_format: Mapped[str] = mapped_column(String(16))
    object_key: Mapped[str] = mapped_column(String(400))
    profile_key: Mapped[str] = mapped_column(String(400))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class MonitorConfig(TenantScoped, Base):
    """A monitor of one deployment against one reference profile (the engine's shape)."""

    __tablename__ = "monitors"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    deployment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    reference_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("reference_datasets.id", ondelete="RESTRICT")
    )
    spec: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


# --- experiments and runs (issue 6): the tracking store used when MLflow is not configured ---


class Experiment(TenantScoped, Base):
    """A named group of runs; ``tags`` are free key/value pairs (MLflow's experiment tags)."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_experiments_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    project_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("projects.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Run(TenantScoped, Base):
    """One training or evaluation run; ``status`` is one of MLflow's run statuses.

    Params and metrics are rows of their own (:class:`RunParam`, :class:`RunMetric`); tags,
    which may be overwritten, are kept here.
    """

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_experiment_start", "experiment_id", "start_time"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    experiment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("experiments.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(250), default="")
    status: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))


class RunParam(TenantScoped, Base):
    """A run's parameter: set once, never changed (as in MLflow)."""

    __tablename__ = "run_params"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunMetric(TenantScoped, Base):
    """One point of a run's metric series: ``value`` at ``step`` and ``timestamp`` (epoch ms).

    The whole point is the key, so logging the same point again changes nothing.
    """

    __tablename__ = "run_metrics"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Float, primary_key=True)


class RunLatestMetric(TenantScoped, Base):
    """A metric's latest point (greatest step, then timestamp, then value): filters, sorts."""

    __tablename__ = "run_latest_metrics"

    run_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)


# --- deployment webhooks (issue 6): subscriptions, their outbox and delivery log ------------


class DeploymentWebhook(TenantScoped, Base):
    """A CD system's subscription to deployment transitions, signed the Standard Webhooks way.

    ``deployment_id`` set: only that deployment's transitions; ``events`` (actions such as
    ``promoted``) empty: every action. ``secrets`` holds ``signing_secrets`` (one, or two
    while rotating), write-only in the API.
    """

    __tablename__ = "deployment_webhooks"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_deployment_webhooks_org_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    deployment_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("deployments.id", ondelete="CASCADE"), index=True, default=None
    )
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secrets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DeploymentWebhookOutbox(TenantScoped, Base):
    """One transition to send to one subscription, written in the transition's transaction.

    ``delivery`` is pending, delivered or dead; the row's ``id`` is the message's
    ``webhook-id`` on every attempt. ``payload`` is the event as it was at the transition.
    """

    __tablename__ = "deployment_webhook_outbox"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_deployment_webhook_outbox_event"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    webhook_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deployment_webhooks.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deployment_events.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivery: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class DeploymentWebhookDelivery(TenantScoped, Base):
    """One delivery attempt of one deployment webhook message: the delivery log."""

    __tablename__ = "deployment_webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_id)
    webhook_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deployment_webhooks.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    deployment_id: Mapped[str] = mapped_column(String(36))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
