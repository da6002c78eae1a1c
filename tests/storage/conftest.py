"""Fixtures for the storage tests.

chDB is process-global: a process opens one chDB folder at a time (a second, different
folder fails until every client of the first is closed), and a folder serves one process.
So the session opens ONE folder, keeps a client on it for the whole run, and every test
gets a fresh database inside it. Tests that need another process give that process its own
folder (``tmp_path``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.clickhouse.client import MetricsClient, RetryPolicy, connect
from storage.clickhouse.migrations import MigrationParams, migrate

PARAMS = MigrationParams(ttl_days=3650, dedup_window=1000)
NO_WAIT = RetryPolicy(retries=2, backoff_seconds=0.01, sleep=lambda _s: None)


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


@pytest.fixture
def bare_metrics(chdb_url: str) -> Iterator[MetricsClient]:
    """A client on a fresh database without any table."""
    with connect(chdb_url, retry=NO_WAIT) as client:
        yield client


@pytest.fixture
def metrics(bare_metrics: MetricsClient) -> MetricsClient:
    """A client on a fresh database with every migration applied."""
    migrate(bare_metrics, PARAMS)
    return bare_metrics


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("DRIFTLINE_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("DRIFTLINE_TEST_POSTGRES_URL is not set: run `source .ci/services.sh`")
    return url


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    endpoint = os.environ.get("DRIFTLINE_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("DRIFTLINE_TEST_S3_ENDPOINT is not set: run `source .ci/services.sh`")
    return endpoint


def make_drift_batch(
    *, windows: int = 3, features: int = 4, start: str = "2024-03-01T00:00", minutes: int = 5
) -> dict[str, object]:
    """Columns of a drift-result batch: windows x features rows, one statistic (psi)."""
    import numpy as np

    n = windows * features
    starts = np.datetime64(start, "ms") + np.repeat(np.arange(windows), features) * np.timedelta64(
        minutes, "m"
    )
    value = np.tile(np.linspace(0.0, 0.3, features), windows)
    return {
        "deployment": np.full(n, "dep-1", dtype=object),
        "window_start": starts,
        "window_end": starts + np.timedelta64(minutes, "m"),
        "feature": np.tile(np.array([f"f{i}" for i in range(features)], dtype=object), windows),
        "statistic": np.full(n, "psi", dtype=object),
        "value": value,
        "p_value": np.where(value > 0.1, 0.01, np.nan),
        "threshold": np.full(n, 0.2),
        "drifted": value > 0.2,
        "reference_size": np.full(n, 1000, dtype=np.uint64),
        "current_size": np.full(n, 500, dtype=np.uint64),
    }


@pytest.fixture
def drift_batch() -> dict[str, object]:
    return make_drift_batch()


@pytest.fixture
def drift_batch_factory() -> object:
    return make_drift_batch
