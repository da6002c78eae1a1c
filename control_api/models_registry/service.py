"""The model registry of one organization: models, versions, reviews, aliases, history.

Promotion is moving an alias. Aliases in :data:`GUARDED_ALIASES` (``champion``) need a
rule to hold: the version has a passing approval or a passing evaluation recorded on it.
Archived versions take no alias, and a version with an alias cannot be archived. Every
registration, alias move and archive is written to the model's history (who, when, why).

When ``mlflow`` is given, each change is made in MLflow first (so a refusal there leaves
Driftline unchanged), then committed here.

A version's ``source_run`` must name a run of the organization in its tracking store
(MLflow or Driftline's tables; 422 otherwise): the link lineage follows from a deployed
version back to the run it was trained in. Versions imported from MLflow keep MLflow's
run id as it is.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.errors import Conflict, InvalidInput, NotFound
from control_api.experiments.store import TrackingStore, require_run
from control_api.models_registry import repository
from control_api.models_registry.mlflow_sync import MlflowRegistry
from control_api.models_registry.schemas import (
    AliasRead,
    AliasSet,
    ImportSummary,
    ModelCreate,
    ModelEventRead,
    ModelRead,
    ReviewCreate,
    ReviewRead,
    VersionCreate,
    VersionRead,
)
from control_api.schemas import Page
from storage.models import ModelAlias, ModelEvent, ModelVersion, ModelVersionReview, RegisteredModel

__all__ = [
    "GUARDED_ALIASES",
    "PromotionRefused",
    "add_review",
    "archive_version",
    "create_model",
    "create_version",
    "delete_alias",
    "get_model",
    "get_version",
    "history",
    "import_from_mlflow",
    "list_aliases",
    "list_models",
    "list_reviews",
    "list_versions",
    "mlflow_namespace",
    "require_version",
    "set_alias",
]

GUARDED_ALIASES = frozenset({"champion"})
"""Aliases a version gets only with a passing approval or evaluation recorded on it."""

ARCHIVED = "archived"


class PromotionRefused(Conflict):
    """The promotion rule does not hold for this version (409)."""

    kind = "/problems/promotion-refused"


def mlflow_namespace(session: Session, *, org_id: str) -> str:
    """The organization's MLflow name prefix (its slug)."""
    return repository.org_slug(session, org_id=org_id)


def _model(session: Session, *, org_id: str, model_id: str) -> RegisteredModel:
    model = repository.model_by_id(session, org_id=org_id, model_id=model_id)
    if model is None:
        raise NotFound("No such model.")
    return model


def require_version(session: Session, *, org_id: str, model_id: str, number: int) -> ModelVersion:
    """Version ``number`` of the model; 404 when either is missing."""
    _model(session, org_id=org_id, model_id=model_id)
    version = repository.version_by_number(session, org_id=org_id, model_id=model_id, number=number)
    if version is None:
        raise NotFound("No such model version.")
    return version


def _event(
    session: Session,
    *,
    org_id: str,
    model_id: str,
    action: str,
    actor: str,
    alias: str | None = None,
    from_number: int | None = None,
    to_number: int | None = None,
    reason: str = "",
) -> None:
    session.add(
        ModelEvent(
            id=str(uuid.uuid4()),
            org_id=org_id,
            model_id=model_id,
            action=action,
            alias=alias,
            from_number=from_number,
            to_number=to_number,
            actor=actor,
            reason=reason,
            created_at=datetime.now(UTC),
        )
    )


def _commit(session: Session, duplicate: str) -> None:
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(duplicate) from error


def create_model(
    session: Session,
    *,
    org_id: str,
    actor: str,
    body: ModelCreate,
    mlflow: MlflowRegistry | None = None,
) -> ModelRead:
    """Register a new model in ``org_id`` (and in MLflow when configured)."""
    if body.project_id is not None and not repository.project_exists(
        session, org_id=org_id, project_id=body.project_id
    ):
        raise InvalidInput("No such project.")
    if repository.model_by_name(session, org_id=org_id, name=body.name) is not None:
        raise Conflict("A model with this name already exists.")
    if mlflow is not None:
        mlflow.create_model(body.name, description=body.description, tags=body.tags)
    now = datetime.now(UTC)
    model = RegisteredModel(
        id=str(uuid.uuid4()),
        org_id=org_id,
        project_id=body.project_id,
        name=body.name,
        description=body.description,
        tags=body.tags,
        latest_number=0,
        version=1,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(model)
    session.flush()  # no ORM relationships: insert the parent before its history
    _event(session, org_id=org_id, model_id=model.id, action="model_created", actor=actor)
    _commit(session, "A model with this name already exists.")
    return ModelRead.model_validate(model)


def get_model(session: Session, *, org_id: str, model_id: str) -> ModelRead:
    """One model of ``org_id``; 404 if missing or another organization's."""
    return ModelRead.model_validate(_model(session, org_id=org_id, model_id=model_id))


def list_models(
    session: Session, *, org_id: str, limit: int, cursor: str | None, name_prefix: str | None
) -> Page[ModelRead]:
    """A page of ``org_id``'s models by name."""
    rows, next_cursor = repository.models_page(
        session, org_id=org_id, limit=limit, cursor=cursor, name_prefix=name_prefix
    )
    return Page(items=[ModelRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def create_version(
    session: Session,
    *,
    org_id: str,
    model_id: str,
    actor: str,
    body: VersionCreate,
    runs: TrackingStore,
    mlflow: MlflowRegistry | None = None,
) -> VersionRead:
    """Register the model's next version (numbered by MLflow when it is configured).

    ``runs`` is the organization's tracking store, where ``body.source_run`` must be a run.
    """
    model = _model(session, org_id=org_id, model_id=model_id)
    names = [f.name for f in body.feature_schema]
    if len(set(names)) != len(names):
        raise InvalidInput("Feature names in the schema must be unique.")
    if body.source_run:
        require_run(runs, body.source_run)
    if mlflow is not None:
        number = mlflow.create_version(
            model.name,
            source=body.artifact_uri or f"driftline://{model.name}/{model.latest_number + 1}",
            run_id=body.source_run,
            description=body.description,
            tags=body.tags,
        )
    else:
        number = model.latest_number + 1
    version = ModelVersion(
        id=str(uuid.uuid4()),
        org_id=org_id,
        model_id=model.id,
        number=number,
        description=body.description,
        tags=body.tags,
        source_run=body.source_run,
        artifact_uri=body.artifact_uri,
        feature_schema=[f.model_dump() for f in body.feature_schema],
        status="ready",
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    session.add(version)
    model.latest_number = max(model.latest_number, number)
    model.updated_at = datetime.now(UTC)
    _event(
        session,
        org_id=org_id,
        model_id=model.id,
        action="version_created",
        actor=actor,
        to_number=number,
    )
    _commit(session, "This version number was taken concurrently; try again.")
    return VersionRead.model_validate(version)


def get_version(session: Session, *, org_id: str, model_id: str, number: int) -> VersionRead:
    """Version ``number`` of the model."""
    return VersionRead.model_validate(
        require_version(session, org_id=org_id, model_id=model_id, number=number)
    )


def list_versions(
    session: Session, *, org_id: str, model_id: str, limit: int, cursor: str | None
) -> Page[VersionRead]:
    """A page of the model's versions, newest first."""
    _model(session, org_id=org_id, model_id=model_id)
    rows, next_cursor = repository.versions_page(
        session, org_id=org_id, model_id=model_id, limit=limit, cursor=cursor
    )
    return Page(items=[VersionRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def add_review(
    session: Session,
    *,
    org_id: str,
    model_id: str,
    number: int,
    kind: str,
    actor: str,
    body: ReviewCreate,
) -> ReviewRead:
    """Record an approval or an evaluation of version ``number``."""
    version = require_version(session, org_id=org_id, model_id=model_id, number=number)
    review = ModelVersionReview(
        id=str(uuid.uuid4()),
        org_id=org_id,
        version_id=version.id,
        kind=kind,
        passed=body.passed,
        metrics=body.metrics,
        note=body.note,
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    session.add(review)
    _event(
        session,
        org_id=org_id,
        model_id=model_id,
        action=f"{kind}_recorded",
        actor=actor,
        to_number=number,
        reason=body.note,
    )
    session.commit()
    return ReviewRead.model_validate(review)


def list_reviews(session: Session, *, org_id: str, model_id: str, number: int) -> list[ReviewRead]:
    """Every approval and evaluation of version ``number``, oldest first."""
    version = require_version(session, org_id=org_id, model_id=model_id, number=number)
    rows = repository.reviews(session, org_id=org_id, version_id=version.id)
    return [ReviewRead.model_validate(r) for r in rows]


def set_alias(
    session: Session,
    *,
    org_id: str,
    model_id: str,
    alias: str,
    actor: str,
    body: AliasSet,
    mlflow: MlflowRegistry | None = None,
) -> AliasRead:
    """Point ``alias`` at version ``body.version`` (a promotion), checking the rules."""
    model = _model(session, org_id=org_id, model_id=model_id)
    version = require_version(session, org_id=org_id, model_id=model_id, number=body.version)
    if version.status == ARCHIVED:
        raise PromotionRefused("An archived version cannot be promoted.")
    if alias in GUARDED_ALIASES and not repository.passing_review_exists(
        session, org_id=org_id, version_id=version.id
    ):
        raise PromotionRefused(
            f"Version {version.number} needs a passing approval or evaluation to become {alias}."
        )
    current = repository.alias(session, org_id=org_id, model_id=model_id, name=alias)
    previous = None
    if current is not None:
        previous_version = repository.version_by_id(
            session, org_id=org_id, version_id=current.version_id
        )
        previous = previous_version.number if previous_version else None
    if mlflow is not None:
        mlflow.set_alias(model.name, alias, version.number)
    now = datetime.now(UTC)
    if current is None:
        current = ModelAlias(
            id=str(uuid.uuid4()),
            org_id=org_id,
            model_id=model_id,
            alias=alias,
            version_id=version.id,
            updated_at=now,
        )
        session.add(current)
    else:
        current.version_id = version.id
        current.updated_at = now
    _event(
        session,
        org_id=org_id,
        model_id=model_id,
        action="alias_set",
        actor=actor,
        alias=alias,
        from_number=previous,
        to_number=version.number,
        reason=body.reason,
    )
    _commit(session, "The alias was set concurrently; try again.")
    return AliasRead(alias=alias, version=version.number, updated_at=now)


def delete_alias(
    session: Session,
    *,
    org_id: str,
    model_id: str,
    alias: str,
    actor: str,
    mlflow: MlflowRegistry | None = None,
) -> None:
    """Remove ``alias`` from the model (audited)."""
    model = _model(session, org_id=org_id, model_id=model_id)
    current = repository.alias(session, org_id=org_id, model_id=model_id, name=alias)
    if current is None:
        raise NotFound("No such alias.")
    version = repository.version_by_id(session, org_id=org_id, version_id=current.version_id)
    if mlflow is not None:
        mlflow.delete_alias(model.name, alias)
    session.delete(current)
    _event(
        session,
        org_id=org_id,
        model_id=model_id,
        action="alias_removed",
        actor=actor,
        alias=alias,
        from_number=version.number if version else None,
    )
    session.commit()


def list_aliases(session: Session, *, org_id: str, model_id: str) -> list[AliasRead]:
    """Every alias of the model with its version number."""
    _model(session, org_id=org_id, model_id=model_id)
    return [
        AliasRead(alias=a.alias, version=v.number, updated_at=a.updated_at)
        for a, v in repository.aliases(session, org_id=org_id, model_id=model_id)
    ]


def archive_version(
    session: Session,
    *,
    org_id: str,
    model_id: str,
    number: int,
    actor: str,
    mlflow: MlflowRegistry | None = None,
) -> VersionRead:
    """Archive version ``number``; 409 while an alias points at it."""
    model = _model(session, org_id=org_id, model_id=model_id)
    version = require_version(session, org_id=org_id, model_id=model_id, number=number)
    held = [
        a.alias
        for a, v in repository.aliases(session, org_id=org_id, model_id=model_id)
        if v.id == version.id
    ]
    if held:
        raise Conflict(f"Version {number} still has the aliases {held}; move them first.")
    if version.status != ARCHIVED:
        if mlflow is not None:
            mlflow.archive(model.name, number)
        version.status = ARCHIVED
        _event(
            session,
            org_id=org_id,
            model_id=model_id,
            action="version_archived",
            actor=actor,
            from_number=number,
        )
        session.commit()
    return VersionRead.model_validate(version)


def history(
    session: Session, *, org_id: str, model_id: str, limit: int, cursor: str | None
) -> Page[ModelEventRead]:
    """A page of the model's history (registrations, promotions, archives), newest first."""
    _model(session, org_id=org_id, model_id=model_id)
    rows, next_cursor = repository.events_page(
        session, org_id=org_id, model_id=model_id, limit=limit, cursor=cursor
    )
    return Page(items=[ModelEventRead.model_validate(r) for r in rows], next_cursor=next_cursor)


def import_from_mlflow(
    session: Session, *, org_id: str, actor: str, mlflow: MlflowRegistry | None
) -> ImportSummary:
    """Bring the organization's MLflow models, versions and aliases in (idempotent)."""
    if mlflow is None:
        raise InvalidInput("MLflow is not configured (DRIFTLINE_MLFLOW_TRACKING_URI).")
    models = versions = aliases = 0
    now = datetime.now(UTC)
    for remote in mlflow.list_models():
        model = repository.model_by_name(session, org_id=org_id, name=remote.name)
        if model is None:
            model = RegisteredModel(
                id=str(uuid.uuid4()),
                org_id=org_id,
                project_id=None,
                name=remote.name,
                description=remote.description,
                tags=remote.tags,
                latest_number=0,
                version=1,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(model)
            session.flush()
            _event(session, org_id=org_id, model_id=model.id, action="model_imported", actor=actor)
            models += 1
        by_number: dict[int, str] = {}
        for remote_version in sorted(remote.versions, key=lambda v: v.number):
            found = repository.version_by_number(
                session, org_id=org_id, model_id=model.id, number=remote_version.number
            )
            if found is None:
                found = ModelVersion(
                    id=str(uuid.uuid4()),
                    org_id=org_id,
                    model_id=model.id,
                    number=remote_version.number,
                    description=remote_version.description,
                    tags=remote_version.tags,
                    source_run=remote_version.run_id,
                    artifact_uri=remote_version.source,
                    feature_schema=[],
                    status=ARCHIVED if remote_version.tags.get("driftline.archived") else "ready",
                    created_by=actor,
                    created_at=now,
                )
                session.add(found)
                _event(
                    session,
                    org_id=org_id,
                    model_id=model.id,
                    action="version_imported",
                    actor=actor,
                    to_number=remote_version.number,
                )
                versions += 1
            by_number[remote_version.number] = found.id
            model.latest_number = max(model.latest_number, remote_version.number)
        session.flush()
        for name, number in remote.aliases.items():
            if number not in by_number:
                continue
            current = repository.alias(session, org_id=org_id, model_id=model.id, name=name)
            if current is not None and current.version_id == by_number[number]:
                continue
            if current is None:
                session.add(
                    ModelAlias(
                        id=str(uuid.uuid4()),
                        org_id=org_id,
                        model_id=model.id,
                        alias=name,
                        version_id=by_number[number],
                        updated_at=now,
                    )
                )
            else:
                current.version_id = by_number[number]
                current.updated_at = now
            _event(
                session,
                org_id=org_id,
                model_id=model.id,
                action="alias_imported",
                actor=actor,
                alias=name,
                to_number=number,
                reason="imported from MLflow",
            )
            aliases += 1
    _commit(session, "The registry changed during the import; try again.")
    return ImportSummary(models_created=models, versions_created=versions, aliases_set=aliases)
