"""The tracking store in Driftline's own tables (used when MLflow is not configured).

Every query names the organization (and :mod:`storage.tenancy` adds it again). Writes to
a run lock its row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one writer),
so the set-once check of params and the latest-point bookkeeping of metrics see every
earlier batch of that run.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api.errors import Conflict, NotFound, PreconditionFailed
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
from control_api.pagination import InvalidCursor, decode_cursor, encode_cursor, fetch_page
from control_api.schemas import Page
from storage.models import Experiment, Run, RunLatestMetric, RunMetric, RunParam

__all__ = ["SqlTracking"]

_DUPLICATE = "An experiment with this name already exists."


_COMPARISONS: dict[str, Callable[[Any, float], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class SqlTracking:
    """Experiments and runs of ``org_id`` in the control database."""

    def __init__(self, session: Session, *, org_id: str) -> None:
        self._session = session
        self._org = org_id

    # --- experiments

    def _experiment(self, experiment_id: str, *, lock: bool = False) -> Experiment:
        statement = select(Experiment).where(
            Experiment.org_id == self._org, Experiment.id == experiment_id
        )
        row = self._session.scalars(statement.with_for_update() if lock else statement).first()
        if row is None:
            raise NotFound("No such experiment.")
        return row

    def _commit(self, duplicate: str) -> None:
        try:
            self._session.commit()
        except IntegrityError as error:
            self._session.rollback()
            raise Conflict(duplicate) from error

    def create_experiment(self, *, body: ExperimentCreate, actor: str) -> ExperimentRead:
        """A new experiment; 409 if the name is taken."""
        now = datetime.now(UTC)
        row = Experiment(
            org_id=self._org,
            project_id=body.project_id,
            name=body.name,
            description=body.description,
            tags=body.tags,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        self._commit(_DUPLICATE)
        return ExperimentRead.model_validate(row, from_attributes=True)

    def get_experiment(self, experiment_id: str) -> ExperimentRead:
        """One experiment; 404 if missing or another organization's."""
        return ExperimentRead.model_validate(self._experiment(experiment_id), from_attributes=True)

    def list_experiments(
        self,
        *,
        limit: int,
        cursor: str | None,
        sort: ExperimentSort,
        name_prefix: str | None,
        project_id: str | None,
    ) -> Page[ExperimentRead]:
        """A page of experiments by name or creation time."""
        statement = select(Experiment).where(Experiment.org_id == self._org)
        if name_prefix:
            statement = statement.where(Experiment.name.startswith(name_prefix, autoescape=True))
        if project_id:
            statement = statement.where(Experiment.project_id == project_id)
        rows, next_cursor = fetch_page(
            self._session,
            statement,
            sort=Experiment.name if sort.lstrip("-") == "name" else Experiment.created_at,
            id_column=Experiment.id,
            descending=sort.startswith("-"),
            limit=limit,
            cursor=cursor,
        )
        items = [ExperimentRead.model_validate(r, from_attributes=True) for r in rows]
        return Page(items=items, next_cursor=next_cursor)

    def update_experiment(
        self, experiment_id: str, *, etag: str, changes: ExperimentUpdate
    ) -> ExperimentRead:
        """Apply ``changes`` if the ETag still matches (the row is locked meanwhile)."""
        row = self._experiment(experiment_id, lock=True)
        current = ExperimentRead.model_validate(row, from_attributes=True)
        if experiment_etag(current) != etag:
            self._session.rollback()
            raise PreconditionFailed("The experiment changed since you read it; read it again.")
        for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(row, field, value)
        row.updated_at = datetime.now(UTC)
        self._commit(_DUPLICATE)
        return ExperimentRead.model_validate(row, from_attributes=True)

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment; its runs, params and metrics go with it (ON DELETE CASCADE)."""
        self._session.delete(self._experiment(experiment_id))
        self._session.commit()

    # --- runs

    def _run(self, run_id: str, *, lock: bool = False) -> Run:
        statement = select(Run).where(Run.org_id == self._org, Run.id == run_id)
        row = self._session.scalars(statement.with_for_update() if lock else statement).first()
        if row is None:
            raise NotFound("No such run.")
        return row

    def _read(self, runs: Sequence[Run]) -> list[RunRead]:
        """The runs with their params and latest metrics (two queries for the lot)."""
        ids = [r.id for r in runs]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        if ids:
            for param in self._session.scalars(
                select(RunParam).where(RunParam.org_id == self._org, RunParam.run_id.in_(ids))
            ):
                params[param.run_id][param.key] = param.value
            for latest in self._session.scalars(
                select(RunLatestMetric).where(
                    RunLatestMetric.org_id == self._org, RunLatestMetric.run_id.in_(ids)
                )
            ):
                metrics[latest.run_id][latest.key] = latest.value
        return [
            RunRead(
                id=r.id,
                experiment_id=r.experiment_id,
                name=r.name,
                status=r.status,  # type: ignore[arg-type] # written from RunStatus only
                start_time=r.start_time,
                end_time=r.end_time,
                created_by=r.created_by,
                tags=dict(sorted(r.tags.items())),
                params=dict(sorted(params[r.id].items())),
                metrics=dict(sorted(metrics[r.id].items())),
            )
            for r in runs
        ]

    def create_run(self, experiment_id: str, *, body: RunCreate, actor: str) -> RunRead:
        """A new ``RUNNING`` run of the experiment."""
        self._experiment(experiment_id)
        row = Run(
            org_id=self._org,
            experiment_id=experiment_id,
            name=body.name,
            status="RUNNING",
            start_time=body.start_time or datetime.now(UTC),
            tags=body.tags,
            created_by=actor,
        )
        self._session.add(row)
        self._session.commit()
        return self._read([row])[0]

    def get_run(self, run_id: str) -> RunRead:
        """One run with its data."""
        return self._read([self._run(run_id)])[0]

    def list_runs(
        self, experiment_id: str, *, query: RunQuery, limit: int, cursor: str | None
    ) -> Page[RunRead]:
        """A page of the experiment's runs matching ``query``."""
        self._experiment(experiment_id)
        statement = select(Run).where(Run.org_id == self._org, Run.experiment_id == experiment_id)
        if query.status is not None:
            statement = statement.where(Run.status == query.status)
        for key, value in query.params:
            statement = statement.where(
                exists().where(
                    RunParam.run_id == Run.id, RunParam.key == key, RunParam.value == value
                )
            )
        for metric in query.metrics:
            statement = statement.where(
                exists().where(
                    RunLatestMetric.run_id == Run.id,
                    RunLatestMetric.key == metric.key,
                    _COMPARISONS[metric.op](RunLatestMetric.value, metric.value),
                )
            )
        if query.sort_metric is None:
            rows, next_cursor = fetch_page(
                self._session,
                statement,
                sort=Run.start_time,
                id_column=Run.id,
                descending=query.descending,
                limit=limit,
                cursor=cursor,
            )
        else:
            rows, next_cursor = self._by_metric(
                statement, query.sort_metric, query.descending, limit, cursor
            )
        return Page(items=self._read(rows), next_cursor=next_cursor)

    def _by_metric(
        self, statement: Select[Any], key: str, descending: bool, limit: int, cursor: str | None
    ) -> tuple[Sequence[Run], str | None]:
        """Keyset pages ordered by the latest ``key`` value, runs without it last."""
        value = (
            select(RunLatestMetric.value)
            .where(RunLatestMetric.run_id == Run.id, RunLatestMetric.key == key)
            .scalar_subquery()
        )
        if cursor is not None:
            last, last_id = decode_cursor(cursor)
            if isinstance(last, bool) or not (last is None or isinstance(last, int | float)):
                raise InvalidCursor("The cursor is not valid.")
            after_id = Run.id < last_id if descending else Run.id > last_id
            if last is None:
                statement = statement.where(value.is_(None), after_id)
            else:
                beyond = value < last if descending else value > last
                statement = statement.where(
                    or_(beyond, and_(value == last, after_id), value.is_(None))
                )
        ordered = (value.desc(), Run.id.desc()) if descending else (value.asc(), Run.id.asc())
        rows = self._session.execute(
            statement.add_columns(value).order_by(value.is_(None), *ordered).limit(limit + 1)
        ).all()
        if len(rows) <= limit:
            return [r[0] for r in rows], None
        rows = rows[:limit]
        return [r[0] for r in rows], encode_cursor(rows[-1][1], rows[-1][0].id)

    def update_run(self, run_id: str, *, changes: RunUpdate) -> RunRead:
        """Change the status (a terminal one ends the run) or the name."""
        row = self._run(run_id, lock=True)
        if changes.status is not None:
            row.status = changes.status
            if changes.status in TERMINAL_STATUSES:
                row.end_time = changes.end_time or datetime.now(UTC)
        if changes.name is not None:
            row.name = changes.name
        self._session.commit()
        return self._read([row])[0]

    def log_batch(self, run_id: str, *, batch: LogBatch, now_ms: int) -> None:
        """Log a batch in one transaction; 409 (nothing logged) if a param would change."""
        run = self._run(run_id, lock=True)
        if batch.params:
            existing = {
                p.key: p.value
                for p in self._session.scalars(
                    select(RunParam).where(
                        RunParam.org_id == self._org,
                        RunParam.run_id == run_id,
                        RunParam.key.in_(list(batch.params)),
                    )
                )
            }
            changed = sorted(k for k, v in batch.params.items() if existing.get(k, v) != v)
            if changed:
                self._session.rollback()
                raise ParamConflict(
                    f"Params are set once; these already have other values: {changed}"
                )
            self._session.add_all(
                RunParam(org_id=self._org, run_id=run_id, key=k, value=v)
                for k, v in batch.params.items()
                if k not in existing
            )
        if batch.tags:
            run.tags = {**run.tags, **batch.tags}
        if batch.metrics:
            self._log_metrics(run_id, batch, now_ms)
        self._commit("The run's params changed concurrently; read the run again.")

    def _log_metrics(self, run_id: str, batch: LogBatch, now_ms: int) -> None:
        points = {
            (m.key, m.step, now_ms if m.timestamp is None else m.timestamp, m.value)
            for m in batch.metrics
        }
        rows = [
            {"org_id": self._org, "run_id": run_id, "key": k, "step": s, "timestamp": t, "value": v}
            for k, s, t, v in sorted(points)
        ]
        dialect = self._session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._session.execute(insert(RunMetric).values(rows).on_conflict_do_nothing())
        newest: dict[str, tuple[int, int, float]] = {}  # the latest: by step, timestamp, value
        for key, step, timestamp, value in points:
            if key not in newest or (step, timestamp, value) > newest[key]:
                newest[key] = (step, timestamp, value)
        current = {
            m.key: m
            for m in self._session.scalars(
                select(RunLatestMetric).where(
                    RunLatestMetric.org_id == self._org,
                    RunLatestMetric.run_id == run_id,
                    RunLatestMetric.key.in_(list(newest)),
                )
            )
        }
        for key, (step, timestamp, value) in newest.items():
            latest = current.get(key)
            if latest is None:
                self._session.add(
                    RunLatestMetric(
                        org_id=self._org,
                        run_id=run_id,
                        key=key,
                        step=step,
                        timestamp=timestamp,
                        value=value,
                    )
                )
            elif (step, timestamp, value) > (latest.step, latest.timestamp, latest.value):
                latest.step, latest.timestamp, latest.value = step, timestamp, value

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of the run's metric ``key`` by step, then timestamp, then value."""
        self._run(run_id)
        rows = self._session.scalars(
            select(RunMetric)
            .where(RunMetric.org_id == self._org, RunMetric.run_id == run_id, RunMetric.key == key)
            .order_by(RunMetric.step, RunMetric.timestamp, RunMetric.value)
        )
        return [MetricPoint(step=r.step, timestamp=r.timestamp, value=r.value) for r in rows]

    def runs_of_experiment(self, experiment_id: str, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` are runs of the experiment."""
        if not run_ids:
            return set()
        found = self._session.scalars(
            select(Run.id).where(
                Run.org_id == self._org, Run.experiment_id == experiment_id, Run.id.in_(run_ids)
            )
        )
        return set(found)
