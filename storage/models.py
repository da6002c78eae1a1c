"""Tables of the control database (SQLAlchemy 2 declarative models).

Every table belongs to an organization; later issues add users, projects, models,
deployments, monitors and alert rules here, each with its Alembic migration in
``migrations/versions``. Constraint names follow :data:`NAMING_CONVENTION`, so that
Alembic can alter them by name on PostgreSQL and in SQLite batch mode alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["NAMING_CONVENTION", "Base", "Organization"]

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
