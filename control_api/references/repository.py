"""Queries on reference datasets.

The tenant filter is added by :mod:`storage.tenancy`; the explicit ``org_id`` conditions
here are the first wall, not the only one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import ReferenceDataset

__all__ = ["by_id", "last_number", "page"]


def by_id(session: Session, *, org_id: str, reference_id: str) -> ReferenceDataset | None:
    """The reference dataset ``reference_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(ReferenceDataset).where(
            ReferenceDataset.org_id == org_id, ReferenceDataset.id == reference_id
        )
    ).first()


def last_number(session: Session, *, org_id: str, name: str) -> int:
    """The newest version number of ``name`` (0 when there is none)."""
    found = session.scalar(
        select(func.max(ReferenceDataset.number)).where(
            ReferenceDataset.org_id == org_id, ReferenceDataset.name == name
        )
    )
    return int(found or 0)


def page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, name: str | None
) -> tuple[Sequence[ReferenceDataset], str | None]:
    """One page of ``org_id``'s reference datasets, newest first."""
    statement = select(ReferenceDataset).where(ReferenceDataset.org_id == org_id)
    if name:
        statement = statement.where(ReferenceDataset.name == name)
    return fetch_page(
        session,
        statement,
        sort=ReferenceDataset.created_at,
        id_column=ReferenceDataset.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
