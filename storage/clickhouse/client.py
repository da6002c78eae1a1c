"""The one module that talks to clickhouse-connect.

:class:`MetricsClient` wraps a clickhouse-connect client built from one URL, either
embedded chDB (``chdb:///abs/path``) or a ClickHouse server
(``http(s)://user:password@host:8123/database``): the same SQL and the same code path for
both. The driver's exceptions never leave this module: transient failures (connection
refused, timeouts, overload) are retried with exponential backoff and then raised as
:class:`~storage.errors.StorageUnavailable`; everything else becomes
:class:`~storage.errors.StorageQueryError`.

chDB facts this module relies on (chdb 4.4, clickhouse-connect 1.12):

- one chDB data folder per process: a second process opening it fails with
  "Error initializing EmbeddedServer";
- one folder per process at a time: any number of clients may share the folder a process
  opened, but a different folder only opens once every client of the first is closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from storage.errors import StorageQueryError, StorageUnavailable

__all__ = ["MetricsClient", "RetryPolicy", "connect", "parse_clickhouse_url"]

T = TypeVar("T")

# ClickHouse error codes worth a retry: the same request can succeed a moment later.
TRANSIENT_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (replica briefly read-only)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: ``retries`` more tries after the first one.

    The n-th retry waits ``backoff_seconds * 2**(n-1)``, capped at ``max_backoff_seconds``.
    ``sleep`` is injectable so tests do not wait.
    """

    retries: int = 4
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (retry - 1)))


def parse_clickhouse_url(url: str, *, default_database: str) -> tuple[str, str]:
    """Split a metrics URL into the driver DSN (without a database) and the database name.

    ``chdb:///abs/path?database=db`` (the whole path is the chDB folder) and
    ``http(s)://user:password@host:port/db`` (the path is the database) are accepted; the
    database defaults to ``default_database``.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    named = query.pop("database", [""])[0]
    if parts.scheme == "chdb":
        if not parts.path.startswith("/") or parts.netloc:
            raise StorageQueryError(f"chDB URL must name an absolute folder: chdb:///path ({url})")
        database = named or default_database
        rest = urlencode(query, doseq=True)
        dsn = f"chdb://{parts.path}" + (f"?{rest}" if rest else "")
    elif parts.scheme in ("http", "https"):
        database = parts.path.strip("/") or named or default_database
        dsn = urlunsplit((parts.scheme, parts.netloc, "", urlencode(query, doseq=True), ""))
    else:
        raise StorageQueryError(f"unsupported metrics URL scheme {parts.scheme!r}: chdb or http(s)")
    if not database.replace("_", "a").isalnum() or database[0].isdigit():
        raise StorageQueryError(f"invalid ClickHouse database name {database!r}")
    return dsn, database


def _is_transient(error: ClickHouseError) -> bool:
    code = getattr(error, "code", None)
    if code in TRANSIENT_CODES:
        return True
    return isinstance(error, OperationalError) and code is None


def _translate(error: ClickHouseError, *, attempts: int) -> Exception:
    if _is_transient(error):
        return StorageUnavailable(f"metrics store unavailable: {error}", attempts=attempts)
    text = str(error)
    if "EmbeddedServer" in text:
        return StorageUnavailable(
            "chDB folder already open elsewhere: a chDB folder serves one process, and a "
            f"process one folder at a time ({text})",
            attempts=attempts,
        )
    return StorageQueryError(text, code=getattr(error, "code", None))


def _with_retry(policy: RetryPolicy, call: Callable[[], T]) -> T:
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except ClickHouseError as error:
            if not _is_transient(error) or attempt > policy.retries:
                raise _translate(error, attempts=attempt) from error
        policy.sleep(policy.delay(attempt))


class MetricsClient:
    """A clickhouse-connect client bound to one database, with retries and our errors.

    Every query takes its values as bound ``parameters`` (``{name:Type}`` in the SQL): an
    organization or any other user-supplied value is never formatted into SQL text.
    """

    def __init__(self, raw: Client, *, database: str, retry: RetryPolicy) -> None:
        self._raw = raw
        self._database = database
        self._retry = retry

    @property
    def database(self) -> str:
        """The database that unqualified table names refer to."""
        return self._database

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy applied to every call."""
        return self._retry

    def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Run a statement that returns nothing (DDL, ALTER); retried when transient."""
        _with_retry(
            self._retry,
            lambda: self._raw.command(
                sql, parameters=dict(parameters or {}), settings=dict(settings or {})
            ),
        )

    def query_rows(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a SELECT and return its rows as tuples (small results: metadata, counts)."""
        result = _with_retry(
            self._retry, lambda: self._raw.query(sql, parameters=dict(parameters or {}))
        )
        return [tuple(row) for row in result.result_rows]

    def query_arrow(self, sql: str, parameters: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a SELECT and return its result as an Arrow table (columnar, for series)."""
        table = _with_retry(
            self._retry, lambda: self._raw.query_arrow(sql, parameters=dict(parameters or {}))
        )
        if not isinstance(table, pa.Table):  # pragma: no cover - driver contract
            raise StorageQueryError(f"driver returned {type(table).__name__}, not an Arrow table")
        return table

    def insert_arrow(
        self,
        table: str,
        data: pa.Table,
        *,
        dedup_token: str,
    ) -> None:
        """Insert an Arrow table in one block, idempotently under ``dedup_token``.

        ClickHouse keeps the tokens of the last ``non_replicated_deduplication_window``
        blocks of each table (set by the migrations); an insert whose token it has seen is
        acknowledged and dropped, including in the materialized views fed by the table
        (``deduplicate_blocks_in_dependent_materialized_views``). A retry after a timeout
        or a crash therefore leaves no duplicate, as long as it reuses the token.

        ``optimize_on_insert = 0``: the roll-ups' views already aggregate each block by its
        key, so merging the block's rows again on insert (the default) would only cost time;
        every reader aggregates with ``GROUP BY`` whatever the merges have done.
        """
        settings = {
            "insert_deduplicate": 1,
            "insert_deduplication_token": dedup_token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "optimize_on_insert": 0,
        }
        _with_retry(self._retry, lambda: self._raw.insert_arrow(table, data, settings=settings))

    def close(self) -> None:
        """Close the driver client (for chDB: release this handle on the folder)."""
        self._raw.close()

    def __enter__(self) -> MetricsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    url: str,
    *,
    default_database: str = "driftline",
    retry: RetryPolicy | None = None,
    create_database: bool = True,
    settings: Sequence[tuple[str, Any]] = (),
) -> MetricsClient:
    """Open a :class:`MetricsClient` on ``url``; create its database unless told not to.

    Connecting is retried like any call, so a server that is still starting is waited for.
    """
    policy = retry or RetryPolicy()
    dsn, database = parse_clickhouse_url(url, default_database=default_database)
    raw = _with_retry(
        policy, lambda: clickhouse_connect.get_client(dsn=dsn, settings=dict(settings))
    )
    try:
        if create_database:
            _with_retry(policy, lambda: raw.command(f"CREATE DATABASE IF NOT EXISTS {database}"))
        raw.database = database
    except BaseException:
        raw.close()
        raise
    return MetricsClient(raw, database=database, retry=policy)
