"""Queries on registered models, versions, reviews, aliases and the registry history.

The tenant filter is added by :mod:`storage.tenancy`; the explicit ``org_id`` conditions
here are the first wall, not the only one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api.pagination import fetch_page
from storage.models import (
    ModelAlias,
    ModelEvent,
    ModelVersion,
    ModelVersionReview,
    Organization,
    Project,
    RegisteredModel,
)

__all__ = [
    "alias",
    "aliases",
    "events_page",
    "model_by_id",
    "model_by_name",
    "models_page",
    "org_slug",
    "passing_review_exists",
    "project_exists",
    "reviews",
    "version_by_id",
    "version_by_number",
    "versions_page",
]


def org_slug(session: Session, *, org_id: str) -> str:
    """The organization's slug (its MLflow namespace)."""
    org = session.get(Organization, org_id)
    assert org is not None  # the caller's own organization
    return org.slug


def project_exists(session: Session, *, org_id: str, project_id: str) -> bool:
    """Whether ``project_id`` is a project of ``org_id``."""
    found = session.scalars(
        select(Project.id).where(Project.org_id == org_id, Project.id == project_id)
    ).first()
    return found is not None


def model_by_id(session: Session, *, org_id: str, model_id: str) -> RegisteredModel | None:
    """The model ``model_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(RegisteredModel).where(
            RegisteredModel.org_id == org_id, RegisteredModel.id == model_id
        )
    ).first()


def model_by_name(session: Session, *, org_id: str, name: str) -> RegisteredModel | None:
    """The model named ``name`` in ``org_id``, or ``None``."""
    return session.scalars(
        select(RegisteredModel).where(
            RegisteredModel.org_id == org_id, RegisteredModel.name == name
        )
    ).first()


def models_page(
    session: Session, *, org_id: str, limit: int, cursor: str | None, name_prefix: str | None
) -> tuple[Sequence[RegisteredModel], str | None]:
    """One page of ``org_id``'s models by name."""
    statement = select(RegisteredModel).where(RegisteredModel.org_id == org_id)
    if name_prefix:
        statement = statement.where(RegisteredModel.name.startswith(name_prefix, autoescape=True))
    return fetch_page(
        session,
        statement,
        sort=RegisteredModel.name,
        id_column=RegisteredModel.id,
        descending=False,
        limit=limit,
        cursor=cursor,
    )


def version_by_number(
    session: Session, *, org_id: str, model_id: str, number: int
) -> ModelVersion | None:
    """Version ``number`` of the model, or ``None``."""
    return session.scalars(
        select(ModelVersion).where(
            ModelVersion.org_id == org_id,
            ModelVersion.model_id == model_id,
            ModelVersion.number == number,
        )
    ).first()


def version_by_id(session: Session, *, org_id: str, version_id: str) -> ModelVersion | None:
    """The version ``version_id`` of ``org_id``, or ``None``."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.org_id == org_id, ModelVersion.id == version_id)
    ).first()


def versions_page(
    session: Session, *, org_id: str, model_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[ModelVersion], str | None]:
    """One page of the model's versions, newest first."""
    statement = select(ModelVersion).where(
        ModelVersion.org_id == org_id, ModelVersion.model_id == model_id
    )
    return fetch_page(
        session,
        statement,
        sort=ModelVersion.created_at,
        id_column=ModelVersion.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def reviews(session: Session, *, org_id: str, version_id: str) -> Sequence[ModelVersionReview]:
    """Every review of a version, oldest first."""
    return session.scalars(
        select(ModelVersionReview)
        .where(ModelVersionReview.org_id == org_id, ModelVersionReview.version_id == version_id)
        .order_by(ModelVersionReview.created_at, ModelVersionReview.id)
    ).all()


def passing_review_exists(session: Session, *, org_id: str, version_id: str) -> bool:
    """Whether the version has a passing approval or evaluation."""
    found = session.scalars(
        select(ModelVersionReview.id).where(
            ModelVersionReview.org_id == org_id,
            ModelVersionReview.version_id == version_id,
            ModelVersionReview.passed.is_(True),
        )
    ).first()
    return found is not None


def alias(session: Session, *, org_id: str, model_id: str, name: str) -> ModelAlias | None:
    """The alias ``name`` of the model, or ``None``."""
    return session.scalars(
        select(ModelAlias).where(
            ModelAlias.org_id == org_id, ModelAlias.model_id == model_id, ModelAlias.alias == name
        )
    ).first()


def aliases(
    session: Session, *, org_id: str, model_id: str
) -> Sequence[tuple[ModelAlias, ModelVersion]]:
    """Every alias of the model with its version, by alias name."""
    rows = session.execute(
        select(ModelAlias, ModelVersion)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.org_id == org_id, ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    ).all()
    return [(row[0], row[1]) for row in rows]


def events_page(
    session: Session, *, org_id: str, model_id: str, limit: int, cursor: str | None
) -> tuple[Sequence[ModelEvent], str | None]:
    """One page of the model's history, newest first."""
    statement = select(ModelEvent).where(
        ModelEvent.org_id == org_id, ModelEvent.model_id == model_id
    )
    return fetch_page(
        session,
        statement,
        sort=ModelEvent.created_at,
        id_column=ModelEvent.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
