"""A scratch control database for the benchmarks that need PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from storage import db_migrations
from storage.db import create_db_engine, normalize_url


@contextmanager
def migrated_postgres(url: str, prefix: str) -> Iterator[str]:
    """A new database ``<prefix>_<random>`` on ``url``'s server, migrated; dropped afterwards."""
    admin = create_db_engine(url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        fresh = normalize_url(url).set(database=name).render_as_string(hide_password=False)
        db_migrations.upgrade(fresh)
        yield fresh
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
