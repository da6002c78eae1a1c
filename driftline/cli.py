"""The ``driftline`` command.

Sub-commands arrive with the parts they drive (``migrate``, ``api``, ``worker``,
``replay``, ``up``, ``demo`` ...); this module only wires them together.
"""

from __future__ import annotations

from typing import Annotated

import typer

from driftline import __version__
from driftline.settings import Settings, load_settings

app = typer.Typer(
    name="driftline",
    help="Driftline: watch ML models in production (drift, degradation, alerts).",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"driftline {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Driftline command line."""


def run_migrations(settings: Settings) -> tuple[str, list[int]]:
    """Bring the control database and the metrics store to their newest schema.

    Returns the control database's revision and the metrics migrations applied now (empty
    when already up to date). Both steps are idempotent.
    """
    from storage import db_migrations
    from storage.clickhouse.client import RetryPolicy, connect
    from storage.clickhouse.migrations import MigrationParams, apply_ttl, migrate

    db_migrations.upgrade(settings.database_url)
    revision = db_migrations.current_revision(settings.database_url) or "base"
    retry = RetryPolicy(
        retries=settings.clickhouse_retries,
        backoff_seconds=settings.clickhouse_retry_backoff_seconds,
    )
    with connect(
        settings.clickhouse_url, default_database=settings.clickhouse_database, retry=retry
    ) as client:
        params = MigrationParams(ttl_days=settings.metrics_ttl_days)
        applied = migrate(client, params)
        apply_ttl(client, params)  # a changed DRIFTLINE_METRICS_TTL_DAYS reaches old tables
    return revision, applied


@app.command("migrate")
def migrate_command() -> None:
    """Apply the control-database and metrics-store migrations; running it twice is a no-op.

    With the embedded chDB default, run it before the server starts, not beside it: a chDB
    folder serves one process at a time.
    """
    from storage.errors import StorageError

    settings = load_settings()
    try:
        revision, applied = run_migrations(settings)
    except StorageError as error:
        typer.echo(f"migrate failed: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(f"control database: at revision {revision}")
    if applied:
        typer.echo(f"metrics store: applied {', '.join(map(str, applied))}")
    else:
        typer.echo("metrics store: up to date")


@app.command("statistics")
def statistics_command() -> None:
    """List the drift statistics, the feature types they take and their default thresholds."""
    from detectors import STATISTICS

    for spec in STATISTICS.values():
        kinds = ",".join(sorted(spec.feature_types))
        threshold = f"{'alpha' if spec.is_test else 'threshold'}={spec.default_threshold:g}"
        typer.echo(f"{spec.name:<20} {kinds:<21} {threshold:<16} {spec.summary}")


def _needed_by_several_workers(settings: Settings) -> str:
    """What the settings lack for more than one API process ("" when nothing)."""
    if settings.engine_embedded:
        return "DRIFTLINE_ENGINE_EMBEDDED=false (the embedded engine windows events in one process)"
    if settings.clickhouse_url.startswith("chdb"):
        return (
            "a ClickHouse server as DRIFTLINE_CLICKHOUSE_URL (a chDB folder opens in one process)"
        )
    return ""


@app.command("api")
def api_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port, each a whole API (more than one needs "
            "DRIFTLINE_ENGINE_EMBEDDED=false and a ClickHouse server).",
        ),
    ] = 1,
) -> None:
    """Serve the control-plane API (uvicorn; ``--workers N`` for N processes).

    One process runs Python on one core at a time: ``--workers`` about the number of cores
    uses them all. The embedded engine windows events in one process and a chDB folder opens
    in one, so several workers need the engine off (events through Kafka and ``driftline
    worker``) and a ClickHouse server. Or run gunicorn:
    ``gunicorn -k uvicorn.workers.UvicornWorker -w 4 'control_api.app:create_app(...)'`` or
    several replicas of this command behind a load balancer, with Redis for shared rate limits.
    Refuses to start without a strong DRIFTLINE_JWT_SECRET or a DRIFTLINE_SECRETS_KEY outside
    development.
    """
    import uvicorn

    from control_api.app import create_app
    from control_api.auth.tokens import ConfigurationError
    from control_api.observability import configure_logging

    settings = load_settings()
    configure_logging()
    needed = _needed_by_several_workers(settings)
    if workers > 1 and needed:
        typer.echo(f"api refused to start: --workers above 1 needs {needed}", err=True)
        raise typer.Exit(code=2)
    try:
        application = create_app(settings)  # also checks the settings before workers start
    except ConfigurationError as error:
        typer.echo(f"api refused to start: {error}", err=True)
        raise typer.Exit(code=2) from error
    uvicorn.run(
        # several workers each build their own application from the environment
        application if workers == 1 else "control_api.asgi:app_from_env",
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        access_log=False,  # our middleware writes one JSON line per request
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def _register_replay() -> None:
    from driftline.replay_command import replay_command

    app.command("replay")(replay_command)


_register_replay()


def _register_worker() -> None:
    from driftline.worker_command import worker_command

    app.command("worker")(worker_command)


_register_worker()


def _register_local() -> None:
    from driftline.local_commands import admin, up_command

    app.command("up")(up_command)
    app.add_typer(admin)


_register_local()


def _register_demo() -> None:
    from driftline.demo import demo_command

    app.command("demo")(demo_command)


_register_demo()


def _register_profile() -> None:
    from driftline.profile_command import profile

    app.add_typer(profile)


_register_profile()


if __name__ == "__main__":
    app()
