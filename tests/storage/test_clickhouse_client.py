import socket

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from storage.clickhouse.client import MetricsClient, RetryPolicy, connect, parse_clickhouse_url
from storage.errors import StorageQueryError, StorageUnavailable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_parse_chdb_url_takes_the_whole_path_as_folder():
    assert parse_clickhouse_url("chdb:///data/metrics", default_database="dl") == (
        "chdb:///data/metrics",
        "dl",
    )
    assert parse_clickhouse_url("chdb:///data/m?database=x1", default_database="dl") == (
        "chdb:///data/m",
        "x1",
    )


def test_parse_http_url_takes_the_path_as_database():
    dsn, database = parse_clickhouse_url(
        "https://u:p@ch.example:8443/metrics", default_database="dl"
    )
    assert (dsn, database) == ("https://u:p@ch.example:8443", "metrics")
    assert parse_clickhouse_url("http://h:8123", default_database="dl")[1] == "dl"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://h/db",
        "chdb://relative/path",
        "http://h:8123/bad-name",
        "http://h/1db",
        "chdb:///x?database=a;b",
    ],
)
def test_bad_urls_are_refused(url):
    with pytest.raises(StorageQueryError):
        parse_clickhouse_url(url, default_database="dl")


def test_outage_is_retried_with_backoff_then_raised():
    waits: list[float] = []
    policy = RetryPolicy(
        retries=3, backoff_seconds=0.5, max_backoff_seconds=1.0, sleep=waits.append
    )
    with pytest.raises(StorageUnavailable) as info:
        connect(f"http://default:@127.0.0.1:{_closed_port()}/metrics", retry=policy)
    assert info.value.attempts == 4
    assert waits == [0.5, 1.0, 1.0]


def test_query_errors_are_translated_and_not_retried(bare_metrics):
    with pytest.raises(StorageQueryError) as info:
        bare_metrics.query_rows("SELECT * FROM no_such_table")
    assert info.value.code == 60  # UNKNOWN_TABLE


def test_second_chdb_folder_in_one_process_is_refused(tmp_path, bare_metrics):
    with pytest.raises(StorageUnavailable, match="one folder at a time"):
        connect(f"chdb://{tmp_path / 'other'}", retry=RetryPolicy(retries=0))


def test_bound_parameters_round_trip(bare_metrics):
    rows = bare_metrics.query_rows(
        "SELECT {a:String}, {b:Array(String)}", {"a": "x' OR 1=1 --", "b": ["q", "'"]}
    )
    assert rows == [("x' OR 1=1 --", ["q", "'"])]
    table = bare_metrics.query_arrow("SELECT 1 AS one")
    assert table.column("one").to_pylist() == [1]


class _FlakyRaw:
    """Wraps a real driver client; the first ``failures`` calls raise a transient error."""

    def __init__(self, raw, failures: int, *, after_call: bool) -> None:
        self.raw, self.failures, self.after_call = raw, failures, after_call
        self.calls = 0

    def _maybe_fail(self) -> None:
        if self.calls <= self.failures:
            raise OperationalError("connection reset by peer")

    def query(self, *args, **kwargs):
        self.calls += 1
        self._maybe_fail()
        return self.raw.query(*args, **kwargs)

    def insert_arrow(self, *args, **kwargs):
        self.calls += 1
        if not self.after_call:
            self._maybe_fail()
        result = self.raw.insert_arrow(*args, **kwargs)
        if self.after_call:
            self._maybe_fail()  # the insert landed, but its acknowledgement is lost
        return result

    def close(self) -> None:
        self.raw.close()


def test_transient_errors_are_retried_until_success(bare_metrics):
    waits: list[float] = []
    flaky = _FlakyRaw(bare_metrics._raw, failures=2, after_call=False)
    client = MetricsClient(
        flaky, database=bare_metrics.database, retry=RetryPolicy(sleep=waits.append)
    )
    assert client.query_rows("SELECT 42") == [(42,)]
    assert flaky.calls == 3
    assert waits == [0.2, 0.4]


def test_lost_acknowledgement_is_retried_without_duplicate(bare_metrics):
    bare_metrics.command(
        "CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x "
        "SETTINGS non_replicated_deduplication_window = 100"
    )
    flaky = _FlakyRaw(bare_metrics._raw, failures=1, after_call=True)
    client = MetricsClient(
        flaky, database=bare_metrics.database, retry=RetryPolicy(sleep=lambda _s: None)
    )
    client.insert_arrow("t", pa.table({"x": pa.array([1, 2, 3], pa.uint32())}), dedup_token="b1")
    assert flaky.calls == 2  # one insert whose ack was lost, one retry
    assert bare_metrics.query_rows("SELECT count(), sum(x) FROM t") == [(3, 6)]
