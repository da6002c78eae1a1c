"""ASGI middleware: request id, access log and metrics, security headers, body size limit.

Written as plain ASGI callables (no ``BaseHTTPMiddleware``), so a streamed body is counted
as it arrives and nothing is buffered twice.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_api.errors import PROBLEM_JSON
from control_api.observability import ApiMetrics, request_id

__all__ = ["BodyLimitMiddleware", "RequestContextMiddleware"]

_log = logging.getLogger("driftline.api.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOC_PATHS = ("/docs", "/redoc")


_NUL = "/problems/nul-character"
_TITLES = {
    404: "Not Found",
    413: "Content Too Large",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}


def _nul_in(scope: Scope) -> str:
    """``"path"`` or ``"query"`` when that part of the URL holds a NUL, else ``""``."""
    path = bytes(scope.get("raw_path") or b"")
    if b"%00" in path or b"\x00" in path or "\x00" in scope["path"]:
        return "path"
    query = bytes(scope.get("query_string") or b"")
    return "query" if b"%00" in query or b"\x00" in query else ""


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class RequestContextMiddleware:
    """Request id, security headers, access log and metrics for every request.

    The id is ``X-Request-ID`` if sane, else a new UUID, and is echoed in the response. One
    JSON access line is logged and the metrics are observed by route template.
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0  # no response started yet
        docs = scope["path"].startswith(_DOC_PATHS)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.extend(_SECURITY_HEADERS)
                if not docs:
                    headers.append(_API_CSP)
                message["headers"] = headers
            await send(message)

        try:
            nul = _nul_in(scope)
            if nul:
                # PostgreSQL cannot store NUL, and no id or filter of ours holds one: a path
                # with it names nothing (404), a query with it is invalid (422)
                status_code = 404 if nul == "path" else 422
                await _send_problem(
                    send_with_headers, scope, status_code, "NUL character in the URL.", _NUL
                )
                return
            await self.app(scope, receive, send_with_headers)
        except Exception as error:
            # answered here, inside the request's context, so the 500 carries its id
            _log.error("unhandled error", exc_info=error)
            if status == 0:
                await _send_problem(
                    send_with_headers, scope, 500, "An unexpected error occurred.", "about:blank"
                )
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                method=scope["method"], route=template, status=status or 500, seconds=elapsed
            )
            _log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status or 500,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
            request_id.reset(token)


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with a 413 problem, declared or streamed."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, by_prefix: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # routes whose bodies are data, not commands (uploads, event batches): their own limit
        self.by_prefix = dict(by_prefix or {})

    def _limit(self, path: str) -> int:
        for prefix, limit in self.by_prefix.items():
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, counting its body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(str(scope.get("path", "")))
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large(scope, send, limit)

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        detail = f"The request body exceeds {limit} bytes."
        await _send_problem(send, scope, 413, detail, "/problems/body-too-large")


async def _send_problem(send: Send, scope: Scope, status: int, detail: str, kind: str) -> None:
    body: dict[str, Any] = {
        "type": kind,
        "title": _TITLES[status],
        "status": status,
        "detail": detail,
        "instance": scope["path"],
        "request_id": request_id.get(),
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _BodyTooLarge(HTTPException):
    """A streamed body grew past the limit: a 413 through the usual problem handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")
