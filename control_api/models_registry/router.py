"""Routes of ``/v1/models``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from control_api.deps import ContextDep, Principal, PrincipalDep, SessionDep, require
from control_api.errors import responses
from control_api.experiments.router import Tracking
from control_api.models_registry import service
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
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])
Reader = Annotated[Principal, Depends(require(Permission.MODELS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.MODELS_WRITE))]
Approver = Annotated[Principal, Depends(require(Permission.MODELS_APPROVE))]
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX)]
Cursor = Annotated[str | None, Query(max_length=512)]
Number = Annotated[int, Path(ge=1, le=2**31 - 1)]
AliasName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]


def get_mlflow(
    ctx: ContextDep, session: SessionDep, principal: PrincipalDep
) -> MlflowRegistry | None:
    """The caller's MLflow namespace when ``DRIFTLINE_MLFLOW_TRACKING_URI`` is set."""
    uri = ctx.settings.mlflow_tracking_uri
    if not uri:
        return None
    namespace = service.mlflow_namespace(session, org_id=principal.org_id)
    return MlflowRegistry(uri, namespace=namespace)


Mlflow = Annotated[MlflowRegistry | None, Depends(get_mlflow)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 409, 422, 503, 429)
)
def create_model(
    body: ModelCreate, principal: Writer, session: SessionDep, mlflow: Mlflow
) -> ModelRead:
    """Register a model in the caller's organization."""
    return service.create_model(
        session, org_id=principal.org_id, actor=principal.id, body=body, mlflow=mlflow
    )


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_models(
    principal: Reader,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
    name_prefix: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ModelRead]:
    """The organization's models by name, a page at a time."""
    return service.list_models(
        session, org_id=principal.org_id, limit=limit, cursor=cursor, name_prefix=name_prefix
    )


@router.post(
    "/import-mlflow",
    responses=responses(401, 403, 409, 422, 503, 429),
    response_model=ImportSummary,
)
def import_mlflow(principal: Writer, session: SessionDep, mlflow: Mlflow) -> ImportSummary:
    """Bring the organization's models, versions and aliases in from MLflow."""
    return service.import_from_mlflow(
        session, org_id=principal.org_id, actor=principal.id, mlflow=mlflow
    )


@router.get("/{model_id}", responses=responses(401, 403, 404, 429))
def get_model(model_id: str, principal: Reader, session: SessionDep) -> ModelRead:
    """One model."""
    return service.get_model(session, org_id=principal.org_id, model_id=model_id)


@router.post(
    "/{model_id}/versions",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409, 422, 503, 429),
)
def create_version(
    model_id: str,
    body: VersionCreate,
    principal: Writer,
    session: SessionDep,
    mlflow: Mlflow,
    runs: Tracking,
) -> VersionRead:
    """Register the model's next version; ``source_run`` must be a run of the organization."""
    return service.create_version(
        session,
        org_id=principal.org_id,
        model_id=model_id,
        actor=principal.id,
        body=body,
        runs=runs,
        mlflow=mlflow,
    )


@router.get("/{model_id}/versions", responses=responses(400, 401, 403, 404, 422, 429))
def list_versions(
    model_id: str,
    principal: Reader,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> Page[VersionRead]:
    """The model's versions, newest first."""
    return service.list_versions(
        session, org_id=principal.org_id, model_id=model_id, limit=limit, cursor=cursor
    )


@router.get("/{model_id}/versions/{number}", responses=responses(401, 403, 404, 422, 429))
def get_version(
    model_id: str, number: Number, principal: Reader, session: SessionDep
) -> VersionRead:
    """One version of the model."""
    return service.get_version(session, org_id=principal.org_id, model_id=model_id, number=number)


@router.post(
    "/{model_id}/versions/{number}/archive", responses=responses(401, 403, 404, 409, 422, 503, 429)
)
def archive_version(
    model_id: str, number: Number, principal: Writer, session: SessionDep, mlflow: Mlflow
) -> VersionRead:
    """Archive a version (refused while an alias points at it)."""
    return service.archive_version(
        session,
        org_id=principal.org_id,
        model_id=model_id,
        number=number,
        actor=principal.id,
        mlflow=mlflow,
    )


@router.post(
    "/{model_id}/versions/{number}/approvals",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 422, 429),
)
def approve_version(
    model_id: str, number: Number, body: ReviewCreate, principal: Approver, session: SessionDep
) -> ReviewRead:
    """Record an approval (or a refusal) of a version; admins only."""
    return service.add_review(
        session,
        org_id=principal.org_id,
        model_id=model_id,
        number=number,
        kind="approval",
        actor=principal.id,
        body=body,
    )


@router.post(
    "/{model_id}/versions/{number}/evaluations",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 422, 429),
)
def record_evaluation(
    model_id: str, number: Number, body: ReviewCreate, principal: Writer, session: SessionDep
) -> ReviewRead:
    """Record an evaluation of a version: passed or not, with its metrics."""
    return service.add_review(
        session,
        org_id=principal.org_id,
        model_id=model_id,
        number=number,
        kind="evaluation",
        actor=principal.id,
        body=body,
    )


@router.get("/{model_id}/versions/{number}/reviews", responses=responses(401, 403, 404, 422, 429))
def list_reviews(
    model_id: str, number: Number, principal: Reader, session: SessionDep
) -> list[ReviewRead]:
    """The approvals and evaluations of a version, oldest first."""
    return service.list_reviews(session, org_id=principal.org_id, model_id=model_id, number=number)


@router.get("/{model_id}/aliases", responses=responses(401, 403, 404, 429))
def list_aliases(model_id: str, principal: Reader, session: SessionDep) -> list[AliasRead]:
    """The model's aliases and the versions they point at."""
    return service.list_aliases(session, org_id=principal.org_id, model_id=model_id)


@router.put("/{model_id}/aliases/{alias}", responses=responses(401, 403, 404, 409, 422, 503, 429))
def set_alias(
    model_id: str,
    alias: AliasName,
    body: AliasSet,
    principal: Writer,
    session: SessionDep,
    mlflow: Mlflow,
) -> AliasRead:
    """Point an alias at a version: a promotion, checked against the rules and audited."""
    return service.set_alias(
        session,
        org_id=principal.org_id,
        model_id=model_id,
        alias=alias,
        actor=principal.id,
        body=body,
        mlflow=mlflow,
    )


@router.delete(
    "/{model_id}/aliases/{alias}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422, 503, 429),
)
def delete_alias(
    model_id: str, alias: AliasName, principal: Writer, session: SessionDep, mlflow: Mlflow
) -> None:
    """Remove an alias (audited)."""
    service.delete_alias(
        session,
        org_id=principal.org_id,
        model_id=model_id,
        alias=alias,
        actor=principal.id,
        mlflow=mlflow,
    )


@router.get("/{model_id}/history", responses=responses(400, 401, 403, 404, 422, 429))
def model_history(
    model_id: str,
    principal: Reader,
    session: SessionDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> Page[ModelEventRead]:
    """The model's history: registrations, approvals, promotions, archives; newest first."""
    return service.history(
        session, org_id=principal.org_id, model_id=model_id, limit=limit, cursor=cursor
    )
