"""The control database: SQLAlchemy 2 engine and session factory from one URL.

- ``sqlite:///<path>`` (the embedded default): the folder is created, and every connection
  runs in WAL mode (readers do not block the writer) with foreign keys enforced and a busy
  timeout instead of an immediate "database is locked".
- ``postgresql+psycopg2://user:password@host:5432/name``: the psycopg2 driver, which
  Driftline installs. A bare ``postgresql://`` is read as psycopg2 too (SQLAlchemy 2.1
  would otherwise pick psycopg 3, which is not installed).

Every pooled engine pings a connection before handing it out (``pool_pre_ping``), so a
database restart costs one reconnect instead of an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["create_db_engine", "normalize_url", "session_factory"]

SQLITE_BUSY_TIMEOUT_MS = 5_000


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``, pinning the PostgreSQL driver to psycopg2."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def create_db_engine(
    url: str | URL, *, pool_size: int = 5, max_overflow: int = 10, echo: bool = False
) -> Engine:
    """Create the engine for the control database at ``url``.

    ``pool_size`` connections stay open; up to ``max_overflow`` more open under load. An
    in-memory SQLite URL gets SQLAlchemy's default single-connection pool instead.
    """
    parsed = normalize_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True, "echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            options |= {"pool_size": pool_size, "max_overflow": max_overflow}
        engine = create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_size=pool_size, max_overflow=max_overflow, **options)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
