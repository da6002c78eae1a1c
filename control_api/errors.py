"""One error format for every 4xx and 5xx: RFC 9457 problem details (``application/problem+json``).

Services raise the :class:`ApiError` subclasses below; the handlers installed by
:func:`install_error_handlers` turn them, FastAPI's validation errors, Starlette's HTTP
errors (unknown route, wrong method) and any unexpected exception into the same body:
``type, title, status, detail, instance, request_id``. An unexpected exception is logged
with its traceback and answered with a generic 500: no stack trace reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from control_api.observability import current_request_id

__all__ = [
    "PROBLEM_JSON",
    "ApiError",
    "AuthenticationFailed",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PreconditionFailed",
    "PreconditionRequired",
    "Problem",
    "RateLimited",
    "install_error_handlers",
    "problem_response",
    "responses",
]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("driftline.api")
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem; ``errors`` lists the invalid fields of a 422."""

    type: str = Field(description="URI naming the kind of problem; about:blank when generic.")
    title: str
    status: int
    detail: str = ""
    instance: str = Field(description="The path of the request that failed.")
    request_id: str = ""
    errors: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """An error a client may see: an HTTP status, a problem type and a safe message."""

    status = 400
    kind = "about:blank"

    def __init__(self, detail: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class AuthenticationFailed(ApiError):  # noqa: N818 - HTTP names
    """Missing, invalid, expired or revoked credentials (401)."""

    status = 401
    kind = "/problems/unauthenticated"

    def __init__(self, detail: str = "Not authenticated.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(ApiError):  # noqa: N818 - HTTP names
    """Authenticated, but the role or scope does not allow the action (403)."""

    status = 403
    kind = "/problems/forbidden"


class NotFound(ApiError):  # noqa: N818 - HTTP names
    """No such object in the caller's organization; identical for another tenant's (404)."""

    status = 404
    kind = "/problems/not-found"


class Conflict(ApiError):  # noqa: N818 - HTTP names
    """The request conflicts with existing state, e.g. a duplicate name (409)."""

    status = 409
    kind = "/problems/conflict"


class PreconditionFailed(ApiError):  # noqa: N818 - HTTP names
    """``If-Match`` names a version that is no longer current (412)."""

    status = 412
    kind = "/problems/version-mismatch"


class PreconditionRequired(ApiError):  # noqa: N818 - HTTP names
    """An update that can race was sent without ``If-Match`` (428)."""

    status = 428
    kind = "/problems/if-match-required"


class InvalidInput(ApiError):  # noqa: N818 - HTTP names
    """The request is well-formed but breaks a rule, e.g. a password too short (422)."""

    status = 422
    kind = "/problems/validation"


class RateLimited(ApiError):  # noqa: N818 - HTTP names
    """Too many requests; ``Retry-After`` says when to come back (429)."""

    status = 429
    kind = "/problems/rate-limited"

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            f"Rate limit exceeded; retry in {seconds} s.", headers={"Retry-After": str(seconds)}
        )


def problem_response(
    request: Request,
    status: int,
    *,
    detail: str = "",
    kind: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build the problem+json response for ``status``."""
    body: dict[str, Any] = {
        "type": kind,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": current_request_id(),
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring the problem body for each of ``statuses``."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {"description": _TITLES[status], "content": {PROBLEM_JSON: {"schema": schema}}}
        for status in statuses
    }


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return problem_response(
        request, error.status, detail=error.detail, kind=error.kind, headers=error.headers
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else ""
    headers = dict(error.headers) if error.headers else None
    return problem_response(request, error.status_code, detail=detail, headers=headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
        for item in error.errors()
    ]
    return problem_response(
        request, 422, detail="The request is not valid.", kind="/problems/validation", errors=fields
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    _log.error("unhandled error", exc_info=error)
    return problem_response(request, 500, detail="An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` to the problem+json handlers."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
