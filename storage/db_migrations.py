"""Alembic migrations of the control database, driven from code.

The migration scripts live in the repository's top-level ``migrations/`` folder (Alembic's
``script_location``); a built wheel carries a copy of it as ``storage/control_migrations/``
(``setup.py``), which is used when present, so ``driftline migrate`` works from a
non-editable install. There is no ``alembic.ini``: :func:`alembic_config` builds the
configuration from the database URL, so the ``alembic`` command line needs
``-c`` with a config of your own, while ``driftline migrate`` needs nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import create_db_engine, normalize_url

__all__ = [
    "MIGRATIONS_DIR",
    "PACKAGED_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

PACKAGED_DIR = Path(__file__).resolve().parent / "control_migrations"  # in a built wheel
MIGRATIONS_DIR = (
    PACKAGED_DIR if PACKAGED_DIR.is_dir() else Path(__file__).resolve().parent.parent / "migrations"
)


def alembic_config(url: str) -> Config:
    """Build an Alembic configuration for the database at ``url``.

    The URL is passed as an attribute, not through the ini parser, so passwords with ``%``
    need no escaping.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = normalize_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert the migrations down to ``revision`` (``"base"``: an empty database)."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """Return the revision the database is at, ``None`` before the first migration."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """Return the newest revision among the migration scripts."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None  # the initial migration exists
    return head
