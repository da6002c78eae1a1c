"""Routes of ``/v1/deployments``: each a permission check and one service call."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
import yaml
from fastapi import APIRouter, Depends, Header, Query, Response, status

from control_api.deployments import service
from control_api.deployments.schemas import (
    DeploymentCreate,
    DeploymentEventRead,
    DeploymentRead,
    State,
    TrafficSet,
    Transition,
)
from control_api.deps import Principal, SessionDep, require
from control_api.errors import responses
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["router"]

router = APIRouter(prefix="/v1/deployments", tags=["deployments"])
Reader = Annotated[Principal, Depends(require(Permission.DEPLOYMENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.DEPLOYMENTS_WRITE))]
IfMatch = Annotated[str | None, Header(max_length=64)]
_ETAG: dict[str, Any] = {
    "ETag": {"description": "The deployment's version, for If-Match.", "schema": {"type": "string"}}
}
_TAGGED: dict[int | str, dict[str, Any]] = {200: {"headers": _ETAG}}
_TRANSITION = _TAGGED | responses(401, 403, 404, 409, 412, 422, 428, 429)


def _tagged(response: Response, deployment: DeploymentRead) -> DeploymentRead:
    response.headers["ETag"] = f'"{deployment.version}"'
    return deployment


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 404, 422, 429))
def create_deployment(
    body: DeploymentCreate, principal: Writer, session: SessionDep, response: Response
) -> DeploymentRead:
    """Create a pending deployment of a model version."""
    created = service.create(session, org_id=principal.org_id, actor=principal.id, body=body)
    return _tagged(response, created)


@router.get("", responses=responses(400, 401, 403, 422, 429))
def list_deployments(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
    state: State | None = None,
) -> Page[DeploymentRead]:
    """The organization's deployments, newest first, by environment and state."""
    return service.list_page(
        session,
        org_id=principal.org_id,
        limit=limit,
        cursor=cursor,
        environment=environment,
        state=state,
    )


@router.get("/{deployment_id}", responses=_TAGGED | responses(401, 403, 404, 429))
def get_deployment(
    deployment_id: str, principal: Reader, session: SessionDep, response: Response
) -> DeploymentRead:
    """One deployment; its ETag is its version."""
    found = service.get(session, org_id=principal.org_id, deployment_id=deployment_id)
    return _tagged(response, found)


@router.get("/{deployment_id}/events", responses=responses(401, 403, 404, 429))
def deployment_events(
    deployment_id: str, principal: Reader, session: SessionDep
) -> list[DeploymentEventRead]:
    """The audit trail: every transition with who, when and why."""
    return service.events(session, org_id=principal.org_id, deployment_id=deployment_id)


_MANIFESTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The objects: YAML documents, or a JSON `v1` List.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.get(
    "/{deployment_id}/manifests",
    response_class=Response,
    responses=_MANIFESTS | responses(401, 403, 404, 422, 429),
)
def deployment_manifests(
    deployment_id: str,
    principal: Reader,
    session: SessionDep,
    format: Literal["yaml", "json"] = "yaml",
    image: Annotated[
        str, Query(max_length=500, pattern=r"^\S*$", description="Default <name>:<version>")
    ] = "",
    port: Annotated[int, Query(ge=1, le=65535, description="The model server's port")] = 8080,
    max_replicas: Annotated[int, Query(ge=0, le=10_000, description="0: 2 x replicas")] = 0,
    cpu_target: Annotated[int, Query(ge=1, le=100, description="HPA CPU utilization %")] = 70,
) -> Response:
    """Kubernetes Deployment, Service and HorizontalPodAutoscaler for this deployment."""
    objects = service.manifests(
        session,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        image=image,
        port=port,
        max_replicas=max_replicas,
        cpu_target_percent=cpu_target,
    )
    if format == "json":
        listed = {"apiVersion": "v1", "kind": "List", "items": objects}
        return Response(orjson.dumps(listed), media_type="application/json")
    text = yaml.safe_dump_all(objects, sort_keys=False)
    return Response(text, media_type="application/yaml")


@router.post("/{deployment_id}/promote", responses=_TRANSITION)
def promote_deployment(
    deployment_id: str,
    body: Transition,
    principal: Writer,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> DeploymentRead:
    """Make a pending deployment active (100 %), superseding the slot's active one."""
    promoted = service.promote(
        session,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        actor=principal.id,
        if_match=if_match,
        body=body,
    )
    return _tagged(response, promoted)


@router.post("/{deployment_id}/rollback", responses=_TRANSITION)
def rollback_deployment(
    deployment_id: str,
    body: Transition,
    principal: Writer,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> DeploymentRead:
    """Roll back; answers the deployment now serving the slot."""
    serving = service.rollback(
        session,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        actor=principal.id,
        if_match=if_match,
        body=body,
    )
    return _tagged(response, serving)


@router.post("/{deployment_id}/traffic", responses=_TRANSITION)
def set_deployment_traffic(
    deployment_id: str,
    body: TrafficSet,
    principal: Writer,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> DeploymentRead:
    """Give a pending canary a share of the traffic."""
    changed = service.set_traffic(
        session,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        actor=principal.id,
        if_match=if_match,
        body=body,
    )
    return _tagged(response, changed)


@router.post("/{deployment_id}/fail", responses=_TRANSITION)
def fail_deployment(
    deployment_id: str,
    body: Transition,
    principal: Writer,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> DeploymentRead:
    """Record that a pending deployment failed to roll out."""
    failed = service.fail(
        session,
        org_id=principal.org_id,
        deployment_id=deployment_id,
        actor=principal.id,
        if_match=if_match,
        body=body,
    )
    return _tagged(response, failed)
