"""The tracking store as a tenant-scoped proxy of an MLflow tracking server.

MLflow is reached with one service account (as for the registry, see
:mod:`control_api.models_registry.mlflow_sync`); each organization's experiments are the
active MLflow experiments named ``<organization slug>.<name>``. Every read checks that: a
run is looked up, then its experiment, and a run or experiment outside the namespace (or
deleted) answers the same 404 as one that does not exist, so guessing another
organization's ids tells nothing. Runs listed are searched inside one checked experiment.

Driftline keeps a few fields as MLflow tags: the description is ``mlflow.note.content``,
the creator ``driftline.created_by`` (experiments) or ``mlflow.user`` (runs), the project
``driftline.project_id``; they are fields here, not tags.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from control_api.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from control_api.experiments.schemas import (
    TERMINAL_STATUSES,
    ExperimentCreate,
    ExperimentRead,
    ExperimentUpdate,
    LogBatch,
    MetricPoint,
    RunCreate,
    RunRead,
    RunUpdate,
)
from control_api.experiments.store import ExperimentSort, ParamConflict, RunQuery, experiment_etag
from control_api.models_registry.mlflow_sync import MlflowUnavailable
from control_api.pagination import InvalidCursor
from control_api.schemas import Page

__all__ = ["MlflowTracking"]

NOTE = "mlflow.note.content"
CREATED_BY = "driftline.created_by"
PROJECT = "driftline.project_id"
_HIDDEN = frozenset({NOTE, CREATED_BY, PROJECT, "mlflow.runName", "mlflow.user"})
_RUN_ID = re.compile(r"^[A-Za-z0-9][\w-]{0,255}$")  # MLflow's own rule for run ids
_SORTS = {"name": "name", "created_at": "creation_time"}


def _literal(value: str) -> str:
    """``value`` quoted for an MLflow filter string.

    >>> print(_literal("0.1"), _literal("it's"))
    '0.1' "it's"
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise InvalidInput("MLflow cannot filter on a value holding both kinds of quotes.")


def _number(value: float) -> str:
    """``value`` written without an exponent, which MLflow's filter parser does not read.

    >>> _number(1e-05), _number(0.5)
    ('0.00001', '0.5')
    """
    return format(Decimal(repr(value)), "f")


def _time(ms: int | None) -> datetime:
    """An MLflow time (epoch ms); experiments made before MLflow 1.29 have none: 1970."""
    return datetime.fromtimestamp((ms or 0) / 1000, UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _cursor_errors(cursor: str | None) -> dict[str, Exception] | None:
    """With a cursor, MLflow's "invalid parameter" is about the page token it came from."""
    return (
        None
        if cursor is None
        else {"INVALID_PARAMETER_VALUE": InvalidCursor("The cursor is not valid.")}
    )


def _visible(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(tags.items()) if k not in _HIDDEN}


class MlflowTracking:
    """Experiments and runs of one organization (name prefix ``namespace.``) in MLflow."""

    def __init__(self, tracking_uri: str, *, namespace: str) -> None:
        from mlflow import MlflowClient

        self._client: Any = MlflowClient(tracking_uri=tracking_uri)
        self.prefix = f"{namespace}."

    def _call(
        self, method: str, *args: Any, errors: dict[str, Exception] | None = None, **kwargs: Any
    ) -> Any:
        """Call MLflow; an error code in ``errors`` raises that error, any other is a 503."""
        from mlflow.exceptions import MlflowException

        try:
            return getattr(self._client, method)(*args, **kwargs)
        except MlflowException as error:
            if errors and error.error_code in errors:
                raise errors[error.error_code] from error
            raise MlflowUnavailable(f"MLflow refused {method}: {error.message}") from error
        except OSError as error:
            raise MlflowUnavailable(f"MLflow could not be reached: {error}") from error

    # --- experiments

    def _experiment(self, experiment_id: str) -> Any:
        """The MLflow experiment, if it is an active one of this namespace; else 404."""
        missing = NotFound("No such experiment.")
        found = self._call(
            "get_experiment",
            experiment_id,
            errors={"RESOURCE_DOES_NOT_EXIST": missing, "INVALID_PARAMETER_VALUE": missing},
        )
        if not found.name.startswith(self.prefix) or found.lifecycle_stage != "active":
            raise missing
        return found

    def _read_experiment(self, found: Any) -> ExperimentRead:
        tags = dict(found.tags or {})
        return ExperimentRead(
            id=found.experiment_id,
            name=found.name.removeprefix(self.prefix),
            description=tags.get(NOTE, ""),
            tags=_visible(tags),
            project_id=tags.get(PROJECT),
            created_by=tags.get(CREATED_BY, ""),
            created_at=_time(found.creation_time),
            updated_at=_time(found.last_update_time),
        )

    def _taken(self, name: str) -> Conflict | None:
        """The 409 for ``name`` if taken (``None`` if free); deleted names stay taken in MLflow."""
        remote = self._call("get_experiment_by_name", self.prefix + name)
        if remote is None:
            return None
        if remote.lifecycle_stage == "deleted":
            return Conflict(
                "An experiment of this name was deleted; MLflow keeps the name until the "
                "deleted experiment is purged (mlflow gc)."
            )
        return Conflict("An experiment with this name already exists.")

    def create_experiment(self, *, body: ExperimentCreate, actor: str) -> ExperimentRead:
        """A new experiment ``<slug>.<name>`` in MLflow."""
        tags = {**body.tags, CREATED_BY: actor}
        if body.description:
            tags[NOTE] = body.description
        if body.project_id:
            tags[PROJECT] = body.project_id
        try:
            experiment_id = self._call(
                "create_experiment",
                self.prefix + body.name,
                tags=tags,
                errors={
                    "RESOURCE_ALREADY_EXISTS": Conflict(
                        "An experiment with this name already exists."
                    )
                },
            )
        except Conflict as taken:
            raise self._taken(body.name) or taken from None
        return self.get_experiment(experiment_id)

    def get_experiment(self, experiment_id: str) -> ExperimentRead:
        """One experiment of this namespace."""
        return self._read_experiment(self._experiment(experiment_id))

    def list_experiments(
        self,
        *,
        limit: int,
        cursor: str | None,
        sort: ExperimentSort,
        name_prefix: str | None,
        project_id: str | None,
    ) -> Page[ExperimentRead]:
        """A page of this namespace's active experiments.

        MLflow's ``LIKE`` takes ``_`` as a wildcard, so the prefix is checked again here; a
        page may then hold fewer than ``limit`` items with more to come.
        """
        prefix = self.prefix + (name_prefix or "")
        clauses = [f"name LIKE {_literal(prefix + '%')}"]
        if project_id:
            clauses.append(f"tags.`{PROJECT}` = {_literal(project_id)}")
        direction = "DESC" if sort.startswith("-") else "ASC"
        found = self._call(
            "search_experiments",
            max_results=limit,
            filter_string=" AND ".join(clauses),
            order_by=[f"{_SORTS[sort.lstrip('-')]} {direction}", f"experiment_id {direction}"],
            page_token=cursor,
            errors=_cursor_errors(cursor),
        )
        items = [self._read_experiment(e) for e in found if e.name.startswith(prefix)]
        return Page(items=items, next_cursor=found.token or None)

    def update_experiment(
        self, experiment_id: str, *, etag: str, changes: ExperimentUpdate
    ) -> ExperimentRead:
        """Apply ``changes`` if the ETag still matches.

        MLflow has no conditional update: the check and the writes are separate calls, so
        a change made between them (by another client of MLflow) is not detected.
        """
        found = self._experiment(experiment_id)
        if experiment_etag(self._read_experiment(found)) != etag:
            raise PreconditionFailed("The experiment changed since you read it; read it again.")
        if changes.name is not None and self.prefix + changes.name != found.name:
            # MLflow answers a rename onto a taken name with its database's error: ask first
            taken = self._taken(changes.name)
            if taken is not None:
                raise taken
            self._call("rename_experiment", experiment_id, self.prefix + changes.name)
        if changes.description is not None:
            self._call("set_experiment_tag", experiment_id, NOTE, changes.description)
        if changes.tags is not None:
            current = _visible(dict(found.tags or {}))
            for key in current.keys() - changes.tags.keys():
                self._call("delete_experiment_tag", experiment_id, key)
            for key, value in changes.tags.items():
                if current.get(key) != value:
                    self._call("set_experiment_tag", experiment_id, key, value)
        return self.get_experiment(experiment_id)

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete the experiment (MLflow marks it and its runs deleted)."""
        self._experiment(experiment_id)
        self._call("delete_experiment", experiment_id)

    # --- runs

    def _run(self, run_id: str) -> Any:
        """The MLflow run, if active and in an active experiment of this namespace; else 404."""
        missing = NotFound("No such run.")
        found = self._call(
            "get_run",
            run_id,
            errors={"RESOURCE_DOES_NOT_EXIST": missing, "INVALID_PARAMETER_VALUE": missing},
        )
        if found.info.lifecycle_stage != "active":
            raise missing
        try:
            self._experiment(found.info.experiment_id)
        except NotFound:
            raise missing from None
        return found

    @staticmethod
    def _read_run(found: Any) -> RunRead:
        info, data = found.info, found.data
        return RunRead(
            id=info.run_id,
            experiment_id=info.experiment_id,
            name=info.run_name or "",
            status=info.status,
            start_time=_time(info.start_time),
            end_time=None if info.end_time is None else _time(info.end_time),
            created_by=data.tags.get("mlflow.user", ""),
            tags=_visible(dict(data.tags)),
            params=dict(sorted(data.params.items())),
            metrics=dict(sorted(data.metrics.items())),
        )

    def create_run(self, experiment_id: str, *, body: RunCreate, actor: str) -> RunRead:
        """A new ``RUNNING`` run; MLflow names it when ``body.name`` is empty."""
        self._experiment(experiment_id)
        created = self._call(
            "create_run",
            experiment_id,
            start_time=_ms(body.start_time or datetime.now(UTC)),
            tags={**body.tags, "mlflow.user": actor},
            run_name=body.name or None,
        )
        return self._read_run(created)

    def get_run(self, run_id: str) -> RunRead:
        """One run of this namespace."""
        return self._read_run(self._run(run_id))

    def list_runs(
        self, experiment_id: str, *, query: RunQuery, limit: int, cursor: str | None
    ) -> Page[RunRead]:
        """A page of the experiment's active runs, filtered and sorted by MLflow."""
        self._experiment(experiment_id)
        clauses = []
        if query.status is not None:
            clauses.append(f"attributes.status = '{query.status}'")
        clauses += [f"params.`{key}` = {_literal(value)}" for key, value in query.params]
        clauses += [f"metrics.`{m.key}` {m.op} {_number(m.value)}" for m in query.metrics]
        direction = "DESC" if query.descending else "ASC"
        field = f"metrics.`{query.sort_metric}`" if query.sort_metric else "attributes.start_time"
        found = self._call(
            "search_runs",
            [experiment_id],
            filter_string=" and ".join(clauses),
            max_results=limit,
            order_by=[f"{field} {direction}", f"attributes.run_id {direction}"],
            page_token=cursor,
            errors=_cursor_errors(cursor),
        )
        return Page(items=[self._read_run(r) for r in found], next_cursor=found.token or None)

    def update_run(self, run_id: str, *, changes: RunUpdate) -> RunRead:
        """Change the status (a terminal one ends the run) or the name, in one MLflow call."""
        from mlflow.entities import RunStatus

        found = self._run(run_id)
        status = changes.status or found.info.status
        end_time = found.info.end_time
        if changes.status in TERMINAL_STATUSES:
            end_time = _ms(changes.end_time or datetime.now(UTC))
        # the store's update_run_info: MlflowClient.set_terminated would also print the run's
        # URL to stdout, and MlflowClient.update_run cannot set the end time
        store = self._client._tracking_client.store
        try:
            store.update_run_info(run_id, RunStatus.from_string(status), end_time, changes.name)
        except OSError as error:
            raise MlflowUnavailable(f"MLflow could not be reached: {error}") from error
        return self.get_run(run_id)

    def log_batch(self, run_id: str, *, batch: LogBatch, now_ms: int) -> None:
        """Log a batch through MLflow's ``log-batch``; 409 (nothing logged) if a param changes."""
        from mlflow.entities import Metric, Param, RunTag

        found = self._run(run_id)
        params = found.data.params
        changed = sorted(k for k, v in batch.params.items() if params.get(k, v) != v)
        if changed:
            raise ParamConflict(f"Params are set once; these already have other values: {changed}")
        self._call(
            "log_batch",
            run_id,
            metrics=[
                Metric(m.key, m.value, now_ms if m.timestamp is None else m.timestamp, m.step)
                for m in batch.metrics
            ],
            params=[Param(k, v) for k, v in batch.params.items()],
            tags=[RunTag(k, v) for k, v in batch.tags.items()],
            synchronous=True,
            errors={  # a param changed by another client since the check above
                "INVALID_PARAMETER_VALUE": ParamConflict(
                    "MLflow refused the batch: a param already has another value."
                )
            },
        )

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of the run's metric ``key`` by step, then timestamp, then value."""
        self._run(run_id)
        points = self._call("get_metric_history", run_id, key)
        return sorted(
            (MetricPoint(step=p.step, timestamp=p.timestamp, value=p.value) for p in points),
            key=lambda p: (p.step, p.timestamp, p.value),
        )

    def runs_of_experiment(self, experiment_id: str, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` are runs of the experiment (searched 100 ids at a time)."""
        candidates = sorted({r for r in run_ids if _RUN_ID.match(r)})
        found: set[str] = set()
        for start in range(0, len(candidates), 100):
            chunk = ", ".join(f"'{r}'" for r in candidates[start : start + 100])
            runs = self._call(
                "search_runs",
                [experiment_id],
                filter_string=f"attributes.run_id IN ({chunk})",
                max_results=100,
            )
            found |= {r.info.run_id for r in runs}
        return found
