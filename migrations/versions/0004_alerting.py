"""Alerting: rules, current alert state, channels, routing, silences, outbox, delivery log.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    "alert_deliveries",
    "alert_notification_log",
    "alert_outbox",
    "alert_silences",
    "alert_routing",
    "alert_states",
    "alert_channels",
    "alert_rules",
)


def _id(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "org_id",
            sa.String(length=36),
            sa.ForeignKey(
                "organizations.id",
                name=op.f(f"fk_{table}_org_id_organizations"),
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _ref(table: str, column: str, target: str) -> sa.Column[object]:
    return sa.Column(
        column,
        sa.String(length=36),
        sa.ForeignKey(
            f"{target}.id", name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
        ),
        nullable=False,
    )


def _int(name: str, *, big: bool = False, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger() if big else sa.Integer(), nullable=nullable)


def _str(name: str, length: int) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    """Create the alerting tables."""
    op.create_table(
        "alert_rules",
        *_id("alert_rules"),
        _str("name", 200),
        _str("deployment", 200),
        sa.Column("condition", sa.JSON(), nullable=False),
        _int("for_windows"),
        _int("for_ms", big=True),
        _int("keep_firing_for_ms", big=True),
        _str("severity", 16),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _int("version"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("org_id", "name", name="uq_alert_rules_org_name"),
    )
    op.create_table(
        "alert_channels",
        *_id("alert_channels"),
        _str("name", 200),
        _str("kind", 32),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("send_resolved", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("org_id", "name", name="uq_alert_channels_org_name"),
    )
    op.create_table(
        "alert_states",
        *_id("alert_states"),
        _ref("alert_states", "rule_id", "alert_rules"),
        _str("fingerprint", 16),
        _str("deployment", 200),
        _str("severity", 16),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        _str("state", 16),
        sa.Column("value", sa.Float(), nullable=False),
        _int("streak"),
        _int("active_since_ms", big=True, nullable=True),
        _int("last_active_ms", big=True, nullable=True),
        _int("fired_at_ms", big=True, nullable=True),
        _int("resolved_at_ms", big=True, nullable=True),
        _int("evaluated_at_ms", big=True),
        _int("seq"),
        _ts("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(length=36), nullable=True),
        _ts("updated_at"),
        sa.UniqueConstraint("org_id", "fingerprint", name="uq_alert_states_org_fingerprint"),
    )
    op.create_table(
        "alert_routing",
        *_id("alert_routing"),
        sa.Column("tree", sa.JSON(), nullable=False),
        _int("version"),
        _ts("updated_at"),
        sa.UniqueConstraint("org_id", name="uq_alert_routing_org"),
    )
    op.create_table(
        "alert_silences",
        *_id("alert_silences"),
        sa.Column("matchers", sa.JSON(), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        _str("created_by", 36),
        sa.Column("comment", sa.Text(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "alert_outbox",
        *_id("alert_outbox"),
        _str("idempotency_key", 200),
        _ref("alert_outbox", "channel_id", "alert_channels"),
        _str("group_key", 400),
        _str("fingerprint", 16),
        _str("status", 16),
        sa.Column("alert", sa.JSON(), nullable=False),
        _int("group_wait_ms", big=True),
        _int("group_interval_ms", big=True),
        _int("repeat_interval_ms", big=True),
        _str("delivery", 16),
        sa.Column("notification_id", sa.String(length=36), nullable=True),
        _int("attempts"),
        _ts("next_attempt_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        _int("last_status_code", nullable=True),
        _ts("created_at"),
        _ts("finished_at", nullable=True),
        sa.UniqueConstraint("org_id", "idempotency_key", name="uq_alert_outbox_org_key"),
    )
    op.create_table(
        "alert_notification_log",
        *_id("alert_notification_log"),
        _ref("alert_notification_log", "channel_id", "alert_channels"),
        _str("group_key", 400),
        sa.Column("firing", sa.JSON(), nullable=False),
        sa.Column("resolved", sa.JSON(), nullable=False),
        _ts("sent_at"),
        sa.UniqueConstraint("org_id", "channel_id", "group_key", name="uq_alert_nflog_group"),
    )
    op.create_table(
        "alert_deliveries",
        *_id("alert_deliveries"),
        _str("notification_id", 36),
        _ref("alert_deliveries", "channel_id", "alert_channels"),
        _int("attempt"),
        _str("outcome", 16),
        _int("status_code", nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        _ts("at"),
    )
    indexes = {
        "alert_rules": ["org_id", "deployment"],
        "alert_channels": ["org_id"],
        "alert_states": ["org_id", "rule_id", "state"],
        "alert_routing": ["org_id"],
        "alert_silences": ["org_id"],
        "alert_outbox": ["org_id", "channel_id", "delivery"],
        "alert_notification_log": ["org_id"],
        "alert_deliveries": ["org_id", "notification_id"],
    }
    for table, columns in indexes.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    """Drop the alerting tables."""
    for table in _TABLES:
        op.drop_table(table)
