"""Model registry, deployments, reference datasets and monitors.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.String(length=36), nullable=False)


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _fk(
    table: str, column: str, target: str, *, ondelete: str = "CASCADE", nullable: bool = False
) -> sa.Column[object]:
    return sa.Column(
        column,
        sa.String(length=36),
        sa.ForeignKey(
            f"{target}.id", name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
        ),
        nullable=nullable,
    )


def _text(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=False)


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _int(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def upgrade() -> None:
    """Create the registry, deployment, reference-dataset and monitor tables."""
    op.create_table(
        "registered_models",
        _id(),
        _fk("registered_models", "org_id", "organizations"),
        _fk("registered_models", "project_id", "projects", ondelete="SET NULL", nullable=True),
        _str("name", 200),
        _text("description"),
        _json("tags"),
        _int("latest_number"),
        _int("version"),
        _str("created_by", 36),
        _ts("created_at"),
        _ts("updated_at"),
        _pk("registered_models"),
        sa.UniqueConstraint("org_id", "name", name="uq_registered_models_org_name"),
    )
    op.create_table(
        "model_versions",
        _id(),
        _fk("model_versions", "org_id", "organizations"),
        _fk("model_versions", "model_id", "registered_models"),
        _int("number"),
        _text("description"),
        _json("tags"),
        _str("source_run", 200),
        _str("artifact_uri", 1000),
        _json("feature_schema"),
        _str("status", 16),
        _str("created_by", 36),
        _ts("created_at"),
        _pk("model_versions"),
        sa.UniqueConstraint("model_id", "number", name="uq_model_versions_model_number"),
    )
    op.create_table(
        "model_version_reviews",
        _id(),
        _fk("model_version_reviews", "org_id", "organizations"),
        _fk("model_version_reviews", "version_id", "model_versions"),
        _str("kind", 16),
        sa.Column("passed", sa.Boolean(), nullable=False),
        _json("metrics"),
        _text("note"),
        _str("created_by", 36),
        _ts("created_at"),
        _pk("model_version_reviews"),
    )
    op.create_table(
        "model_aliases",
        _id(),
        _fk("model_aliases", "org_id", "organizations"),
        _fk("model_aliases", "model_id", "registered_models"),
        _str("alias", 100),
        _fk("model_aliases", "version_id", "model_versions"),
        _ts("updated_at"),
        _pk("model_aliases"),
        sa.UniqueConstraint("model_id", "alias", name="uq_model_aliases_model_alias"),
    )
    op.create_table(
        "model_events",
        _id(),
        _fk("model_events", "org_id", "organizations"),
        _fk("model_events", "model_id", "registered_models"),
        _str("action", 32),
        _str("alias", 100, nullable=True),
        _int("from_number", nullable=True),
        _int("to_number", nullable=True),
        _str("actor", 64),
        _text("reason"),
        _ts("created_at"),
        _pk("model_events"),
    )
    op.create_table(
        "deployments",
        _id(),
        _fk("deployments", "org_id", "organizations"),
        _str("name", 200),
        _str("environment", 64),
        _str("endpoint", 1000),
        _int("replicas"),
        _fk("deployments", "model_id", "registered_models"),
        _fk("deployments", "model_version_id", "model_versions"),
        _str("strategy", 16),
        _str("state", 16),
        _json("traffic_steps"),
        _int("traffic_percent"),
        _str("previous_id", 36, nullable=True),
        _json("rollback_policy"),
        _int("version"),
        _str("created_by", 36),
        _ts("created_at"),
        _ts("updated_at"),
        _pk("deployments"),
    )
    op.create_table(
        "deployment_events",
        _id(),
        _fk("deployment_events", "org_id", "organizations"),
        _fk("deployment_events", "deployment_id", "deployments"),
        _str("action", 32),
        _str("from_state", 16, nullable=True),
        _str("to_state", 16),
        _int("traffic_percent"),
        _str("actor", 64),
        _text("reason"),
        _ts("created_at"),
        _pk("deployment_events"),
    )
    op.create_table(
        "reference_datasets",
        _id(),
        _fk("reference_datasets", "org_id", "organizations"),
        _str("name", 200),
        _int("number"),
        _str("file_format", 16),
        _str("object_key", 400),
        _str("profile_key", 400),
        _int("size_bytes"),
        _str("sha256", 64),
        _int("rows"),
        _json("columns"),
        _str("created_by", 36),
        _ts("created_at"),
        _pk("reference_datasets"),
        sa.UniqueConstraint(
            "org_id", "name", "number", name="uq_reference_datasets_org_name_number"
        ),
    )
    op.create_table(
        "monitors",
        _id(),
        _fk("monitors", "org_id", "organizations"),
        _str("name", 200),
        _fk("monitors", "deployment_id", "deployments"),
        _fk("monitors", "reference_id", "reference_datasets", ondelete="RESTRICT"),
        _json("spec"),
        _int("version"),
        _ts("created_at"),
        _ts("updated_at"),
        _pk("monitors"),
    )
    for table, columns in _INDEXES.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


_INDEXES = {
    "registered_models": ["org_id"],
    "model_versions": ["org_id", "model_id"],
    "model_version_reviews": ["org_id", "version_id"],
    "model_aliases": ["org_id", "model_id"],
    "model_events": ["org_id", "model_id"],
    "deployments": ["org_id", "model_id"],
    "deployment_events": ["org_id", "deployment_id"],
    "reference_datasets": ["org_id"],
    "monitors": ["org_id", "deployment_id"],
}


def downgrade() -> None:
    """Drop the tables created by :func:`upgrade`, dependents first."""
    for table in reversed(_INDEXES):
        op.drop_table(table)
