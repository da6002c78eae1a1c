"""The ClickHouse metrics store: embedded chDB by default, a ClickHouse server by URL.

- :mod:`storage.clickhouse.client`: the client wrapper (errors, retries);
- :mod:`storage.clickhouse.migrations`: numbered schema migrations;
- :mod:`storage.clickhouse.writer`: idempotent columnar batch writes;
- :mod:`storage.clickhouse.reader`: tenant-scoped series reads.
"""

from storage.clickhouse.client import MetricsClient, RetryPolicy, connect
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch

__all__ = ["MetricsClient", "MetricsTable", "RetryPolicy", "connect", "write_batch"]
