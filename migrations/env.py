"""Alembic environment for the control database (PostgreSQL or SQLite).

The URL comes from ``config.attributes["url"]``, set by :mod:`storage.db_migrations`.
SQLite cannot ALTER most things, so migrations run in batch mode there (copy, alter,
swap), which the same migration code does transparently on PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from storage.db import create_db_engine
from storage.models import Base

config = context.config
url = config.attributes["url"]


def run_offline() -> None:
    """Emit the SQL instead of running it (``--sql``)."""
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on a live connection, in one transaction."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
