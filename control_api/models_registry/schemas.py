"""Requests and responses of ``/v1/models``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control_api.schemas import ORMModel, RequestModel, UtcDatetime

__all__ = [
    "AliasRead",
    "AliasSet",
    "FeatureField",
    "ImportSummary",
    "ModelCreate",
    "ModelEventRead",
    "ModelRead",
    "ReviewCreate",
    "ReviewRead",
    "VersionCreate",
    "VersionRead",
]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Tags = dict[str, str]


class FeatureField(RequestModel):
    """One input of a model version: its name and kind."""

    name: str = Field(min_length=1, max_length=200)
    type: Literal["numeric", "categorical"]


class ModelCreate(RequestModel):
    """A new registered model (names are unique in an organization)."""

    name: str = Field(min_length=1, max_length=150, pattern=_NAME)
    description: str = Field(default="", max_length=10_000)
    tags: Tags = Field(default_factory=dict, max_length=100)
    project_id: str | None = Field(default=None, max_length=36)


class ModelRead(ORMModel):
    """A registered model; ``latest_number`` is its newest version number (0: none)."""

    id: str
    name: str
    description: str
    tags: Tags
    project_id: str | None
    latest_number: int
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime


class VersionCreate(RequestModel):
    """A new version of a model; its number is the model's next one."""

    description: str = Field(default="", max_length=10_000)
    tags: Tags = Field(default_factory=dict, max_length=100)
    source_run: str = Field(default="", max_length=200)
    artifact_uri: str = Field(default="", max_length=1000)
    feature_schema: list[FeatureField] = Field(default_factory=list, max_length=10_000)


class VersionRead(ORMModel):
    """A model version; ``status`` is ``ready`` or ``archived``."""

    id: str
    model_id: str
    number: int
    description: str
    tags: Tags
    source_run: str
    artifact_uri: str
    feature_schema: list[FeatureField]
    status: str
    created_by: str
    created_at: UtcDatetime


class ReviewCreate(RequestModel):
    """An approval or an evaluation of a version: did it pass, on which numbers."""

    passed: bool
    metrics: dict[str, float] = Field(default_factory=dict, max_length=100)
    note: str = Field(default="", max_length=10_000)


class ReviewRead(ORMModel):
    """A recorded approval (``kind="approval"``) or evaluation (``kind="evaluation"``)."""

    id: str
    version_id: str
    kind: str
    passed: bool
    metrics: dict[str, float]
    note: str
    created_by: str
    created_at: UtcDatetime


class AliasSet(RequestModel):
    """Point an alias at a version (a promotion); ``reason`` goes into the history."""

    version: int = Field(ge=1)
    reason: str = Field(default="", max_length=2_000)


class AliasRead(RequestModel):
    """An alias and the version number it points at."""

    alias: str
    version: int
    updated_at: UtcDatetime


class ModelEventRead(ORMModel):
    """One entry of a model's history: who did what to which version, and why."""

    id: str
    action: str
    alias: str | None
    from_number: int | None
    to_number: int | None
    actor: str
    reason: str
    created_at: UtcDatetime


class ImportSummary(RequestModel):
    """What an import from MLflow brought in."""

    models_created: int
    versions_created: int
    aliases_set: int
