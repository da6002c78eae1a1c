"""Requests and responses of ``/v1/experiments``, ``/v1/runs`` and ``/v1/alerts/{id}/lineage``.

Keys of params, metrics and tags follow MLflow's rules: letters, digits, ``_ - . / :`` and
spaces, at most 250 characters, and no empty, ``.`` or ``..`` path segments (MLflow may
store a key as a file name). The batch limits are MLflow's too: at most 1000 metrics, 100
params and 100 tags per call, 1000 items in all. Metric timestamps are epoch milliseconds
and steps are 64-bit integers, as in MLflow; run start and end times are UTC datetimes.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from control_api.alerts.schemas import AlertRead
from control_api.deployments.schemas import DeploymentRead
from control_api.models_registry.schemas import ModelRead, VersionRead
from control_api.schemas import RequestModel, UtcDatetime

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_BATCH_METRICS",
    "MAX_BATCH_PARAMS",
    "MAX_BATCH_TAGS",
    "RESERVED_TAGS",
    "TERMINAL_STATUSES",
    "ExperimentCreate",
    "ExperimentRead",
    "ExperimentUpdate",
    "Lineage",
    "LogBatch",
    "MetricHistory",
    "MetricIn",
    "MetricPoint",
    "MetricRow",
    "ParamRow",
    "RunComparison",
    "RunCreate",
    "RunRead",
    "RunStatus",
    "RunSummary",
    "RunUpdate",
]

MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ITEMS = 1000
RESERVED_TAGS = frozenset({"mlflow.runName", "mlflow.user", "mlflow.note.content"})
"""Tags that are fields here (run name, creator, experiment description); ``driftline.*`` too."""

RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_INT64 = 2**63 - 1


def _one_path(key: str) -> str:
    """Refuse keys that would resolve to another name as a file path (MLflow's rule).

    >>> _one_path("train/loss")
    'train/loss'
    >>> _one_path("a/../b")
    Traceback (most recent call last):
    ...
    ValueError: a key must not have empty, '.' or '..' path segments nor start with '/'
    """
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise ValueError("a key must not have empty, '.' or '..' path segments nor start with '/'")
    return key


def _unreserved(tags: dict[str, str]) -> dict[str, str]:
    reserved = sorted(k for k in tags if k in RESERVED_TAGS or k.startswith("driftline."))
    if reserved:
        raise ValueError(f"reserved tag keys: {reserved}")
    return tags


Key = Annotated[
    str, Field(min_length=1, max_length=250, pattern=r"^[\w./: -]+$"), AfterValidator(_one_path)
]
TagValue = Annotated[str, Field(max_length=8000)]
Tags = Annotated[dict[Key, TagValue], Field(max_length=100), AfterValidator(_unreserved)]
Int64 = Annotated[int, Field(ge=-_INT64 - 1, le=_INT64)]


class ExperimentCreate(RequestModel):
    """A new experiment (names are unique in an organization)."""

    name: str = Field(min_length=1, max_length=200, pattern=_NAME)
    description: str = Field(default="", max_length=10_000)
    tags: Tags = Field(default_factory=dict)
    project_id: str | None = Field(default=None, max_length=36)


class ExperimentUpdate(RequestModel):
    """Fields to change (``tags`` replaces them all); send the ETag read as ``If-Match``."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=_NAME)
    description: str | None = Field(default=None, max_length=10_000)
    tags: Tags | None = None


class ExperimentRead(BaseModel):
    """An experiment; its ETag is a hash of its name, description, tags and project."""

    id: str
    name: str
    description: str
    tags: dict[str, str]
    project_id: str | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class RunCreate(RequestModel):
    """A new run, ``RUNNING`` from ``start_time`` (default: now). MLflow names unnamed runs."""

    name: str = Field(default="", max_length=250)
    tags: Tags = Field(default_factory=dict)
    start_time: UtcDatetime | None = None


class RunUpdate(RequestModel):
    """A status change or a new name.

    A terminal status (``FINISHED``, ``FAILED``, ``KILLED``) ends the run at ``end_time``
    (default: now); ``end_time`` goes only with one of those.
    """

    status: RunStatus | None = None
    end_time: UtcDatetime | None = None
    name: str | None = Field(default=None, min_length=1, max_length=250)

    @model_validator(mode="after")
    def _consistent(self) -> RunUpdate:
        if self.status is None and self.name is None:
            raise ValueError("send a status, a name or both")
        if self.end_time is not None and self.status not in TERMINAL_STATUSES:
            raise ValueError("end_time goes only with FINISHED, FAILED or KILLED")
        return self


class RunSummary(BaseModel):
    """A run without its data; times are UTC, ``end_time`` is null until it ends."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: UtcDatetime
    end_time: UtcDatetime | None
    created_by: str


class RunRead(RunSummary):
    """A run with its tags, params and the latest value of each metric.

    The latest value is the point with the greatest step, then timestamp, then value.
    """

    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


class MetricIn(RequestModel):
    """One metric point; ``timestamp`` in epoch milliseconds (default: now)."""

    key: Key
    value: float = Field(allow_inf_nan=False)
    step: Int64 = 0
    timestamp: int | None = Field(default=None, ge=0, le=_INT64)


class LogBatch(RequestModel):
    """Metrics, params and tags logged in one call (MLflow's ``log-batch``).

    Params are set once: sending a param again with the same value is accepted, with
    another value answers 409. Tags may be overwritten. Re-sending a metric point
    (same key, step, timestamp and value) stores it once.
    """

    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_BATCH_METRICS)
    params: dict[Key, Annotated[str, Field(max_length=6000)]] = Field(
        default_factory=dict, max_length=MAX_BATCH_PARAMS
    )
    tags: Tags = Field(default_factory=dict)

    @model_validator(mode="after")
    def _within_limits(self) -> LogBatch:
        total = len(self.metrics) + len(self.params) + len(self.tags)
        if total > MAX_BATCH_ITEMS:
            raise ValueError(f"at most {MAX_BATCH_ITEMS} metrics, params and tags in all")
        if not total:
            raise ValueError("send at least one metric, param or tag")
        return self


class MetricPoint(BaseModel):
    """A point of a metric series: ``value`` at ``step``, logged at ``timestamp`` (epoch ms)."""

    step: int
    timestamp: int
    value: float


class MetricHistory(BaseModel):
    """Every point of one metric of one run, by step, then timestamp."""

    run_id: str
    key: str
    points: list[MetricPoint]


class ParamRow(BaseModel):
    """One param across the compared runs (null: not set); ``same``: one value everywhere."""

    key: str
    values: dict[str, str | None]
    same: bool


class MetricRow(BaseModel):
    """The latest value of one metric across the compared runs (null: never logged)."""

    key: str
    values: dict[str, float | None]


class RunComparison(BaseModel):
    """Runs side by side: params and latest metrics keyed by run id, histories on request.

    ``histories`` maps each metric asked for to each run's points.
    """

    runs: list[RunSummary]
    params: list[ParamRow]
    metrics: list[MetricRow]
    histories: dict[str, dict[str, list[MetricPoint]]]


class Lineage(BaseModel):
    """Where an alert comes from: deployment -> model version -> training run -> experiment.

    A link that cannot be followed is null from there on, and ``gap`` says why.
    """

    alert: AlertRead
    deployment: DeploymentRead | None = None
    model: ModelRead | None = None
    version: VersionRead | None = None
    run: RunRead | None = None
    experiment: ExperimentRead | None = None
    gap: str | None = None
