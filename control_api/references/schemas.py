"""Responses of ``/v1/references`` (the upload itself is a multipart form)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from control_api.schemas import ORMModel, UtcDatetime

__all__ = ["ColumnRead", "ProfileRead", "ReferenceRead"]


class ColumnRead(BaseModel):
    """One column of a reference dataset and how the profile treats it."""

    name: str
    type: str


class ReferenceRead(ORMModel):
    """A reference dataset; versions of one ``name`` are numbered 1, 2, ..."""

    id: str
    name: str
    number: int
    file_format: str
    size_bytes: int
    sha256: str
    rows: int
    columns: list[ColumnRead]
    created_by: str
    created_at: UtcDatetime


class ProfileRead(BaseModel):
    """The reference profile fitted on a dataset (``detectors.ReferenceProfile.to_dict``)."""

    reference_id: str
    profile: dict[str, Any]
