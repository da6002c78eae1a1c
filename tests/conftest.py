"""Fixtures shared by every test package: the one chDB folder, the service URLs.

chDB is process-global: a process opens one chDB folder at a time (a second, different
folder fails until every client of the first is closed), and a folder serves one process.
So the session opens ONE folder, keeps a client on it for the whole run, and every test
gets a fresh database inside it. Tests that need another process give that process its own
folder (``tmp_path``).

Services (PostgreSQL, Redis, Kafka) are started by ``.ci/services.sh``; a test that needs
one fails (never skips) when its URL is not set.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import db_migrations
from storage.clickhouse.client import connect
from storage.db import create_db_engine, normalize_url


@pytest.fixture(autouse=True)
def _no_worker_left_behind() -> Iterator[None]:
    """Kill the ``driftline worker`` processes a failed test did not stop.

    (Left running, a worker holds its partitions and, when collected later, fails an
    unrelated test with a ResourceWarning.)
    """
    yield
    tools = sys.modules.get("tests.engine.kafka_worker_tools")
    if tools is not None:
        tools.WorkerProcess.kill_leftovers()


@pytest.fixture(scope="session")
def chdb_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("chdb")
    keeper = connect(f"chdb://{folder}", default_database="default", create_database=False)
    yield folder
    keeper.close()


@pytest.fixture
def chdb_url(chdb_folder: Path) -> Iterator[str]:
    """A URL to a fresh, empty database in the session's chDB folder; dropped afterwards."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    yield f"chdb://{chdb_folder}?database={database}"
    with connect(f"chdb://{chdb_folder}", default_database="default", create_database=False) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("DRIFTLINE_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("DRIFTLINE_TEST_POSTGRES_URL is not set: run `source .ci/services.sh`")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("DRIFTLINE_TEST_REDIS_URL")
    if not url:
        pytest.fail("DRIFTLINE_TEST_REDIS_URL is not set: run `source .ci/services.sh`")
    return url


@pytest.fixture(scope="session")
def mlflow_uri() -> str:
    uri = os.environ.get("DRIFTLINE_TEST_MLFLOW_URI")
    if not uri:
        pytest.fail("DRIFTLINE_TEST_MLFLOW_URI is not set: run `source .ci/services.sh`")
    return uri


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the test broker; a missing broker is a failure, not a skip."""
    bootstrap = os.environ.get("DRIFTLINE_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.fail(
            "DRIFTLINE_TEST_KAFKA_BOOTSTRAP is not set: start the broker with "
            "`source .ci/services.sh` (or run .ci/run)"
        )
    return bootstrap


@pytest.fixture
def unique_name() -> str:
    """A fresh suffix for topic and group names, so runs against one broker never collide."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db_migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[tuple[sa.Engine, str]]:
    admin = create_db_engine(postgres_url)
    name = f"tpl_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = normalize_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    db_migrations.upgrade(url)
    yield admin, name
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "driftline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    admin, template = request.getfixturevalue("postgres_template")
    postgres_url = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield normalize_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
