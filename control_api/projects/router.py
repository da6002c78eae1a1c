"""Routes of ``/v1/projects``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.projects import service
from control_api.projects.repository import ProjectSort
from control_api.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["router"]

router = APIRouter(prefix="/v1/projects", tags=["projects"])
Reader = Annotated[Principal, Depends(require(Permission.PROJECTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROJECTS_WRITE))]
_ETAG: dict[str, Any] = {
    "ETag": {"description": "The project's version, for If-Match.", "schema": {"type": "string"}}
}


def _with_etag(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {200: {"headers": _ETAG}} | responses(*statuses)


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 409, 422, 429))
def create_project(
    body: ProjectCreate, principal: Writer, session: SessionDep, response: Response
) -> ProjectRead:
    """Create a project in the caller's organization."""
    project = service.create(session, org_id=principal.org_id, body=body)
    response.headers["ETag"] = f'"{project.version}"'
    return project


# the two hot reads are async and answer the JSON bytes as stored (no model is rebuilt on a
# hit); the declared response_model keeps their OpenAPI schema


@router.get("", response_model=Page[ProjectRead], responses=responses(400, 401, 403, 422, 429))
async def list_projects(
    principal: Reader,
    session: SessionDep,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    sort: ProjectSort = "created_at",
    name_prefix: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The organization's projects, a page at a time, filtered by name prefix and sorted."""
    body = await service.list_page_json(
        session,
        org_id=principal.org_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        name_prefix=name_prefix,
        fast=ctx.fast,
    )
    return Response(body, media_type="application/json")


@router.get(
    "/{project_id}",
    response_model=ProjectRead,
    responses=_with_etag(401, 403, 404, 429),
)
async def get_project(
    project_id: str, principal: Reader, session: SessionDep, ctx: ContextDep
) -> Response:
    """One project; its ETag is its version."""
    version, body = await service.get_json(
        session, org_id=principal.org_id, project_id=project_id, cache=ctx.cache, fast=ctx.fast
    )
    return Response(body, media_type="application/json", headers={"ETag": f'"{version}"'})


@router.patch(
    "/{project_id}",
    responses=_with_etag(401, 403, 404, 409, 412, 422, 428, 429),
)
def update_project(
    project_id: str,
    body: ProjectUpdate,
    principal: Writer,
    session: SessionDep,
    response: Response,
    ctx: ContextDep,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> ProjectRead:
    """Change a project; ``If-Match`` must carry the version read (412 if it moved on)."""
    project = service.update(
        session,
        org_id=principal.org_id,
        project_id=project_id,
        if_match=if_match,
        body=body,
        cache=ctx.cache,
    )
    response.headers["ETag"] = f'"{project.version}"'
    return project


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 429),
)
def delete_project(
    project_id: str, principal: Writer, session: SessionDep, ctx: ContextDep
) -> None:
    """Delete a project."""
    service.delete(session, org_id=principal.org_id, project_id=project_id, cache=ctx.cache)
