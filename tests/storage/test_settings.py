import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from driftline.settings import ObjectStoreKind, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("DRIFTLINE_") and not name.startswith("DRIFTLINE_TEST_"):
            monkeypatch.delenv(name)


def test_defaults_live_under_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    data = tmp_path / "driftline-data"
    assert settings.data_dir == data
    assert settings.clickhouse_url == f"chdb://{data / 'metrics'}"
    assert settings.database_url == f"sqlite:///{data / 'driftline.db'}"
    assert settings.local_objects_dir == data / "objects"
    assert settings.object_store is ObjectStoreKind.LOCAL
    assert settings.metrics_ttl_days == 400


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIFTLINE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("DRIFTLINE_DATABASE_URL", "postgresql+psycopg2://u:p@db/driftline")
    monkeypatch.setenv("DRIFTLINE_METRICS_TTL_DAYS", "30")
    monkeypatch.setenv("DRIFTLINE_OBJECT_STORE", "s3")
    monkeypatch.setenv("DRIFTLINE_S3_ENDPOINT", "minio:9000")
    monkeypatch.setenv("DRIFTLINE_S3_SECRET_KEY", "hunter2")
    settings = load_settings()
    assert settings.clickhouse_url == f"chdb://{tmp_path / 'd' / 'metrics'}"
    assert settings.database_url.startswith("postgresql+psycopg2://")
    assert settings.metrics_ttl_days == 30
    assert settings.object_store is ObjectStoreKind.S3
    assert settings.s3_secret_key.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)


def test_settings_are_frozen():
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.metrics_ttl_days = 1  # type: ignore[misc]
    assert not dataclasses.is_dataclass(settings)


@pytest.mark.parametrize(
    "overrides",
    [
        {"metrics_ttl_days": 0},
        {"db_pool_size": 0},
        {"clickhouse_database": "x; DROP"},
        {"object_store": "s3"},  # without an endpoint
        {"object_store": "ftp"},
    ],
)
def test_invalid_settings_are_refused(overrides):
    with pytest.raises(ValidationError):
        Settings(**overrides)


def test_every_field_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert field.annotation is not None, name
    assert isinstance(Settings().data_dir, Path)
