"""The tracking store: one interface, two backends, each bound to ONE organization.

:class:`~control_api.experiments.tables.SqlTracking` keeps experiments and runs in
Driftline's own tables; :class:`~control_api.experiments.mlflow_tracking.MlflowTracking`
proxies an MLflow tracking server (when ``DRIFTLINE_MLFLOW_TRACKING_URI`` is set). Every
method answers :class:`~control_api.errors.NotFound` for an experiment or run of another
organization exactly as for one that does not exist.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal, Protocol

from control_api.errors import Conflict, InvalidInput, NotFound
from control_api.experiments.schemas import (
    ExperimentCreate,
    ExperimentRead,
    ExperimentUpdate,
    LogBatch,
    MetricPoint,
    RunCreate,
    RunRead,
    RunUpdate,
)
from control_api.schemas import Page

__all__ = [
    "Comparison",
    "ExperimentSort",
    "MetricFilter",
    "ParamConflict",
    "RunQuery",
    "TrackingStore",
    "experiment_etag",
    "require_run",
]

ExperimentSort = Literal["name", "-name", "created_at", "-created_at"]
Comparison = Literal["=", "!=", "<", "<=", ">", ">="]


class ParamConflict(Conflict):
    """A param sent again with another value: params are set once (409)."""

    kind = "/problems/param-immutable"


@dataclass(frozen=True)
class MetricFilter:
    """Runs whose latest ``key`` value compares to ``value`` with ``op``."""

    key: str
    op: Comparison
    value: float


@dataclass(frozen=True)
class RunQuery:
    """Which runs of an experiment, in which order.

    ``params`` are (key, value) equalities; ``sort_metric`` orders by that metric's latest
    value (runs without it last, in either direction), else by start time; ties by run id.
    """

    status: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    metrics: tuple[MetricFilter, ...] = ()
    sort_metric: str | None = None
    descending: bool = True


def experiment_etag(experiment: ExperimentRead) -> str:
    """The experiment's ETag: a hash of what a client can change, the same in both backends.

    >>> from datetime import UTC, datetime
    >>> now = datetime.now(UTC)
    >>> a = ExperimentRead(id="1", name="a", description="", tags={}, project_id=None,
    ...                    created_by="u", created_at=now, updated_at=now)
    >>> experiment_etag(a) == experiment_etag(a.model_copy(update={"updated_at": now}))
    True
    >>> experiment_etag(a) == experiment_etag(a.model_copy(update={"name": "b"}))
    False
    """
    state = [experiment.id, experiment.name, experiment.description, experiment.project_id]
    raw = json.dumps([state, sorted(experiment.tags.items())], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


class TrackingStore(Protocol):
    """Experiments and runs of one organization."""

    def create_experiment(self, *, body: ExperimentCreate, actor: str) -> ExperimentRead:
        """A new experiment; 409 if the name is taken."""
        ...

    def get_experiment(self, experiment_id: str) -> ExperimentRead:
        """One experiment; 404 if missing or another organization's."""
        ...

    def list_experiments(
        self,
        *,
        limit: int,
        cursor: str | None,
        sort: ExperimentSort,
        name_prefix: str | None,
        project_id: str | None,
    ) -> Page[ExperimentRead]:
        """A page of experiments."""
        ...

    def update_experiment(
        self, experiment_id: str, *, etag: str, changes: ExperimentUpdate
    ) -> ExperimentRead:
        """Apply ``changes`` if the experiment's ETag is still ``etag`` (412 if not)."""
        ...

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment and its runs."""
        ...

    def create_run(self, experiment_id: str, *, body: RunCreate, actor: str) -> RunRead:
        """A new run of the experiment."""
        ...

    def get_run(self, run_id: str) -> RunRead:
        """One run with its data; 404 if missing or another organization's."""
        ...

    def list_runs(
        self, experiment_id: str, *, query: RunQuery, limit: int, cursor: str | None
    ) -> Page[RunRead]:
        """A page of the experiment's runs matching ``query``."""
        ...

    def update_run(self, run_id: str, *, changes: RunUpdate) -> RunRead:
        """Change a run's status (ending it at a terminal one) or name."""
        ...

    def log_batch(self, run_id: str, *, batch: LogBatch, now_ms: int) -> None:
        """Log metrics (``timestamp`` default ``now_ms``), params (set once) and tags."""
        ...

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of the run's metric ``key`` by step, then timestamp, then value."""
        ...

    def runs_of_experiment(self, experiment_id: str, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` are runs of the experiment."""
        ...


def require_run(store: TrackingStore, run_id: str) -> RunRead:
    """The run ``run_id`` of the store's organization; 422 if there is none (a bad link)."""
    try:
        return store.get_run(run_id)
    except NotFound:
        raise InvalidInput(f"{run_id!r} is not a run of this organization.") from None
