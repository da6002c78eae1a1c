"""Experiments and runs: Driftline's own tracking store (used when MLflow is not configured).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("experiments", "runs", "run_params", "run_metrics", "run_latest_metrics")


def _fk(table: str, column: str, target: str, *, ondelete: str = "CASCADE") -> sa.Column[object]:
    return sa.Column(
        column,
        sa.String(length=36),
        sa.ForeignKey(
            f"{target}.id", name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
        ),
        nullable=ondelete == "SET NULL",
    )


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _run_child(table: str, *columns: sa.Column[object], key: Sequence[str]) -> None:
    """A table of rows belonging to one run, keyed by ``run_id`` and ``key`` columns."""
    op.create_table(
        table,
        _fk(table, "org_id", "organizations"),
        _fk(table, "run_id", "runs"),
        sa.Column("key", sa.String(length=250), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("run_id", "key", *key, name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    """Create the experiment, run, param and metric tables."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=36), nullable=False),
        _fk("experiments", "org_id", "organizations"),
        _fk("experiments", "project_id", "projects", ondelete="SET NULL"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("org_id", "name", name="uq_experiments_org_name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        _fk("runs", "org_id", "organizations"),
        _fk("runs", "experiment_id", "experiments"),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("start_time"),
        _ts("end_time", nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "start_time"])
    _run_child("run_params", sa.Column("value", sa.Text(), nullable=False), key=())
    _run_child(
        "run_metrics",
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        key=("step", "timestamp", "value"),
    )
    _run_child(
        "run_latest_metrics",
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        key=(),
    )
    for table in _TABLES:
        op.create_index(op.f(f"ix_{table}_org_id"), table, ["org_id"])


def downgrade() -> None:
    """Drop them, children first."""
    for table in reversed(_TABLES):
        op.drop_table(table)
