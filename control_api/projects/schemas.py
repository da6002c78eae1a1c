"""Requests and responses of ``/v1/projects``."""

from __future__ import annotations

from pydantic import Field

from control_api.schemas import ORMModel, RequestModel, UtcDatetime

__all__ = ["ProjectBase", "ProjectCreate", "ProjectRead", "ProjectUpdate"]


class ProjectBase(RequestModel):
    """Fields a client sets."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)


class ProjectCreate(ProjectBase):
    """A new project."""


class ProjectUpdate(RequestModel):
    """Fields to change; send the current ``version`` as ``If-Match``."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class ProjectRead(ProjectBase, ORMModel):
    """A project; ``version`` grows by one at each update (also its ETag)."""

    id: str
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
