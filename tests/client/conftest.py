"""Fixtures of the SDK tests: the real API served by uvicorn on loopback.

The API is built like tests/control_api/test_ingest.py (a migrated chDB database, a
monitors file, a migrated SQLite control database) and served in a background thread; an
organization is signed up over HTTP and given an ingest-scoped API key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_api.app import create_app
from driftline.settings import Settings
from storage import db_migrations
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from tests.client.support import Stack, serve, sign_up, write_monitors


@pytest.fixture(scope="module")
def api_settings(chdb_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a migrated control database and metrics database, for this module."""
    folder = tmp_path_factory.mktemp("sdk-api")
    database = f"sdk_{uuid.uuid4().hex[:12]}"
    chdb_url = f"chdb://{chdb_folder}?database={database}"
    with connect(chdb_url) as store:  # what `driftline migrate` does before the API starts
        migrate(store, MigrationParams(ttl_days=7300))
    db_url = f"sqlite:///{folder / 'driftline.db'}"
    db_migrations.upgrade(db_url)
    yield Settings(
        data_dir=folder / "data",
        database_url=db_url,
        clickhouse_url=chdb_url,
        monitors_file=write_monitors(folder),
        jwt_secret="s" * 48,  # type: ignore[arg-type]
        secrets_key="k6nLqyTRV-XnL2u1SbtcAVvtpTnrl7jfgeQKNLCtATQ=",  # type: ignore[arg-type]
        environment="production",  # type: ignore[arg-type]
        argon2_time_cost=1,
        argon2_memory_kib=64,
        redis_url="",
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )
    with connect(f"chdb://{chdb_folder}", default_database="default", create_database=False) as c:
        c.command(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture(scope="module")
def served_api(api_settings: Settings) -> Iterator[str]:
    """The API (embedded engine) served for the whole module."""
    with serve(create_app(api_settings)) as url:
        yield url


@pytest.fixture
def stack(served_api: str, api_settings: Settings) -> Stack:
    """A fresh organization and ingest key on the module's served API."""
    return sign_up(served_api, api_settings)
