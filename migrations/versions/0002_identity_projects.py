"""Identity and projects: users, memberships, sessions, API keys, projects.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _org(table: str) -> sa.Column[object]:
    return sa.Column(
        "org_id",
        sa.String(length=36),
        sa.ForeignKey(
            "organizations.id", name=op.f(f"fk_{table}_org_id_organizations"), ondelete="CASCADE"
        ),
        nullable=False,
    )


def _user(table: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column[object]:
    return sa.Column(
        "user_id" if not nullable else "created_by",
        sa.String(length=36),
        sa.ForeignKey(
            "users.id",
            name=op.f(f"fk_{table}_{'created_by' if nullable else 'user_id'}_users"),
            ondelete=ondelete,
        ),
        nullable=nullable,
    )


def upgrade() -> None:
    """Create ``users``, ``memberships``, ``auth_sessions``, ``api_keys`` and ``projects``."""
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=400), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org("memberships"),
        _user("memberships"),
        sa.Column("role", sa.String(length=16), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org("auth_sessions"),
        _user("auth_sessions"),
        sa.Column("refresh_jti", sa.String(length=36), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        _ts("created_at"),
        _ts("last_used_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org("api_keys"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        _user("api_keys", nullable=True, ondelete="SET NULL"),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("revoked_at", nullable=True),
        _ts("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        _org("projects"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("org_id", "name", name="uq_projects_org_name"),
    )
    for table, columns in {
        "memberships": ["org_id", "user_id"],
        "auth_sessions": ["org_id", "user_id"],
        "api_keys": ["org_id"],
        "projects": ["org_id"],
    }.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    """Drop the identity tables and ``projects``."""
    for table in ("projects", "api_keys", "auth_sessions", "memberships", "users"):
        op.drop_table(table)
