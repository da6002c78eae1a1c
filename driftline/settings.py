"""Driftline's settings: one frozen object, read from ``DRIFTLINE_*`` environment variables.

Built once at each entry point (the CLI, the API, a worker) with :func:`load_settings` and
passed down as arguments: ``storage``, ``engine`` and ``detectors`` never read the
environment themselves.

Every field is declared with its type, its default and its meaning; the environment name
is the field name in upper case with the ``DRIFTLINE_`` prefix (``data_dir`` ->
``DRIFTLINE_DATA_DIR``). Three URLs default to places inside ``data_dir`` (the embedded
mode: chDB, SQLite and a local folder), so pointing ``DRIFTLINE_DATA_DIR`` elsewhere moves
all of them at once, and setting a URL explicitly overrides only that one.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.clickhouse.migrations.base import MAX_TTL_DAYS

__all__ = ["Environment", "ObjectStoreKind", "Settings", "load_settings"]


class Environment(StrEnum):
    """Where Driftline runs; only ``development`` may start the API without a signing key."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ObjectStoreKind(StrEnum):
    """Where objects (reference datasets, profiles, reports) are kept."""

    LOCAL = "local"
    S3 = "s3"


class Settings(BaseSettings):
    """Every setting of Driftline, frozen once built."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_",
        frozen=True,
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Field(
        default=Path("driftline-data"),
        description="Folder of the embedded mode: chDB metrics, the SQLite database, objects.",
    )
    clickhouse_url: str = Field(
        default="",
        description=(
            "Metrics store. chdb:///abs/path for embedded chDB (default "
            "chdb://<data_dir>/metrics), or http(s)://user:password@host:8123/database for a "
            "ClickHouse server."
        ),
    )
    clickhouse_database: str = Field(
        default="driftline",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="ClickHouse database holding the metrics tables, unless the URL names one.",
    )
    metrics_ttl_days: int = Field(
        default=400,
        ge=1,
        le=MAX_TTL_DAYS,
        description=(
            "Days a raw metrics row is kept before ClickHouse drops it (TTL), counted from the "
            "row's event time; at most 7300 (ClickHouse DateTime ends in 2106)."
        ),
    )
    clickhouse_retries: int = Field(
        default=4,
        ge=0,
        le=20,
        description="Retries of a metrics-store call after a transient error, before raising.",
    )
    clickhouse_retry_backoff_seconds: float = Field(
        default=0.2,
        ge=0.0,
        le=60.0,
        description="First retry delay in seconds; doubled at each further retry.",
    )
    database_url: str = Field(
        default="",
        description=(
            "Control database, an SQLAlchemy URL: sqlite:///<data_dir>/driftline.db by "
            "default, or postgresql+psycopg2://user:password@host:5432/name."
        ),
    )
    db_pool_size: int = Field(
        default=5, ge=1, le=200, description="Connections kept open in the control-db pool."
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        le=200,
        description="Connections opened beyond db_pool_size under load, closed when idle.",
    )
    object_store: ObjectStoreKind = Field(
        default=ObjectStoreKind.LOCAL,
        description="local (a folder, the embedded default) or s3 (any S3 API: MinIO, AWS).",
    )
    objects_dir: Path | None = Field(
        default=None,
        description="Folder of the local object store (default <data_dir>/objects).",
    )
    s3_endpoint: str = Field(
        default="",
        description="S3 endpoint as host:port, without a scheme (e.g. minio:9000).",
    )
    s3_secure: bool = Field(default=True, description="Use HTTPS to reach the S3 endpoint.")
    s3_bucket: str = Field(default="driftline", description="Bucket holding every object.")
    s3_region: str | None = Field(default=None, description="S3 region, when the API needs it.")
    s3_access_key: SecretStr = Field(
        default=SecretStr(""), description="S3 access key id (never logged)."
    )
    s3_secret_key: SecretStr = Field(
        default=SecretStr(""), description="S3 secret access key (never logged)."
    )
    max_upload_bytes: int = Field(
        default=1 << 30,
        ge=1,
        description="Largest object accepted by the object store, in bytes (default 1 GiB).",
    )

    # --- control plane (control_api/) -------------------------------------------------------
    environment: Environment = Field(
        default=Environment.PRODUCTION,
        description="production (the default) or development (allows a missing JWT secret).",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "HS256 signing key of access and refresh tokens, at least 32 characters; the API "
            "refuses to start without one outside development (never logged)."
        ),
    )
    jwt_algorithm: str = Field(
        default="HS256",
        pattern=r"^(HS256|RS256)$",
        description="Token signature: HS256 (shared secret) or RS256 (key pair).",
    )
    jwt_private_key: SecretStr = Field(
        default=SecretStr(""), description="PEM private key signing RS256 tokens (never logged)."
    )
    jwt_public_key: str = Field(default="", description="PEM public key checking RS256 tokens.")
    jwt_issuer: str = Field(default="driftline", description="The iss claim of our tokens.")
    secrets_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Fernet key(s) encrypting channel secrets at rest, comma-separated: the first "
            "encrypts, all decrypt (rotation). The API refuses to start without one outside "
            "development, where a key is kept in <data_dir>/secrets-key (never logged)."
        ),
    )
    jwt_audience: str = Field(default="driftline-api", description="The aud claim of our tokens.")
    access_token_ttl_seconds: int = Field(
        default=900, ge=30, le=86_400, description="Lifetime of an access token, in seconds."
    )
    refresh_token_ttl_seconds: int = Field(
        default=30 * 86_400,
        ge=60,
        le=365 * 86_400,
        description="Lifetime of a login session (its refresh tokens), in seconds.",
    )
    signup_enabled: bool = Field(
        default=True, description="Allow POST /v1/auth/signup to create organizations."
    )
    password_min_length: int = Field(
        default=10, ge=8, le=128, description="Shortest password accepted, in characters."
    )
    argon2_time_cost: int = Field(
        default=3, ge=1, le=20, description="Argon2id passes over memory when hashing a password."
    )
    argon2_memory_kib: int = Field(
        default=65_536,
        ge=64,
        le=4_194_304,
        description="Argon2id memory per password hash, in KiB (default 64 MiB).",
    )
    redis_url: str = Field(
        default="",
        description=(
            "redis://host:6379/0 for shared rate limits; empty (the embedded default) keeps "
            "rate-limit buckets in the API process."
        ),
    )
    redis_key_prefix: str = Field(
        default="driftline:", description="Prefix of every Redis key Driftline writes."
    )
    cache_ttl_seconds: int = Field(
        default=60,
        ge=0,
        le=86_400,
        description=(
            "Lifetime of a cached read in Redis (a project, a page of projects, a member's "
            "session and role, a monitor, a reference profile); writes invalidate at once, so "
            "this bounds only an invalidation lost with its process. 0 turns the cache off; "
            "without redis_url there is none."
        ),
    )
    monitor_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description=(
            "How often an engine (the embedded one, a Kafka worker) compares the monitors' "
            "versions in the control database with those it runs, catching a change whose "
            "Redis notification was lost; 0 turns the poll off."
        ),
    )
    rate_limit_per_second: float = Field(
        default=50.0,
        gt=0,
        description="Sustained requests per second allowed per API key, user or client IP.",
    )
    rate_limit_burst: int = Field(
        default=100, ge=1, description="Requests allowed at once above the sustained rate."
    )
    login_attempts_per_minute: int = Field(
        default=10, ge=1, description="Login attempts per minute allowed per account."
    )
    login_attempts_per_minute_per_ip: int = Field(
        default=30, ge=1, description="Login and sign-up attempts per minute per client IP."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (JSON list); empty disables CORS headers.",
    )
    max_request_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest request body the API reads, in bytes (default 1 MiB); beyond: 413.",
    )
    mlflow_tracking_uri: str = Field(
        default="",
        description=(
            "MLflow tracking server (http://host:5000); when set, the model registry mirrors "
            "models, versions, tags and aliases there, and experiments and runs are kept "
            "there, each organization under its own name prefix (<org slug>.); empty keeps "
            "experiments and runs in the control database."
        ),
    )
    alert_delivery_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="How often the embedded engine drains the alert notification outbox.",
    )
    ingest_max_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest body of POST /v1/ingest, in bytes (a columnar envelope of 10,000 events "
            "with 20 features is about 4 MiB); other routes keep max_request_bytes."
        ),
    )
    reference_max_bytes: int = Field(
        default=256 << 20,
        ge=1,
        description="Largest reference dataset accepted by upload, in bytes (default 256 MiB).",
    )
    shutdown_grace_seconds: int = Field(
        default=20,
        ge=0,
        le=600,
        description="Seconds the API waits for in-flight requests on shutdown before closing.",
    )

    # --- Kafka worker (engine/kafka/, `driftline worker`) -----------------------------------
    kafka_bootstrap: str = Field(
        default="",
        description="Kafka brokers as host:port[,host:port]; `driftline worker` requires it.",
    )
    kafka_organization: str = Field(
        default="",
        description=(
            "The organization the events topic is bound to: every result and dead letter of "
            "the worker belongs to it (never read from the events); the worker requires it."
        ),
    )
    kafka_events_topic: str = Field(
        default="predictions",
        min_length=1,
        description=(
            "Topic of every event type (predictions, labels, resources), keyed by deployment "
            "id, so that a deployment's labels reach the worker holding its predictions."
        ),
    )
    kafka_dead_letter_topic: str = Field(
        default="driftline-dead-letters",
        min_length=1,
        description="Topic of refused events: raw payload as the value, the reason in headers.",
    )
    kafka_group_id: str = Field(
        default="driftline-engine",
        min_length=1,
        description=(
            "Consumer group (faust app id) of the workers; also names the snapshot table's "
            "changelog topic (<group>-snapshots-changelog)."
        ),
    )
    kafka_partitions: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description=(
            "Partitions of the events topic (created so when absent; an existing topic must "
            "have this many): the most workers that can share the load."
        ),
    )
    kafka_batch_size: int = Field(
        default=1000, ge=1, description="Most events the worker takes from Kafka per batch."
    )
    kafka_batch_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Longest wait, in seconds, for a batch to fill before it is processed.",
    )
    kafka_commit_interval_seconds: float = Field(
        default=2.8,
        gt=0,
        le=600,
        description="How often consumed offsets are committed (only past checkpointed events).",
    )
    kafka_session_timeout_seconds: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description=(
            "Seconds without a heartbeat before the group drops a worker and hands its "
            "partitions to others (the broker's group.min.session.timeout.ms bounds it)."
        ),
    )
    kafka_heartbeat_interval_seconds: float = Field(
        default=3.0,
        gt=0,
        le=100,
        description="Seconds between heartbeats; keep it under a third of the session timeout.",
    )
    monitors_file: Path | None = Field(
        default=None,
        description=(
            "YAML or JSON file of the monitors the worker runs (one or a list; relative "
            "reference paths are read from the file's folder); the worker requires it."
        ),
    )
    engine_embedded: bool = Field(
        default=True,
        description=(
            "Run the engine inside the API process (the embedded default): POST /v1/ingest "
            "windows events there. Off when workers consume Kafka (the endpoint answers 503)."
        ),
    )
    engine_write_behind_ms: int = Field(
        default=0,
        ge=0,
        le=60_000,
        description=(
            "Embedded engine: milliseconds closed windows may wait to be written together "
            "(one insert per table for up to 256 windows; alerts follow the write). 0: the "
            "windows an ingest request closes are written before it answers."
        ),
    )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Self:
        """Fill the URLs and folders left empty from ``data_dir`` (made absolute)."""
        data_dir = self.data_dir.expanduser().resolve()
        # frozen: fill derived values through object.__setattr__ inside the validator
        object.__setattr__(self, "data_dir", data_dir)
        if not self.clickhouse_url:
            object.__setattr__(self, "clickhouse_url", f"chdb://{data_dir / 'metrics'}")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'driftline.db'}")
        if self.objects_dir is None:
            object.__setattr__(self, "objects_dir", data_dir / "objects")
        if self.object_store is ObjectStoreKind.S3 and not self.s3_endpoint:
            raise ValueError("DRIFTLINE_S3_ENDPOINT is required when DRIFTLINE_OBJECT_STORE=s3")
        return self

    @property
    def local_objects_dir(self) -> Path:
        """The local object-store folder, always set once the settings are built."""
        assert self.objects_dir is not None  # filled by _derive_defaults
        return self.objects_dir


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment; keyword ``overrides`` win over it.

    Call this at an entry point only, then pass the result down.
    """
    return Settings(**overrides)  # type: ignore[arg-type]
