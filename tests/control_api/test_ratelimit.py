import threading
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from control_api.ratelimit import MemoryRateLimiter, RedisRateLimiter


def test_memory_bucket_refills_with_the_clock():
    now = [100.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert [limiter.hit("a", rate=2.0, burst=3).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    refused = limiter.hit("a", rate=2.0, burst=3)
    assert refused.retry_after == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.hit("a", rate=2.0, burst=3).allowed
    assert limiter.hit("b", rate=2.0, burst=3).allowed  # buckets are per key


def test_memory_limiter_forgets_when_full():
    limiter = MemoryRateLimiter(clock=lambda: 0.0, max_keys=2)
    for key in ("a", "b", "c"):
        assert limiter.hit(key, rate=1.0, burst=1).allowed
    assert limiter.hit("c", rate=1.0, burst=1).allowed is False


@pytest.mark.redis
def test_redis_bucket_is_atomic_across_threads(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, prefix=f"test:{uuid.uuid4().hex}:")
    results: list[bool] = []
    lock = threading.Lock()

    def worker():
        for _ in range(25):
            allowed = limiter.hit("k", rate=0.001, burst=40).allowed
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 40
    refused = limiter.hit("k", rate=0.001, burst=40)
    assert not refused.allowed
    assert refused.retry_after > 100
    client.close()


def test_redis_failure_falls_back_to_the_process():
    client = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    fallback = MemoryRateLimiter(clock=lambda: 0.0)
    limiter = RedisRateLimiter(client, prefix="x:", fallback=fallback)
    assert limiter.hit("k", rate=1.0, burst=1).allowed
    assert not limiter.hit("k", rate=1.0, burst=1).allowed
    client.close()


def test_a_redis_that_never_answers_costs_one_timeout_not_a_hang():
    """A server that accepts connections and then says nothing (a hung Redis)."""
    import socket
    import time

    from control_api.cache import TIMEOUT_SECONDS, short_timeout_client

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    client = short_timeout_client(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    limiter = RedisRateLimiter(client, prefix="x:", fallback=MemoryRateLimiter(clock=lambda: 0.0))
    began = time.monotonic()
    assert limiter.hit("k", rate=1.0, burst=1).allowed
    assert time.monotonic() - began < 4 * TIMEOUT_SECONDS + 1.0
    client.close()
    server.close()


@pytest.mark.redis
def test_api_answers_429_with_retry_after_on_redis(app_factory, redis_url, chdb_url):
    app = app_factory(
        redis_url=redis_url,
        redis_key_prefix=f"test:{uuid.uuid4().hex}:",
        rate_limit_per_second=0.01,
        rate_limit_burst=3,
        clickhouse_url=chdb_url,
    )
    with TestClient(app) as client:
        email, password = "owner@acme.example.com", "correct horse battery"
        body = {"org_name": "Acme", "email": email, "password": password}
        assert client.post("/v1/auth/signup", json=body).status_code == 201
        token = client.post("/v1/auth/token", data={"username": email, "password": password})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        codes = [client.get("/v1/me", headers=headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/v1/me", headers=headers)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        assert client.get("/readyz").json()["checks"]["redis"] == "ok"
