"""Deployment webhooks (issue 6): subscriptions, their outbox and the delivery log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("deployment_webhook_deliveries", "deployment_webhook_outbox", "deployment_webhooks")


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


def _ref(table: str, column: str, target: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        column,
        sa.String(length=36),
        sa.ForeignKey(
            f"{target}.id", name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
        ),
        nullable=nullable,
    )


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    """Create the deployment webhook tables."""
    op.create_table(
        "deployment_webhooks",
        *_id("deployment_webhooks"),
        _str("name", 200),
        _str("url", 2000),
        _ref("deployment_webhooks", "deployment_id", "deployments", nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("org_id", "name", name="uq_deployment_webhooks_org_name"),
    )
    op.create_table(
        "deployment_webhook_outbox",
        *_id("deployment_webhook_outbox"),
        _ref("deployment_webhook_outbox", "webhook_id", "deployment_webhooks"),
        _ref("deployment_webhook_outbox", "event_id", "deployment_events"),
        _str("event_type", 64),
        sa.Column("payload", sa.JSON(), nullable=False),
        _str("delivery", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("finished_at", nullable=True),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_deployment_webhook_outbox_event"),
    )
    op.create_table(
        "deployment_webhook_deliveries",
        *_id("deployment_webhook_deliveries"),
        _ref("deployment_webhook_deliveries", "webhook_id", "deployment_webhooks"),
        _str("message_id", 36),
        _str("event_type", 64),
        _str("deployment_id", 36),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _str("outcome", 16),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        _ts("at"),
    )
    indexes = {
        "deployment_webhooks": ["org_id", "deployment_id"],
        "deployment_webhook_outbox": ["org_id", "webhook_id", "delivery"],
        "deployment_webhook_deliveries": ["org_id", "webhook_id"],
    }
    for table, columns in indexes.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    """Drop the deployment webhook tables."""
    for table in _TABLES:
        op.drop_table(table)
