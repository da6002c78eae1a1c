"""Routes of ``/v1/references``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status

from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.rbac import Permission
from control_api.references import service
from control_api.references.schemas import ProfileRead, ReferenceRead
from control_api.references.store import object_store
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page
from storage.objects import ObjectStore

__all__ = ["StoreDep", "router"]

router = APIRouter(prefix="/v1/references", tags=["references"])
Reader = Annotated[Principal, Depends(require(Permission.REFERENCES_READ))]
Writer = Annotated[Principal, Depends(require(Permission.REFERENCES_WRITE))]


def get_store(ctx: ContextDep) -> ObjectStore:
    """The object store named by the settings."""
    return object_store(ctx.settings)


StoreDep = Annotated[ObjectStore, Depends(get_store)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 409, 413, 415, 422, 429),
)
def upload_reference(
    principal: Writer,
    session: SessionDep,
    ctx: ContextDep,
    store: StoreDep,
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.-]*$")],
    file: Annotated[UploadFile, File(description="A .csv or .parquet file")],
) -> ReferenceRead:
    """Upload a reference dataset; its profile is fitted and stored with it."""
    return service.upload(
        session,
        org_id=principal.org_id,
        actor=principal.id,
        store=store,
        name=name,
        filename=file.filename or "",
        data=file.file,
        max_bytes=ctx.settings.reference_max_bytes,
    )


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_references(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ReferenceRead]:
    """The organization's reference datasets, newest first (one name's versions with name)."""
    return service.list_page(
        session, org_id=principal.org_id, limit=limit, cursor=cursor, name=name
    )


@router.get("/{reference_id}", responses=responses(401, 403, 404, 429))
def get_reference(reference_id: str, principal: Reader, session: SessionDep) -> ReferenceRead:
    """One reference dataset."""
    return service.get(session, org_id=principal.org_id, reference_id=reference_id)


@router.get("/{reference_id}/profile", responses=responses(401, 403, 404, 429))
def get_reference_profile(
    reference_id: str, principal: Reader, session: SessionDep, store: StoreDep
) -> ProfileRead:
    """The profile fitted on a reference dataset."""
    return service.profile(session, org_id=principal.org_id, reference_id=reference_id, store=store)
