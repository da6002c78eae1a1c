"""Request and response shapes of ``POST /v1/ingest``."""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_REJECTIONS = 100
"""Rejected events listed in a response (the counts cover them all)."""


class Rejection(BaseModel):
    """Why one event was refused (it is also in the dead-letter table, with its payload)."""

    reason: str = Field(description="A code such as wrong_type, unknown_deployment, late")
    detail: str = Field(description="A sentence naming the field at fault")


class IngestReceipt(BaseModel):
    """What the engine did with a request's events."""

    accepted: int = Field(description="Events counted into their windows")
    rejected: int = Field(description="Events refused; each went to the dead-letter table")
    duplicates: int = Field(description="Events dropped: event_id already seen recently")
    late: int = Field(description="Events whose window had already closed (dead-lettered)")
    windows_closed: int = Field(description="Windows this request's events closed")
    rejections: list[Rejection] = Field(
        description=f"The first {MAX_REJECTIONS} rejected events' reasons"
    )
