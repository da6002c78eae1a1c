"""Route of ``/v1/ingest``: the caller's key, the body's wire form, one engine call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from starlette.concurrency import run_in_threadpool

from control_api.deps import ContextDep, Principal, require
from control_api.errors import ApiError, responses
from control_api.ingest.schemas import MAX_REJECTIONS, IngestReceipt, Rejection
from control_api.rbac import Permission

__all__ = ["router"]

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])
Ingester = Annotated[Principal, Depends(require(Permission.INGEST))]

_JSON = ("application/json",)
_LINES = ("application/x-ndjson", "application/jsonl", "application/json-seq")
_ARROW = ("application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file")


class UnsupportedMediaType(ApiError):  # noqa: N818 - HTTP names
    """The body is in no wire form the engine reads."""

    status = 415


class EngineUnavailable(ApiError):  # noqa: N818 - HTTP names
    """The API process does not host the engine (events go to Kafka instead)."""

    status = 503


_BODY = {
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
    },
    "description": (
        "One event, a row or columnar batch envelope (JSON), one event per line (NDJSON), "
        "or Arrow IPC: see the event schema in engine/events.py"
    ),
}


def split_payloads(content_type: str, body: bytes) -> list[bytes]:
    """The messages of a request body, by its media type."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _JSON or media in _ARROW:
        return [body]
    if media in _LINES:
        return [line for line in body.split(b"\n") if line.strip()]
    raise UnsupportedMediaType(
        f"Send {', '.join(_JSON + _LINES + _ARROW)}; got {media or 'no Content-Type'}."
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": _BODY},
    responses=responses(401, 403, 413, 415, 429, 503),
)
async def ingest(request: Request, principal: Ingester, ctx: ContextDep) -> IngestReceipt:
    """Window a batch of events for the caller's organization; refused ones say why."""
    hub = ctx.engine_hub
    if hub is None:
        raise EngineUnavailable("This API does not host the engine: produce events to Kafka.")
    payloads = split_payloads(request.headers.get("content-type", ""), await request.body())
    report = await run_in_threadpool(
        hub.ingest, principal.org_id, payloads, source=f"http:{principal.kind}:{principal.id}"
    )
    return IngestReceipt(
        accepted=report.accepted,
        rejected=report.rejected,
        duplicates=report.duplicates,
        late=report.late,
        windows_closed=len(report.closed),
        rejections=[
            Rejection(reason=reason, detail=detail)
            for reason, detail in report.reasons[:MAX_REJECTIONS]
        ],
    )
