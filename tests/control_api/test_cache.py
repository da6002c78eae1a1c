"""The Redis cache of hot reads (control_api/cache.py), on the real Redis.

First the cache alone: hits, tenant isolation, a read racing a write, deletes, versions,
Redis going away and coming back (through a TCP proxy the test cuts). Then through the
API on SQLite and PostgreSQL: ``GET /v1/projects/{id}`` and ``GET /v1/monitors/{id}``
answer from the cache and see every write at once, ETags included, with Redis up or down.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, TypeAdapter

from control_api.cache import PAUSE_SECONDS, Cached, CacheMetrics, RedisCache
from tests.control_api.conftest import Api
from tests.control_api.tcp_proxy import TcpProxy
from tests.control_api.test_references_monitors import SPEC, _csv, _deployment, _frame, _upload

pytestmark = pytest.mark.redis


class Item(BaseModel):
    id: str
    version: int
    name: str


ITEMS = Cached("item", TypeAdapter(Item), lambda item: item.version)


class Loader:
    """A stand-in for the database read: answers ``current`` and counts the calls."""

    def __init__(self, name: str = "v1", version: int = 1) -> None:
        self.current = Item(id="i", version=version, name=name)
        self.calls = 0

    def __call__(self) -> Item:
        self.calls += 1
        return self.current


def lookups(metrics: CacheMetrics, outcome: str, kind: str = "item") -> float:
    return metrics.lookups.labels(kind, outcome)._value.get()


@pytest.fixture
def metrics() -> CacheMetrics:
    return CacheMetrics(CollectorRegistry())


def make_cache(url: str, metrics: CacheMetrics, clock=time.monotonic) -> RedisCache:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return RedisCache(
        client, prefix=f"test:{uuid.uuid4().hex}:", ttl_seconds=60, metrics=metrics, clock=clock
    )


@pytest.fixture
def cache(redis_url: str, metrics: CacheMetrics) -> Iterator[RedisCache]:
    made = make_cache(redis_url, metrics)
    yield made
    made.close()


def test_a_hit_needs_no_load_and_each_organization_has_its_own_entry(cache, metrics):
    load = Loader("acme's")
    assert cache.get_or_load("org-a", ITEMS, "i", load).name == "acme's"
    assert cache.get_or_load("org-a", ITEMS, "i", load).name == "acme's"
    assert (load.calls, lookups(metrics, "miss"), lookups(metrics, "hit")) == (1, 1, 1)
    other = Loader("other's")
    assert cache.get_or_load("org-b", ITEMS, "i", other).name == "other's"  # same id
    assert other.calls == 1
    assert cache.get_or_load("org-a", ITEMS, "i", load).name == "acme's"


def test_a_read_that_raced_a_write_cannot_put_the_old_value_back(cache):
    load = Loader()

    def read_then_write_commits() -> Item:
        old = load()  # the reader's query ran before the write committed
        load.current = Item(id="i", version=2, name="v2")
        cache.invalidate("org", ITEMS, "i", version=2)  # the writer, after its commit
        return old

    assert cache.get_or_load("org", ITEMS, "i", read_then_write_commits).name == "v1"
    assert cache.get_or_load("org", ITEMS, "i", load).name == "v2"  # the old fill was refused
    assert cache.get_or_load("org", ITEMS, "i", load).name == "v2"
    assert load.calls == 2  # the second read cached v2; the third was a hit


def test_an_invalidation_that_arrives_late_does_not_hide_a_newer_value(cache):
    load = Loader("v3", version=3)
    cache.get_or_load("org", ITEMS, "i", load)
    cache.invalidate("org", ITEMS, "i", version=2)  # an older write's, after v3 was cached
    assert cache.get_or_load("org", ITEMS, "i", load).name == "v3"
    assert load.calls == 1


def test_after_a_delete_nothing_is_cached_again(cache):
    load = Loader()
    cache.get_or_load("org", ITEMS, "i", load)
    cache.invalidate("org", ITEMS, "i", version=None)
    cache.get_or_load("org", ITEMS, "i", load)
    cache.get_or_load("org", ITEMS, "i", load)
    assert load.calls == 3


def test_a_reader_that_needs_a_newer_version_reloads_and_replaces_the_entry(cache, metrics):
    load = Loader()
    cache.get_or_load("org", ITEMS, "i", load)
    load.current = Item(id="i", version=2, name="v2")  # written, invalidation lost
    assert cache.get_or_load("org", ITEMS, "i", load).name == "v1"
    assert cache.get_or_load("org", ITEMS, "i", load, min_version=2).name == "v2"
    assert cache.get_or_load("org", ITEMS, "i", load).name == "v2"
    assert (load.calls, lookups(metrics, "stale")) == (2, 1)


def test_ids_that_are_not_plain_never_reach_redis(cache, metrics):
    load = Loader()
    for key in ("a:b", "x" * 65, "*"):
        cache.get_or_load("org", ITEMS, key, load)
        cache.get_or_load("org", ITEMS, key, load)
    assert (load.calls, lookups(metrics, "bypass")) == (6, 6)


def test_redis_down_reads_the_database_then_replays_the_lost_invalidation(redis_url, metrics):
    proxy = TcpProxy(redis_url)
    now = [0.0]
    cache = make_cache(proxy.url, metrics, clock=lambda: now[0])
    try:
        load = Loader()
        cache.get_or_load("org", ITEMS, "i", load)
        proxy.cut()
        load.current = Item(id="i", version=2, name="v2")
        cache.invalidate("org", ITEMS, "i", version=2)  # fails: remembered
        assert cache.get_or_load("org", ITEMS, "i", load).name == "v2"  # paused: the database
        assert metrics.errors.labels("invalidate")._value.get() == 1
        assert lookups(metrics, "bypass") == 1
        proxy.restore()
        now[0] += PAUSE_SECONDS
        # the cached v1 is still in Redis: only the replayed invalidation keeps it out
        assert cache.get_or_load("org", ITEMS, "i", load).name == "v2"
        assert cache.get_or_load("org", ITEMS, "i", load).name == "v2"
        assert lookups(metrics, "hit") == 1
    finally:
        cache.close()
        proxy.cut()


# -- through the API -------------------------------------------------------------------


def api_metric(client: TestClient, kind: str, outcome: str) -> float:
    registry = client.app.state.ctx.metrics.registry
    value = registry.get_sample_value(
        "driftline_cache_lookups_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture
def cached_api(app_factory, redis_url, chdb_url) -> Iterator[Api]:
    app = app_factory(
        redis_url=redis_url, redis_key_prefix=f"test:{uuid.uuid4().hex}:", clickhouse_url=chdb_url
    )
    with TestClient(app) as client:
        yield Api(client)


def test_a_project_is_read_from_the_cache_and_every_write_is_seen_at_once(cached_api, db_url):
    api = cached_api
    owner = api.owner()
    created = api.client.post("/v1/projects", headers=owner, json={"name": "churn"}).json()
    path = f"/v1/projects/{created['id']}"
    first, second = api.client.get(path, headers=owner), api.client.get(path, headers=owner)
    assert first.json() == second.json() == created
    assert first.headers["etag"] == second.headers["etag"] == '"1"'
    assert api_metric(api.client, "project", "hit") == 1

    with sa.create_engine(db_url).begin() as connection:  # behind the API's back
        connection.execute(sa.text("UPDATE projects SET name = 'sneaky'"))
    assert api.client.get(path, headers=owner).json()["name"] == "churn"  # from the cache

    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(path, headers=other).status_code == 404

    changed = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"name": "churn2"})
    assert changed.status_code == 200, changed.text
    after = api.client.get(path, headers=owner)
    assert (after.json()["name"], after.headers["etag"]) == ("churn2", '"2"')
    assert after.json() == changed.json()
    stale = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"name": "x"})
    assert stale.status_code == 412
    assert api.client.get(path, headers=owner).headers["etag"] == '"2"'

    assert api.client.delete(path, headers=owner).status_code == 204
    assert api.client.get(path, headers=owner).status_code == 404
    assert api.client.get(path, headers=owner).status_code == 404


def test_a_monitor_is_read_from_the_cache_and_every_write_is_seen_at_once(cached_api):
    api = cached_api
    owner = api.owner()
    deployment = _deployment(api, owner)
    reference = _upload(api, owner, "loans", "train.csv", _csv(_frame())).json()
    body = {"name": "drift", "deployment_id": deployment["id"], "reference_id": reference["id"]}
    created = api.client.post("/v1/monitors", headers=owner, json=body | {"spec": SPEC}).json()
    path = f"/v1/monitors/{created['id']}"
    assert api.client.get(path, headers=owner).json() == created
    assert api.client.get(path, headers=owner).json() == created
    assert api_metric(api.client, "monitor", "hit") == 1

    spec = SPEC | {"min_samples": 7}
    changed = api.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"spec": spec})
    assert changed.status_code == 200, changed.text
    after = api.client.get(path, headers=owner)
    assert (after.json()["spec"]["min_samples"], after.headers["etag"]) == (7, '"2"')
    assert api.client.delete(path, headers=owner).status_code == 204
    assert api.client.get(path, headers=owner).status_code == 404


def test_the_api_stays_correct_while_redis_is_down_and_after_it_is_back(
    app_factory, redis_url, chdb_url
):
    proxy = TcpProxy(redis_url)
    app = app_factory(
        redis_url=proxy.url, redis_key_prefix=f"test:{uuid.uuid4().hex}:", clickhouse_url=chdb_url
    )
    try:
        with TestClient(app) as client:
            api = Api(client)
            owner = api.owner()
            created = client.post("/v1/projects", headers=owner, json={"name": "a"}).json()
            path = f"/v1/projects/{created['id']}"
            client.get(path, headers=owner)  # cached at version 1

            proxy.cut()
            changed = client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"name": "b"})
            assert changed.status_code == 200, changed.text
            during = client.get(path, headers=owner)
            assert (during.status_code, during.json()["name"]) == (200, "b")
            assert during.headers["etag"] == '"2"'
            registry = client.app.state.ctx.metrics.registry
            errors = registry.get_sample_value("driftline_cache_errors_total", {"operation": "get"})
            invalidations = registry.get_sample_value(
                "driftline_cache_errors_total", {"operation": "invalidate"}
            )
            assert (errors or 0) + (invalidations or 0) >= 1

            proxy.restore()
            time.sleep(PAUSE_SECONDS + 0.2)
            after = client.get(path, headers=owner)  # not the version 1 still in Redis
            assert (after.json()["name"], after.headers["etag"]) == ("b", '"2"')
            assert client.get(path, headers=owner).json()["name"] == "b"
            assert api_metric(client, "project", "hit") >= 1
    finally:
        proxy.cut()
