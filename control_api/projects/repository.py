"""Queries on projects.

The tenant filter is added by :mod:`storage.tenancy`; the explicit ``org_id`` conditions
here are the first wall, not the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import Project

__all__ = ["ProjectSort", "by_id", "compare_and_update", "page"]

ProjectSort = Literal["created_at", "-created_at", "name", "-name"]


def by_id(session: Session, *, org_id: str, project_id: str) -> Project | None:
    """The project ``project_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(Project).where(Project.org_id == org_id, Project.id == project_id)
    ).first()


def page(
    session: Session,
    *,
    org_id: str,
    limit: int,
    cursor: str | None,
    sort: ProjectSort,
    name_prefix: str | None,
) -> tuple[Sequence[Project], str | None]:
    """One page of ``org_id``'s projects, optionally only names starting with ``name_prefix``."""
    statement = select(Project).where(Project.org_id == org_id)
    if name_prefix:
        statement = statement.where(Project.name.startswith(name_prefix, autoescape=True))
    column = Project.name if sort.lstrip("-") == "name" else Project.created_at
    return fetch_page(
        session,
        statement,
        sort=column,
        id_column=Project.id,
        descending=sort.startswith("-"),
        limit=limit,
        cursor=cursor,
    )


def compare_and_update(
    session: Session, *, org_id: str, project_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` if the project is still at ``version`` (bumping it); ``False`` if not."""
    result = session.execute(
        update(Project)
        .where(Project.org_id == org_id, Project.id == project_id, Project.version == version)
        .values(**values, version=version + 1, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
