"""Fixtures for the engine tests that need the Kafka broker started by ``.ci/run``."""

from __future__ import annotations

import os
import uuid

import pytest


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
