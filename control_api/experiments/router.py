"""Routes of ``/v1/experiments``, ``/v1/runs`` and ``/v1/alerts/{id}/lineage``.

Each is a permission check and one call on the caller's tracking store (MLflow when
``DRIFTLINE_MLFLOW_TRACKING_URI`` is set, else Driftline's tables), or on the service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from control_api.deps import ContextDep, Principal, PrincipalDep, SessionDep, require
from control_api.errors import responses
from control_api.experiments import lineage, service
from control_api.experiments.mlflow_tracking import MlflowTracking
from control_api.experiments.schemas import (
    ExperimentCreate,
    ExperimentRead,
    ExperimentUpdate,
    Lineage,
    LogBatch,
    MetricHistory,
    RunComparison,
    RunCreate,
    RunRead,
    RunStatus,
    RunUpdate,
)
from control_api.experiments.store import ExperimentSort, TrackingStore
from control_api.experiments.tables import SqlTracking
from control_api.models_registry.service import mlflow_namespace
from control_api.rbac import Permission
from control_api.schemas import LIMIT_DEFAULT, LIMIT_MAX, Page

__all__ = ["Tracking", "experiments", "get_tracking", "lineage_router", "routers", "runs"]

experiments = APIRouter(prefix="/v1/experiments", tags=["experiments"])
runs = APIRouter(prefix="/v1/runs", tags=["experiments"])
lineage_router = APIRouter(prefix="/v1/alerts", tags=["experiments"])
routers = (experiments, runs, lineage_router)

Reader = Annotated[Principal, Depends(require(Permission.EXPERIMENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.EXPERIMENTS_WRITE))]
LineageReader = Annotated[Principal, Depends(require(Permission.LINEAGE_READ))]
Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX)]
Cursor = Annotated[str | None, Query(max_length=512)]
_ETAG: dict[str, Any] = {
    "ETag": {"description": "The experiment's ETag, for If-Match.", "schema": {"type": "string"}}
}


def _with_etag(code: int, *statuses: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"headers": _ETAG}} | responses(*statuses)


def get_tracking(ctx: ContextDep, session: SessionDep, principal: PrincipalDep) -> TrackingStore:
    """The caller's tracking store: its MLflow namespace when MLflow is configured."""
    uri = ctx.settings.mlflow_tracking_uri
    if uri:
        return MlflowTracking(uri, namespace=mlflow_namespace(session, org_id=principal.org_id))
    return SqlTracking(session, org_id=principal.org_id)


Tracking = Annotated[TrackingStore, Depends(get_tracking)]


@experiments.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=_with_etag(201, 401, 403, 409, 422, 429, 503),
)
def create_experiment(
    body: ExperimentCreate,
    principal: Writer,
    session: SessionDep,
    store: Tracking,
    response: Response,
) -> ExperimentRead:
    """Create an experiment in the caller's organization."""
    created = service.create_experiment(
        store, session, org_id=principal.org_id, actor=principal.id, body=body
    )
    response.headers["ETag"] = service.etag_of(created)
    return created


@experiments.get("", responses=responses(400, 401, 403, 422, 429, 503))
def list_experiments(
    principal: Reader,
    store: Tracking,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
    sort: ExperimentSort = "name",
    name_prefix: Annotated[str | None, Query(max_length=200)] = None,
    project_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[ExperimentRead]:
    """The organization's experiments, a page at a time."""
    return store.list_experiments(
        limit=limit, cursor=cursor, sort=sort, name_prefix=name_prefix, project_id=project_id
    )


@experiments.get("/{experiment_id}", responses=_with_etag(200, 401, 403, 404, 429, 503))
def get_experiment(
    experiment_id: str, principal: Reader, store: Tracking, response: Response
) -> ExperimentRead:
    """One experiment; its ETag covers name, description, tags and project."""
    found = store.get_experiment(experiment_id)
    response.headers["ETag"] = service.etag_of(found)
    return found


@experiments.patch(
    "/{experiment_id}",
    responses=_with_etag(200, 401, 403, 404, 409, 412, 422, 428, 429, 503),
)
def update_experiment(
    experiment_id: str,
    body: ExperimentUpdate,
    principal: Writer,
    store: Tracking,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> ExperimentRead:
    """Rename, describe or retag an experiment; ``If-Match`` carries the ETag read (412)."""
    updated = service.update_experiment(
        store, experiment_id=experiment_id, if_match=if_match, body=body
    )
    response.headers["ETag"] = service.etag_of(updated)
    return updated


@experiments.delete(
    "/{experiment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409, 429, 503),
)
def delete_experiment(
    experiment_id: str, principal: Writer, session: SessionDep, store: Tracking
) -> None:
    """Delete an experiment and its runs (409 while a model version came from one)."""
    service.delete_experiment(store, session, org_id=principal.org_id, experiment_id=experiment_id)


@experiments.post(
    "/{experiment_id}/runs",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 422, 429, 503),
)
def create_run(experiment_id: str, body: RunCreate, principal: Writer, store: Tracking) -> RunRead:
    """Start a run of the experiment."""
    return store.create_run(experiment_id, body=body, actor=principal.id)


@experiments.get("/{experiment_id}/runs", responses=responses(400, 401, 403, 404, 422, 429, 503))
def list_runs(
    experiment_id: str,
    principal: Reader,
    store: Tracking,
    status: RunStatus | None = None,
    param: Annotated[
        list[str] | None, Query(description="key=value; repeat for more (all must hold).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        Query(description="key<op>number on the latest value; op: = != < <= > >=."),
    ] = None,
    sort: Annotated[
        str,
        Query(max_length=260, description="start_time or metrics.<key>; '-' for descending."),
    ] = "-start_time",
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> Page[RunRead]:
    """The experiment's runs, filtered by status, params and metrics, sorted, a page at a time."""
    return service.list_runs(
        store,
        experiment_id=experiment_id,
        status=status,
        params=param or [],
        metrics=metric or [],
        sort=sort,
        limit=limit,
        cursor=cursor,
    )


@runs.get("/compare", responses=responses(401, 403, 404, 422, 429, 503))
def compare_runs(
    principal: Reader,
    store: Tracking,
    run_ids: Annotated[str, Query(max_length=6000, description="Up to 20 run ids, a,b,c.")],
    history: Annotated[
        str | None, Query(max_length=3000, description="Up to 10 metric keys, a,b.")
    ] = None,
) -> RunComparison:
    """Runs side by side: params and latest metrics, and the histories of chosen metrics."""
    return service.compare_runs(store, run_ids=run_ids, history=history)


@runs.get("/{run_id}", responses=responses(401, 403, 404, 429, 503))
def get_run(run_id: str, principal: Reader, store: Tracking) -> RunRead:
    """One run with its tags, params and latest metrics."""
    return store.get_run(run_id)


@runs.patch("/{run_id}", responses=responses(401, 403, 404, 422, 429, 503))
def update_run(run_id: str, body: RunUpdate, principal: Writer, store: Tracking) -> RunRead:
    """End a run (FINISHED, FAILED, KILLED), change its status or rename it."""
    return store.update_run(run_id, changes=body)


@runs.post(
    "/{run_id}/log-batch",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409, 422, 429, 503),
)
def log_batch(run_id: str, body: LogBatch, principal: Writer, store: Tracking) -> None:
    """Log metrics, params and tags (MLflow's limits: 1000 metrics, 100 params, 100 tags)."""
    service.log_batch(store, run_id=run_id, batch=body)


@runs.get("/{run_id}/metrics/{key:path}", responses=responses(401, 403, 404, 422, 429, 503))
def metric_history(run_id: str, key: str, principal: Reader, store: Tracking) -> MetricHistory:
    """Every point of one metric of the run (keys may hold ``/``), by step."""
    return service.metric_history(store, run_id=run_id, key=key)


@lineage_router.get("/{alert_id}/lineage", responses=responses(401, 403, 404, 429, 503))
def alert_lineage(
    alert_id: str, principal: LineageReader, session: SessionDep, store: Tracking
) -> Lineage:
    """Where the alert comes from: deployment, model version, training run, experiment."""
    return lineage.alert_lineage(session, store, org_id=principal.org_id, alert_id=alert_id)
