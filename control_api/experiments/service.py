"""Experiments and runs of one organization, over the tracking store bound to it.

The store is Driftline's tables or the MLflow proxy (:mod:`control_api.experiments.store`);
this module holds what both share: the project check, If-Match, the filter and sort
syntax of run lists, the refusal to delete an experiment whose runs model versions came
from, and the comparison of runs.
"""

from __future__ import annotations

import re
import time

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api.errors import Conflict, InvalidInput, PreconditionRequired
from control_api.experiments.schemas import (
    ExperimentCreate,
    ExperimentRead,
    ExperimentUpdate,
    Key,
    LogBatch,
    MetricHistory,
    MetricRow,
    ParamRow,
    RunComparison,
    RunRead,
    RunStatus,
    RunSummary,
)
from control_api.experiments.store import (
    Comparison,
    MetricFilter,
    RunQuery,
    TrackingStore,
    experiment_etag,
)
from control_api.models_registry import repository as registry
from control_api.schemas import Page
from storage.models import ModelVersion, RegisteredModel

__all__ = [
    "MAX_COMPARED_RUNS",
    "MAX_FILTERS",
    "MAX_HISTORIES",
    "compare_runs",
    "create_experiment",
    "delete_experiment",
    "etag_of",
    "list_runs",
    "log_batch",
    "metric_history",
    "parse_etag",
    "parse_metric_filter",
    "parse_param_filter",
    "parse_sort",
    "update_experiment",
]

MAX_COMPARED_RUNS = 20
MAX_HISTORIES = 10
MAX_FILTERS = 10
_KEY = TypeAdapter(Key)
_METRIC_FILTER = re.compile(r"^(?P<key>.+?)(?P<op>>=|<=|!=|=|>|<)(?P<value>[^<>=!]+)$")


def _key(raw: str, what: str) -> str:
    try:
        return _KEY.validate_python(raw)
    except ValidationError:
        raise InvalidInput(f"{what}: {raw!r} is not a valid key.") from None


def etag_of(experiment: ExperimentRead) -> str:
    """The ``ETag`` header value of an experiment."""
    return f'"{experiment_etag(experiment)}"'


def parse_etag(header: str | None) -> str:
    """The ETag named by an ``If-Match`` header (``"abc"`` or ``W/"abc"``); 428 without one.

    >>> parse_etag('W/"3f2a"')
    '3f2a'
    """
    if header is None:
        raise PreconditionRequired("Send If-Match with the ETag you read.")
    return header.strip().removeprefix("W/").strip('"')


def create_experiment(
    store: TrackingStore, session: Session, *, org_id: str, actor: str, body: ExperimentCreate
) -> ExperimentRead:
    """A new experiment; its project, if named, must be one of the organization's (422)."""
    if body.project_id is not None and not registry.project_exists(
        session, org_id=org_id, project_id=body.project_id
    ):
        raise InvalidInput("No such project.")
    return store.create_experiment(body=body, actor=actor)


def update_experiment(
    store: TrackingStore, *, experiment_id: str, if_match: str | None, body: ExperimentUpdate
) -> ExperimentRead:
    """Change an experiment if it still has the ETag named by ``if_match`` (412 if not)."""
    etag = parse_etag(if_match)
    return store.update_experiment(experiment_id, etag=etag, changes=body)


def delete_experiment(
    store: TrackingStore, session: Session, *, org_id: str, experiment_id: str
) -> None:
    """Delete an experiment and its runs; 409 while a model version came from one of them."""
    store.get_experiment(experiment_id)
    sources = session.execute(
        select(ModelVersion.source_run, RegisteredModel.name, ModelVersion.number)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.org_id == org_id, ModelVersion.source_run != "")
    ).all()
    linked = store.runs_of_experiment(experiment_id, sorted({s[0] for s in sources}))
    versions = sorted(f"{name} v{number}" for run, name, number in sources if run in linked)
    if versions:
        raise Conflict(f"Model versions came from runs of this experiment: {versions}.")
    store.delete_experiment(experiment_id)


def parse_param_filter(raw: str) -> tuple[str, str]:
    """``key=value``: runs whose param ``key`` is exactly ``value``.

    >>> parse_param_filter("optimizer=adam")
    ('optimizer', 'adam')
    """
    key, sep, value = raw.partition("=")
    if not sep:
        raise InvalidInput(f"param filter {raw!r}: write key=value.")
    return _key(key, "param filter"), value


def parse_metric_filter(raw: str) -> MetricFilter:
    """``key<op>number`` with op one of ``= != < <= > >=``, on each run's latest value.

    >>> parse_metric_filter("val/auc>=0.9")
    MetricFilter(key='val/auc', op='>=', value=0.9)
    """
    match = _METRIC_FILTER.match(raw)
    if match is None:
        raise InvalidInput(f"metric filter {raw!r}: write key<op>number, op one of = != < <= > >=.")
    try:
        value = float(match["value"])
    except ValueError:
        raise InvalidInput(f"metric filter {raw!r}: {match['value']!r} is not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"metric filter {raw!r}: the number must be finite.")
    op: Comparison = match["op"]  # type: ignore[assignment] # the pattern's alternatives
    return MetricFilter(key=_key(match["key"], "metric filter"), op=op, value=value)


def parse_sort(raw: str) -> tuple[str | None, bool]:
    """``start_time`` or ``metrics.<key>``, descending with a leading ``-``.

    Returns the metric key (``None``: start time) and whether the order is descending.

    >>> parse_sort("-metrics.auc"), parse_sort("start_time")
    (('auc', True), (None, False))
    """
    descending = raw.startswith("-")
    field = raw.removeprefix("-")
    if field == "start_time":
        return None, descending
    if field.startswith("metrics."):
        return _key(field.removeprefix("metrics."), "sort"), descending
    raise InvalidInput(f"sort {raw!r}: use start_time or metrics.<key>, '-' for descending.")


def list_runs(
    store: TrackingStore,
    *,
    experiment_id: str,
    status: RunStatus | None,
    params: list[str],
    metrics: list[str],
    sort: str,
    limit: int,
    cursor: str | None,
) -> Page[RunRead]:
    """A page of the experiment's runs, filtered by status, params and latest metrics."""
    if len(params) + len(metrics) > MAX_FILTERS:
        raise InvalidInput(f"At most {MAX_FILTERS} param and metric filters.")
    sort_metric, descending = parse_sort(sort)
    query = RunQuery(
        status=status,
        params=tuple(parse_param_filter(p) for p in params),
        metrics=tuple(parse_metric_filter(m) for m in metrics),
        sort_metric=sort_metric,
        descending=descending,
    )
    return store.list_runs(experiment_id, query=query, limit=limit, cursor=cursor)


def log_batch(store: TrackingStore, *, run_id: str, batch: LogBatch) -> None:
    """Log metrics, params and tags; a metric without a timestamp gets the time of the call."""
    store.log_batch(run_id, batch=batch, now_ms=time.time_ns() // 1_000_000)


def metric_history(store: TrackingStore, *, run_id: str, key: str) -> MetricHistory:
    """Every point of one metric of a run, by step, then timestamp."""
    key = _key(key, "metric")
    return MetricHistory(run_id=run_id, key=key, points=store.metric_history(run_id, key))


def _ids(raw: str, what: str, limit: int) -> list[str]:
    """A comma-separated list, blanks dropped, duplicates dropped in order."""
    ids = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not ids or len(ids) > limit:
        raise InvalidInput(f"{what}: give 1 to {limit}, comma-separated.")
    return ids


def compare_runs(store: TrackingStore, *, run_ids: str, history: str | None) -> RunComparison:
    """Params and latest metrics of up to 20 runs side by side, and asked-for histories.

    Any run missing (or another organization's) answers 404 for the whole comparison.
    """
    ids = _ids(run_ids, "run_ids", MAX_COMPARED_RUNS)
    keys = [_key(k, "history") for k in _ids(history, "history", MAX_HISTORIES)] if history else []
    runs = [store.get_run(run_id) for run_id in ids]
    param_keys = sorted({k for run in runs for k in run.params})
    metric_keys = sorted({k for run in runs for k in run.metrics})
    params = []
    for key in param_keys:
        values = {run.id: run.params.get(key) for run in runs}
        params.append(ParamRow(key=key, values=values, same=len(set(values.values())) == 1))
    return RunComparison(
        runs=[
            RunSummary.model_validate(run.model_dump(include=set(RunSummary.model_fields)))
            for run in runs
        ],
        params=params,
        metrics=[
            MetricRow(key=key, values={run.id: run.metrics.get(key) for run in runs})
            for key in metric_keys
        ],
        histories={
            key: {run.id: store.metric_history(run.id, key) for run in runs} for key in keys
        },
    )
