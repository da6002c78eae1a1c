"""Alerting additions: rules that follow a model alias, rollout silences, redelivery.

- ``alert_rules``: ``deployment`` becomes optional; ``target_model`` and ``target_alias``
  name the alias a rule follows instead (``fraud-model@champion``).
- ``alert_silences.rollout_of``: the deployment whose rollout the silence lasts for.
- ``alert_outbox.requeued_at``: when a finished message was queued again over the API.

Channel secrets need no change here: values sealed by :mod:`storage.secretbox` carry a
``fernet:`` prefix and values without it are read as the plaintext they are, until
``driftline admin rotate-secrets-key`` (or the next update of the channel) seals them.

Downgrading deletes the rules that follow an alias (they have no deployment to keep).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the target columns, the rollout of silences and the requeue time."""
    with op.batch_alter_table("alert_rules") as batch:
        batch.alter_column("deployment", existing_type=sa.String(length=200), nullable=True)
        batch.add_column(sa.Column("target_model", sa.String(length=150), nullable=True))
        batch.add_column(sa.Column("target_alias", sa.String(length=100), nullable=True))
    with op.batch_alter_table("alert_silences") as batch:
        batch.add_column(sa.Column("rollout_of", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            op.f("fk_alert_silences_rollout_of_deployments"),
            "deployments",
            ["rollout_of"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_alert_silences_rollout_of"), ["rollout_of"])
    with op.batch_alter_table("alert_outbox") as batch:
        batch.add_column(sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them again; rules without a deployment are deleted first."""
    with op.batch_alter_table("alert_outbox") as batch:
        batch.drop_column("requeued_at")
    with op.batch_alter_table("alert_silences") as batch:
        batch.drop_index(op.f("ix_alert_silences_rollout_of"))
        batch.drop_constraint(op.f("fk_alert_silences_rollout_of_deployments"), type_="foreignkey")
        batch.drop_column("rollout_of")
    op.execute(sa.text("DELETE FROM alert_rules WHERE deployment IS NULL"))
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("target_alias")
        batch.drop_column("target_model")
        batch.alter_column("deployment", existing_type=sa.String(length=200), nullable=False)
