"""``driftline up`` and ``driftline admin create-user``: the embedded default for one machine.

``up`` runs everything in one process with no server to install: the control API, the
engine (events over ``POST /v1/ingest``), chDB, SQLite and a local object folder, all under
``DRIFTLINE_DATA_DIR`` (``./driftline-data``). Passwords are never taken as command-line
arguments (they would show in ``ps``): they come from a hidden prompt or from an
environment variable whose name is given.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from driftline.settings import Settings, load_settings

admin = typer.Typer(name="admin", help="Administration: users and organizations.")

SECRET_FILE = "jwt-secret"


def local_signing_key(data_dir: Path) -> str:
    """The signing key kept in the data folder (made once, readable by its owner only).

    For the embedded default only: a server deployment sets ``DRIFTLINE_JWT_SECRET``.
    """
    from storage.secretbox import kept_key

    return kept_key(data_dir / SECRET_FILE, lambda: secrets.token_urlsafe(48))


def create_user(
    settings: Settings, *, email: str, password: str, organization: str, role: str
) -> tuple[str, bool]:
    """Make ``email`` a member of ``organization`` (created with it as owner when new).

    Returns the organization id and whether the user was created (False: it existed and
    nothing changed).
    """
    from sqlalchemy import select

    from control_api.auth.passwords import PasswordHasher
    from control_api.auth.service import check_password_policy, signup
    from control_api.rbac import Role
    from storage.db import create_db_engine, session_factory
    from storage.models import Membership, Organization, User
    from storage.tenancy import scope_to

    engine = create_db_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            existing = session.execute(
                select(User).where(User.email == email.lower())
            ).scalar_one_or_none()
            org = session.execute(
                select(Organization).where(Organization.name == organization)
            ).scalar_one_or_none()
            if org is None:
                if existing is not None:
                    raise typer.BadParameter(f"{email} already exists in another organization")
                created = signup(
                    session,
                    hasher=PasswordHasher.from_settings(settings),
                    min_password_length=settings.password_min_length,
                    org_name=organization,
                    email=email,
                    password=password,
                )
                return created.org_id, True
            if existing is not None:
                return org.id, False
            check_password_policy(password, min_length=settings.password_min_length)
            hasher = PasswordHasher.from_settings(settings)
            user = User(
                id=str(uuid.uuid4()), email=email.lower(), password_hash=hasher.hash(password)
            )
            scope_to(session, org.id)
            session.add(user)
            session.flush()
            session.add(Membership(org_id=org.id, user_id=user.id, role=Role.parse(role).label))
            session.commit()
            return org.id, True
    finally:
        engine.dispose()


def _password(password_env: str | None) -> str:
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise typer.BadParameter(f"the environment variable {password_env} is empty or unset")
        return value
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin.command("create-user")
def create_user_command(
    email: Annotated[str, typer.Option("--email", help="The user's email (their login)")],
    organization: Annotated[
        str, typer.Option("--org", help="Organization name; created with this user as owner")
    ] = "Default",
    role: Annotated[
        str, typer.Option("--role", help="owner, admin, editor or viewer (existing org)")
    ] = "owner",
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", help="Read the password from this environment variable"),
    ] = None,
) -> None:
    """Create a user (and its organization when new); run `driftline migrate` first."""
    settings = load_settings()
    org_id, created = create_user(
        settings,
        email=email,
        password=_password(password_env),
        organization=organization,
        role=role,
    )
    verb = "created" if created else "already exists"
    typer.echo(f"user {email} {verb} in organization {organization} ({org_id})")


@admin.command("rotate-secrets-key")
def rotate_secrets_key_command() -> None:
    """Encrypt every channel's secrets again under the first key of DRIFTLINE_SECRETS_KEY.

    To rotate: set DRIFTLINE_SECRETS_KEY=new,old (the first encrypts, all decrypt), run this,
    then drop the old key. Secrets stored in plaintext before encryption are sealed too.
    """
    from control_api.alerts.secrets import reseal_all, secret_box
    from control_api.auth.tokens import ConfigurationError
    from storage.db import create_db_engine, session_factory
    from storage.secretbox import SecretsError

    settings = load_settings()
    try:
        box = secret_box(settings)
    except ConfigurationError as error:
        typer.echo(f"rotate-secrets-key refused: {error}", err=True)
        raise typer.Exit(code=2) from error
    engine = create_db_engine(settings.database_url)
    try:
        count = reseal_all(session_factory(engine), box)
    except SecretsError as error:
        typer.echo(f"rotate-secrets-key failed, nothing changed: {error}", err=True)
        raise typer.Exit(code=1) from error
    finally:
        engine.dispose()
    typer.echo(f"secrets of {count} channels and webhooks encrypted under the first key")


def up_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
) -> None:
    """Run Driftline on this machine: API, engine, chDB, SQLite, local objects, one process."""
    import uvicorn

    from control_api.app import create_app
    from control_api.observability import configure_logging
    from driftline.cli import run_migrations
    from storage.secretbox import local_key

    settings = load_settings()
    kept: dict[str, SecretStr] = {}
    if not settings.jwt_secret.get_secret_value():
        kept["jwt_secret"] = SecretStr(local_signing_key(settings.data_dir))
    if not settings.secrets_key.get_secret_value():  # channel secrets, kept the same way
        kept["secrets_key"] = SecretStr(local_key(settings.data_dir))
    settings = load_settings(**kept)
    revision, _ = run_migrations(settings)
    login = _bootstrap(settings)
    base = f"http://{host}:{port}"
    typer.echo(f"Driftline is up (data in {settings.data_dir}; control database at {revision})")
    typer.echo(f"  API docs:   {base}/docs")
    typer.echo(f"  health:     {base}/healthz   readiness: {base}/readyz")
    typer.echo(f"  ingest:     POST {base}/v1/ingest  (an API key with the ingest scope)")
    typer.echo(f"  log in:     {login}")
    configure_logging()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def _bootstrap(settings: Settings) -> str:
    """Create the owner named by DRIFTLINE_BOOTSTRAP_EMAIL and _PASSWORD; say how to log in."""
    email = os.environ.get("DRIFTLINE_BOOTSTRAP_EMAIL")
    password = os.environ.get("DRIFTLINE_BOOTSTRAP_PASSWORD")
    if not (email and password):
        return (
            "set DRIFTLINE_BOOTSTRAP_EMAIL and DRIFTLINE_BOOTSTRAP_PASSWORD, or run "
            "`driftline admin create-user --email you@example.com`, then "
            "POST /v1/auth/token (or Authorize in /docs)"
        )
    organization = os.environ.get("DRIFTLINE_BOOTSTRAP_ORG", "Default")
    create_user(settings, email=email, password=password, organization=organization, role="owner")
    return f"{email} (organization {organization}) via POST /v1/auth/token or Authorize in /docs"
