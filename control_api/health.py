"""``/healthz`` (the process answers), ``/readyz`` (its dependencies answer) and ``/metrics``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from control_api.deps import ContextDep
from control_api.errors import problem_response, responses

__all__ = ["router"]

router = APIRouter(tags=["operations"])
_log = logging.getLogger("driftline.api")


class Health(BaseModel):
    """The process is up."""

    status: str = "ok"


class Readiness(BaseModel):
    """Each dependency: ``ok``, ``skipped`` (not configured) or ``error``."""

    status: str
    checks: dict[str, str]


def _check(name: str, probe: Any) -> str:
    try:
        probe()
    except Exception as error:  # any failure means "not ready"; the reason goes to the log
        _log.warning("readiness: %s failed: %s", name, error)
        return "error"
    return "ok"


@router.get("/healthz")
def healthz() -> Health:
    """Liveness: answers while the process serves requests."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses=responses(503))
def readyz(request: Request, ctx: ContextDep) -> Any:
    """Readiness: the control database, Redis (when configured) and the metrics store."""

    def database() -> None:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    checks = {"database": _check("database", database)}
    checks["redis"] = _check("redis", ctx.redis.ping) if ctx.redis is not None else "skipped"
    probe = ctx.metrics_probe
    checks["metrics_store"] = _check("metrics_store", probe) if probe else "skipped"
    if "error" in checks.values():
        return problem_response(request, 503, detail="A dependency is not ready.", checks=checks)
    return Readiness(status="ready", checks=checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(ctx: ContextDep) -> Response:
    """Prometheus metrics of this process (requests and latency by route template)."""
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
