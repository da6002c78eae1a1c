"""Schema pieces shared by every domain: UTC timestamps and a page of results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = ["LIMIT_DEFAULT", "LIMIT_MAX", "ORMModel", "Page", "RequestModel", "UtcDatetime"]

LIMIT_DEFAULT = 50
LIMIT_MAX = 200
T = TypeVar("T")


def _utc(moment: datetime) -> datetime:
    """Read naive timestamps (SQLite keeps no zone) as UTC.

    A time whose UTC form is outside years 1-9999 (``0001-01-01T00:00+01:00``) is refused
    as invalid (422), not left to overflow (500).
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("the time is outside the years 1-9999 in UTC") from error


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class RequestModel(BaseModel):
    r"""Base of every request body: refuses NUL characters anywhere (422).

    PostgreSQL cannot store them, and no name or text of ours needs one.

    >>> RequestModel.model_validate({"name": "a\x00b"})
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for RequestModel
    ...
    """

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("NUL characters are not allowed")
        return data


class ORMModel(BaseModel):
    """A response schema read from model attributes."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (null: the end)."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Cursor of the next page.")
