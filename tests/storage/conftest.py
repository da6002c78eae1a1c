"""Fixtures for the storage tests.

The chDB folder (``chdb_folder``, ``chdb_url``) and ``postgres_url`` fixtures are shared
with the other test packages and live in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from storage.clickhouse.client import MetricsClient, RetryPolicy, connect
from storage.clickhouse.migrations import MigrationParams, migrate

PARAMS = MigrationParams(ttl_days=3650, dedup_window=1000)
NO_WAIT = RetryPolicy(retries=2, backoff_seconds=0.01, sleep=lambda _s: None)


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
