"""The hot reads answered from Redis on the event loop (control_api/fastpath.py, generations.py).

First the generation-checked entries alone, on the real Redis: a fill that raced a committed
write is refused, a bump outdates every entry of its kind, an evicted generation never turns an
old entry back into a hit, scripts Redis forgot are loaded again, and requests of one turn of
the event loop share one pipeline and still each get their own reply. Then through the API, on
SQLite and PostgreSQL, with two application instances sharing the database and Redis as two
replicas do: reads answered from Redis (counted as hits) see every write made through the other
instance at once (a page of projects, a revoked session, a changed role, a removed member), and
a session revoked while Redis is down is still refused once Redis is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from control_api.cache import PAUSE_SECONDS, CacheMetrics
from control_api.fastpath import Bucket, FastReads
from control_api.generations import Generations
from control_api.redis_batches import Batches
from tests.control_api.conftest import Api
from tests.control_api.tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis


def test_generation_checked_entries_on_redis(redis_url):
    metrics = CacheMetrics(CollectorRegistry())
    prefix = f"test:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(redis_url)
    generations = Generations(client, prefix=prefix, metrics=metrics)

    async def scenario() -> None:
        fast = FastReads(
            redis.asyncio.Redis.from_url(redis_url),
            generations=generations,
            bucket_prefix=prefix,
            ttl_seconds=60,
            metrics=metrics,
        )
        try:
            raced = await fast.read("org-a", "kind", "k")  # a miss; the reader loads...
            assert (raced.generation is not None, raced.payload) == (True, None)
            generations.bump("org-a", "kind")  # ...while a write commits
            await fast.fill("org-a", "kind", "k", raced, b"old rows")
            assert (await fast.read("org-a", "kind", "k")).payload is None  # refused

            fresh = await fast.read("org-a", "kind", "k")
            await fast.fill("org-a", "kind", "k", fresh, b"new rows")
            assert (await fast.read("org-a", "kind", "k")).payload == b"new rows"
            assert (await fast.read("org-b", "kind", "k")).payload is None  # per organization

            generations.bump("org-a", "kind")  # any write of the kind outdates the entry
            assert (await fast.read("org-a", "kind", "k")).payload is None

            kept = await fast.read("org-a", "kind", "k")
            await fast.fill("org-a", "kind", "k", kept, b"v")
            gen_key = generations.key("org-a", "kind")
            assert gen_key is not None
            client.delete(gen_key)  # evicted: the next read makes a new generation
            assert (await fast.read("org-a", "kind", "k")).payload is None

            client.script_flush()  # Redis restarted: the scripts are loaded again
            assert (await fast.read("org-a", "kind", "k")).generation is not None

            bucket = Bucket("rl:user:u", rate=0.01, burst=2)
            answers = [await fast.read("org-a", "kind", "k", bucket=bucket) for _ in range(3)]
            allowed = [a.decision.allowed for a in answers if a.decision is not None]
            assert allowed == [True, True, False]
            assert await fast.read("org-a", "kind", "not plain:key") == (
                await fast.read("org-a", "kind", "x" * 65)
            )  # neither reaches Redis
        finally:
            await fast.aclose()

    asyncio.run(scenario())
    assert metrics.lookups.labels("kind", "bypass")._value.get() == 2
    client.close()


def test_commands_of_one_turn_share_a_pipeline_and_each_gets_its_own_reply(redis_url):
    prefix = f"test:{uuid.uuid4().hex}:"

    async def scenario() -> list[object]:
        client = redis.asyncio.Redis.from_url(redis_url)
        batches = Batches(client)
        try:
            await batches.command("SET", f"{prefix}a", "1")
            sent: list[int] = []
            original = client.pipeline

            def counting(**kwargs: object) -> object:
                sent.append(1)
                return original(**kwargs)  # type: ignore[arg-type]

            client.pipeline = counting  # type: ignore[method-assign]
            replies = await asyncio.gather(
                batches.command("GET", f"{prefix}a"),
                batches.command("GET", f"{prefix}missing"),
                batches.command("INCR", f"{prefix}a"),
                batches.command("HGET", f"{prefix}a", "f"),  # a wrong type: this one fails
                return_exceptions=True,
            )
            assert len(sent) == 1
            return replies
        finally:
            await client.aclose()

    got, missing, incremented, failed = asyncio.run(scenario())
    assert (got, missing, incremented) == (b"1", None, 2)
    assert isinstance(failed, redis.ResponseError)


def _lookups(api: Api, kind: str, outcome: str) -> float:
    registry = api.client.app.state.ctx.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(
        "driftline_cache_lookups_total", {"kind": kind, "outcome": outcome}
    )
    return float(value or 0.0)


@pytest.fixture
def replicas(app_factory, redis_url) -> Iterator[tuple[Api, Api]]:
    """Two instances of the API on the same database and Redis."""
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = (
        app_factory(redis_url=redis_url, redis_key_prefix=prefix, engine_embedded=False)
        for _ in range(2)
    )
    with TestClient(first) as a, TestClient(second) as b:
        yield Api(a), Api(b)


def _names(api: Api, headers: dict[str, str]) -> list[str]:
    response = api.client.get("/v1/projects?limit=50", headers=headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_pages_and_projects_cached_by_one_replica_show_writes_made_through_another(replicas):
    a, b = replicas
    owner = a.owner()
    for name in ("p1", "p2"):
        assert a.client.post("/v1/projects", headers=owner, json={"name": name}).status_code == 201
    first = a.client.get("/v1/projects?limit=50", headers=owner)
    again = a.client.get("/v1/projects?limit=50", headers=owner)
    assert again.content == first.content
    assert _lookups(a, "project-pages", "hit") == 1
    one = a.client.get("/v1/projects?limit=1", headers=owner).json()  # its own entry
    assert [p["name"] for p in one["items"]] == ["p1"]
    assert one["next_cursor"]
    rest = a.client.get(f"/v1/projects?limit=1&cursor={one['next_cursor']}", headers=owner)
    assert [p["name"] for p in rest.json()["items"]] == ["p2"]

    created = b.client.post("/v1/projects", headers=owner, json={"name": "p3"}).json()
    assert _names(a, owner) == ["p1", "p2", "p3"]
    path = f"/v1/projects/{created['id']}"
    assert a.client.get(path, headers=owner).headers["etag"] == '"1"'
    assert a.client.get(path, headers=owner).json()["name"] == "p3"  # a hit
    assert _lookups(a, "project", "hit") >= 1

    renamed = b.client.patch(path, headers=owner | {"If-Match": '"1"'}, json={"name": "p3b"})
    assert renamed.status_code == 200, renamed.text
    assert _names(a, owner) == ["p1", "p2", "p3b"]
    seen = a.client.get(path, headers=owner)
    assert (seen.json()["name"], seen.headers["etag"]) == ("p3b", '"2"')

    assert b.client.delete(path, headers=owner).status_code == 204
    assert _names(a, owner) == ["p1", "p2"]
    gone = a.client.get(path, headers=owner)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"

    stranger = b.owner("owner@other.example.com", "Other")
    assert _names(a, stranger) == []  # another organization's page, never acme's
    assert (
        a.client.get(f"/v1/projects/{one['items'][0]['id']}", headers=stranger).json()["detail"]
        == gone.json()["detail"]
    )


def test_a_revoked_session_is_refused_at_once_by_every_replica(replicas):
    a, b = replicas
    owner = a.owner()
    second = a.bearer(a.login("owner@acme.example.com")["access_token"])
    for _ in range(2):
        assert a.client.get("/v1/projects", headers=owner).status_code == 200
    assert _lookups(a, "auth", "hit") >= 1  # the caller came from Redis

    assert b.client.post("/v1/auth/logout", headers=owner).status_code == 204
    refused = a.client.get("/v1/projects", headers=owner)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert a.client.get("/v1/projects", headers=second).status_code == 200  # its own session

    assert b.client.delete("/v1/auth/sessions", headers=second).status_code == 204
    assert a.client.get("/v1/projects", headers=second).status_code == 401


def test_a_changed_role_and_a_removed_member_take_effect_at_once_on_every_replica(replicas):
    a, b = replicas
    owner = a.owner()
    editor = a.member(owner, "editor")
    user_id = a.client.get("/v1/me", headers=editor).json()["id"]
    for name in ("e1", "e2"):  # the second write's caller came from Redis
        assert a.client.post("/v1/projects", headers=editor, json={"name": name}).status_code == 201
    assert _lookups(a, "auth", "hit") >= 1

    demoted = b.client.patch(f"/v1/users/{user_id}", headers=owner, json={"role": "viewer"})
    assert demoted.status_code == 200, demoted.text
    assert a.client.post("/v1/projects", headers=editor, json={"name": "e3"}).status_code == 403
    assert a.client.get("/v1/projects", headers=editor).status_code == 200  # a viewer reads

    assert b.client.delete(f"/v1/users/{user_id}", headers=owner).status_code == 204
    assert a.client.get("/v1/projects", headers=editor).status_code == 401


def test_a_session_revoked_while_redis_is_down_is_refused_when_it_is_back(app_factory, redis_url):
    proxy = TcpProxy(redis_url)
    app = app_factory(
        redis_url=proxy.url, redis_key_prefix=f"test:{uuid.uuid4().hex}:", engine_embedded=False
    )
    try:
        with TestClient(app) as client:
            api = Api(client)
            owner = api.owner()
            second = api.bearer(api.login("owner@acme.example.com")["access_token"])
            for _ in range(2):  # cached under the current generation
                assert client.get("/v1/projects", headers=owner).status_code == 200

            proxy.cut()
            assert client.post("/v1/auth/logout", headers=owner).status_code == 204
            assert client.get("/v1/projects", headers=owner).status_code == 401  # the database
            assert client.get("/v1/projects", headers=second).status_code == 200

            proxy.restore()
            time.sleep(PAUSE_SECONDS + 0.2)
            # the entry stored before the logout is still in Redis: the lost bump is replayed
            # before Redis is read again, so it is not served
            assert client.get("/v1/projects", headers=owner).status_code == 401
            assert client.get("/v1/projects", headers=second).status_code == 200
            assert _lookups(api, "auth", "hit") >= 1
    finally:
        proxy.cut()


def test_permissions_are_checked_the_same_when_the_caller_comes_from_redis(replicas):
    a, _ = replicas
    owner = a.owner()
    viewer = a.member(owner, "viewer")
    _, reader_key = a.api_key(owner, ["read"])
    _, ingest_key = a.api_key(owner, ["ingest"])
    key_headers = a.bearer(reader_key)
    for _ in range(2):  # the second answer's caller comes from Redis (members) or the database
        assert a.client.get("/v1/projects", headers=viewer).status_code == 200
        assert a.client.get("/v1/projects", headers=key_headers).status_code == 200
        denied = a.client.post("/v1/projects", headers=viewer, json={"name": "v"})
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
        assert (
            a.client.post("/v1/projects", headers=key_headers, json={"name": "k"}).status_code
            == 403
        )
        assert a.client.get("/v1/projects", headers=a.bearer(ingest_key)).status_code == 403
        assert a.client.get("/v1/projects").status_code == 401
        assert a.client.get("/v1/projects", headers=a.bearer("not-a-token")).status_code == 401
    assert _lookups(a, "auth", "hit") >= 1
