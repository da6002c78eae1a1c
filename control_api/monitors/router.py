"""Routes of ``/v1/monitors``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from control_api.deps import ContextDep, Principal, SessionDep, require
from control_api.errors import responses
from control_api.monitors import service
from control_api.monitors.schemas import EngineMonitor, MonitorCreate, MonitorRead, MonitorUpdate
from control_api.rbac import Permission
from control_api.references.router import StoreDep
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["router"]

router = APIRouter(prefix="/v1/monitors", tags=["monitors"])
Reader = Annotated[Principal, Depends(require(Permission.MONITORS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.MONITORS_WRITE))]
_TAGGED: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"ETag": {"description": "The monitor's version, for If-Match."}}}
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 422, 429))
def create_monitor(
    body: MonitorCreate,
    principal: Writer,
    session: SessionDep,
    store: StoreDep,
    response: Response,
    ctx: ContextDep,
) -> MonitorRead:
    """Create a monitor; it is validated exactly as the engine will read it."""
    created = service.create(
        session, org_id=principal.org_id, body=body, store=store, changes=ctx.monitor_changes
    )
    response.headers["ETag"] = f'"{created.version}"'
    return created


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_monitors(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    deployment_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[MonitorRead]:
    """The organization's monitors, oldest first (one deployment's with deployment_id)."""
    return service.list_page(
        session, org_id=principal.org_id, limit=limit, cursor=cursor, deployment_id=deployment_id
    )


@router.get("/{monitor_id}", responses=_TAGGED | responses(401, 403, 404, 429))
def get_monitor(
    monitor_id: str, principal: Reader, session: SessionDep, response: Response, ctx: ContextDep
) -> MonitorRead:
    """One monitor; its ETag is its version."""
    found = service.get(session, org_id=principal.org_id, monitor_id=monitor_id, cache=ctx.cache)
    response.headers["ETag"] = f'"{found.version}"'
    return found


@router.get("/{monitor_id}/engine", responses=responses(401, 403, 404, 422, 429))
def get_engine_monitor(
    monitor_id: str, principal: Reader, session: SessionDep, store: StoreDep
) -> EngineMonitor:
    """The monitor in the engine's shape (``engine.monitor.Monitor``), profile inline."""
    return service.engine_view(session, org_id=principal.org_id, monitor_id=monitor_id, store=store)


@router.patch("/{monitor_id}", responses=_TAGGED | responses(401, 403, 404, 412, 422, 428, 429))
def update_monitor(
    monitor_id: str,
    body: MonitorUpdate,
    principal: Writer,
    session: SessionDep,
    store: StoreDep,
    response: Response,
    ctx: ContextDep,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> MonitorRead:
    """Change a monitor's reference or spec; ``If-Match`` carries the version read."""
    updated = service.update(
        session,
        org_id=principal.org_id,
        monitor_id=monitor_id,
        if_match=if_match,
        body=body,
        store=store,
        cache=ctx.cache,
        changes=ctx.monitor_changes,
    )
    response.headers["ETag"] = f'"{updated.version}"'
    return updated


@router.delete(
    "/{monitor_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 404, 429)
)
def delete_monitor(
    monitor_id: str, principal: Writer, session: SessionDep, ctx: ContextDep
) -> None:
    """Delete a monitor."""
    service.delete(
        session,
        org_id=principal.org_id,
        monitor_id=monitor_id,
        cache=ctx.cache,
        changes=ctx.monitor_changes,
    )
