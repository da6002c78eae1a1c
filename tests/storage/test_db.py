import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from storage import db_migrations
from storage.db import create_db_engine, normalize_url, session_factory
from storage.models import Base, Organization


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'driftline.db'}"


@pytest.fixture
def pg_url(postgres_url) -> Iterator[str]:
    """A fresh PostgreSQL database per test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(postgres_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield normalize_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    db_migrations.upgrade(url)
    assert db_migrations.current_revision(url) == db_migrations.head_revision()
    assert {"organizations", "alembic_version"} <= _tables(url)
    db_migrations.downgrade(url, "base")
    assert db_migrations.current_revision(url) is None
    assert _tables(url) == {"alembic_version"}
    db_migrations.upgrade(url)
    db_migrations.upgrade(url)  # a second run changes nothing
    assert db_migrations.current_revision(url) == db_migrations.head_revision()
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], "models and migrations disagree"
    finally:
        engine.dispose()


def test_sqlite_upgrade_downgrade_upgrade(sqlite_url):
    _round_trip(sqlite_url)


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_upgrade(pg_url):
    _round_trip(pg_url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    engine = create_db_engine(sqlite_url, pool_size=2, max_overflow=1)
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        conn.execute(sa.text("CREATE TABLE p (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE c (p_id INTEGER REFERENCES p(id))"))
        with pytest.raises(IntegrityError):
            conn.execute(sa.text("INSERT INTO c VALUES (7)"))
    assert engine.pool.size() == 2
    engine.dispose()


def test_in_memory_sqlite_works(tmp_path):
    engine = create_db_engine("sqlite://")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as session:
        session.add(Organization(slug="acme", name="Acme"))
        session.commit()
        assert session.scalars(sa.select(Organization.slug)).all() == ["acme"]
    engine.dispose()


def test_bare_postgresql_means_psycopg2():
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg2"
    assert normalize_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"


@pytest.mark.postgres
def test_postgres_sessions_and_unique_slug(pg_url):
    db_migrations.upgrade(pg_url)
    engine = create_db_engine(pg_url, pool_size=1, max_overflow=0)
    sessions = session_factory(engine)
    with sessions() as session:
        org = Organization(slug="acme", name="Acme")
        session.add(org)
        session.commit()
        assert len(org.id) == 36
        assert org.created_at.tzinfo is not None
    with sessions() as session:
        session.add(Organization(slug="acme", name="Again"))
        with pytest.raises(IntegrityError):
            session.commit()
    engine.dispose()
