"""The application factory: :func:`create_app` builds the whole API from one settings object.

Nothing is read from the environment here: the CLI (``driftline api``) loads the settings
and passes them in; tests pass their own. The signing key is checked first, so a server
without one (outside development) refuses to start.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import storage.tenancy  # noqa: F401 - installs the tenant filter on every session
from control_api.alerts.router import routers as alerts_routers
from control_api.alerts.secrets import secret_box
from control_api.api_keys.router import router as api_keys_router
from control_api.auth.passwords import PasswordHasher
from control_api.auth.router import router as auth_router
from control_api.auth.tokens import TokenCodec
from control_api.cache import CacheMetrics, build_cache, short_timeout_client
from control_api.context import ApiContext
from control_api.deployment_webhooks.delivery import WebhookDrain
from control_api.deployment_webhooks.router import router as deployment_webhooks_router
from control_api.deployments.router import router as deployments_router
from control_api.errors import Problem, install_error_handlers
from control_api.experiments.router import routers as experiments_routers
from control_api.fastpath import FastReads
from control_api.generations import Generations, session_info
from control_api.health import router as health_router
from control_api.ingest.router import router as ingest_router
from control_api.metrics_api.router import fleet_router
from control_api.metrics_api.router import router as metrics_router
from control_api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from control_api.models_registry.router import router as models_router
from control_api.monitors.changes import MonitorChanges, MonitorWatch
from control_api.monitors.router import router as monitors_router
from control_api.monitors.source import MonitorService
from control_api.observability import ApiMetrics
from control_api.projects.router import router as projects_router
from control_api.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from control_api.references.router import router as references_router
from control_api.references.store import object_store
from control_api.runtime import AlertDrain, DeliveryLoop, alert_listener
from control_api.session_gate import SessionGate
from control_api.users.router import router as users_router
from driftline import __version__
from driftline.settings import Settings
from engine.embedded import EngineHub, FileMonitors, NoMonitors
from engine.writes import write_policy
from storage.clickhouse.client import MetricsClient
from storage.db import create_db_engine, session_factory

__all__ = ["create_app"]

_log = logging.getLogger("driftline.api")


def _metrics_probe(settings: Settings, ctx: ApiContext) -> Callable[[], None]:
    """Ping the metrics store, opening the client at the first call and keeping it."""
    client: list[Any] = []

    def probe() -> None:
        from storage.clickhouse.client import RetryPolicy, connect

        if not client:
            client.append(
                connect(
                    settings.clickhouse_url,
                    default_database=settings.clickhouse_database,
                    retry=RetryPolicy(retries=0),
                )
            )
            ctx.closers.append(client[0].close)
        client[0].command("SELECT 1")

    return probe


def _build_context(settings: Settings) -> ApiContext:
    codec = TokenCodec.from_settings(settings)
    box = secret_box(settings)
    engine = create_db_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    # the limiter's own client, short timeouts: a Redis that hangs never blocks a request
    redis_client = short_timeout_client(settings.redis_url) if settings.redis_url else None
    limiter: RateLimiter = (
        RedisRateLimiter(redis_client, prefix=settings.redis_key_prefix)
        if redis_client is not None
        else MemoryRateLimiter()
    )
    ctx = ApiContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        codec=codec,
        hasher=PasswordHasher.from_settings(settings),
        limiter=limiter,
        metrics=ApiMetrics(),
        secret_box=box,
        # as many request sessions as the pool has connections (control_api.session_gate)
        session_gate=SessionGate(settings.db_pool_size + settings.db_max_overflow),
        redis=redis_client,
    )
    ctx.closers.append(engine.dispose)
    if redis_client is not None:
        ctx.closers.append(redis_client.close)
    ctx.metrics_probe = _metrics_probe(settings, ctx)
    cache_metrics = CacheMetrics(ctx.metrics.registry)
    ctx.cache = build_cache(settings, cache_metrics)
    if redis_client is not None:
        # the API's sessions move generations on after their commits (control_api.generations)
        ctx.generations = Generations(
            redis_client, prefix=settings.redis_key_prefix, metrics=cache_metrics
        )
        ctx.sessions.configure(info=session_info(ctx.generations))
    ctx.closers.append(ctx.cache.close)
    ctx.monitor_changes = MonitorChanges.from_settings(settings, cache_metrics)
    ctx.closers.append(ctx.monitor_changes.close)
    if settings.engine_embedded:
        ctx.engine_hub = _engine_hub(settings, ctx, cache_metrics)
        ctx.closers.append(ctx.engine_hub.close)
    # the outbox is written by whichever process evaluates the rules (the embedded engine or
    # the Kafka workers); the API delivers it in every mode
    ctx.delivery = DeliveryLoop(
        (AlertDrain(ctx.sessions, box), WebhookDrain(ctx.sessions, box)),
        interval_seconds=settings.alert_delivery_seconds,
    )
    return ctx


def _engine_hub(settings: Settings, ctx: ApiContext, cache_metrics: CacheMetrics) -> EngineHub:
    """The embedded engine over the control plane's monitors and alert rules.

    Monitors come from ``/v1/monitors`` (and ``monitors_file``) through the monitor
    service, and follow every change (in-process at once, from other processes over Redis,
    and by polling); results go to the metrics store, and the alert rules are evaluated
    at every closed window.
    """
    from storage.clickhouse.client import connect

    def open_store() -> MetricsClient:
        return connect(settings.clickhouse_url, default_database=settings.clickhouse_database)

    fallback = FileMonitors(settings.monitors_file) if settings.monitors_file else NoMonitors()
    monitors = MonitorService(ctx.sessions, lambda: object_store(settings), ctx.cache, fallback)
    hub = EngineHub(
        connect=open_store,
        monitors=monitors,
        listener_for=alert_listener(ctx.sessions, links={}),
        writes=write_policy(settings.engine_write_behind_ms),
    )
    ctx.monitor_changes.listen(hub.reload)
    ctx.monitor_watch = MonitorWatch.from_settings(
        settings,
        service=monitors,
        organizations=hub.organizations,
        on_change=hub.reload,
        metrics=cache_metrics,
    )
    return hub


def create_app(settings: Settings) -> FastAPI:
    """The Driftline control-plane API configured by ``settings``.

    Raises :class:`~control_api.auth.tokens.ConfigurationError` when the signing key is
    missing, short or a known default outside development, or the secrets key is missing
    there or malformed.
    """
    ctx = _build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ctx.delivery is not None:
            ctx.delivery.start()
        if ctx.monitor_watch is not None:
            ctx.monitor_watch.start()
        if ctx.generations is not None:  # the loop's Redis client, made on the serving loop
            ctx.fast = FastReads.connect(settings, ctx.generations)
        # what exists now (modules, routes, schemas, pools) lives as long as the process: out
        # of the collector's sight, a full collection under load walks only what requests
        # made (about 10 % less CPU per request, benchmarks/api.py); back in at shutdown
        gc.freeze()
        yield
        gc.unfreeze()
        if ctx.fast is not None:
            await ctx.fast.aclose()
            ctx.fast = None
        if ctx.monitor_watch is not None:
            ctx.monitor_watch.stop()
        if ctx.delivery is not None:
            ctx.delivery.stop()
        for close in reversed(ctx.closers):
            close()

    app = FastAPI(
        title="Driftline control plane",
        version=__version__,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in (
        health_router,
        auth_router,
        users_router,
        api_keys_router,
        projects_router,
        ingest_router,
        models_router,
        deployments_router,
        deployment_webhooks_router,
        references_router,
        monitors_router,
        metrics_router,
        fleet_router,
    ):
        app.include_router(router)
    for router in alerts_routers:  # alerting (issue 7)
        app.include_router(router)
    for router in experiments_routers:  # experiments, runs and lineage (issue 6)
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        by_prefix={
            # the upload route checks the file itself; allow the multipart envelope around it
            "/v1/references": settings.reference_max_bytes + 64 * 1024,
            "/v1/ingest": settings.ingest_max_bytes,
        },
    )
    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics)
    _add_problem_schema(app)
    return app


def _add_problem_schema(app: FastAPI) -> None:
    """Put the ``Problem`` schema into the OpenAPI document the error responses refer to."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
