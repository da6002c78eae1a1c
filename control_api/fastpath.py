"""The hot reads on the event loop: a caller's session, its rate limit and cached JSON, in Redis.

Every authenticated request needs its caller (is the login session live, what is the member's
role) and a token from its rate-limit bucket, and the hottest reads then want a cached body.
Here they are asked of Redis from the event loop (``redis.asyncio``; the commands of a turn
of the loop go as one pipeline, :mod:`control_api.redis_batches`), so a request served from
Redis never hops to a worker thread:

* :meth:`FastReads.read`: one Lua script, one round trip: the organization's generation of a
  kind (created when missing), the entry if it was stored under that generation, and when
  asked a token from a bucket (:data:`control_api.ratelimit.LUA_TOKEN_BUCKET_FUNCTION`, the
  same bucket, key and algorithm as :class:`~control_api.ratelimit.RedisRateLimiter`).
* :meth:`FastReads.fill`: after a miss loaded from the database, stores the entry only if the
  generation is still the one read before the load, so a read that raced a committed write
  cannot put the old rows back (:mod:`control_api.generations` moves generations on).
* :meth:`FastReads.get`: one GET of a versioned entry of :mod:`control_api.cache` (its
  version and JSON; a tombstone or a missing key is a miss, loaded by the cache's own path).

An entry is ``<generation>|<payload>`` and lives ``DRIFTLINE_CACHE_TTL_SECONDS`` (0: nothing is
stored; the buckets still work). Redis errors never fail a request: the read answers without
Redis (the caller loads from the database and takes its token from an in-process bucket),
the error is counted and Redis is left alone for ``PAUSE_SECONDS``. Generation bumps that
failed are replayed before the next read; until they go through, reads bypass Redis.

Built in the application's lifespan, on the loop that serves it: a ``redis.asyncio``
connection belongs to the loop that opened it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import redis.asyncio
from starlette.concurrency import run_in_threadpool

from control_api.cache import TIMEOUT_SECONDS, CacheMetrics, Pause, entry_json
from control_api.generations import Generations, new_token
from control_api.ratelimit import LUA_TOKEN_BUCKET_FUNCTION, Decision, MemoryRateLimiter, decision
from control_api.redis_batches import Batches, Script
from driftline.settings import Settings

__all__ = ["Bucket", "FastReads", "Lookup"]


# KEYS: generation, entry[, bucket]; ARGV: a fresh generation (used when none is set)[, rate,
# burst]. Returns {generation, payload or nil[, allowed, wait]}.
_READ = Script(
    LUA_TOKEN_BUCKET_FUNCTION
    + """
local gen = redis.call('GET', KEYS[1])
if not gen then
  gen = ARGV[1]
  redis.call('SET', KEYS[1], gen)
end
local entry = redis.call('GET', KEYS[2])
local payload = false
if entry and string.sub(entry, 1, #gen + 1) == gen .. '|' then
  payload = string.sub(entry, #gen + 2)
end
if KEYS[3] then
  local taken = take_token(KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]))
  return {gen, payload, taken[1], taken[2]}
end
return {gen, payload}
"""
)

# KEYS: generation, entry; ARGV: the generation read before the load, payload, TTL in ms
_FILL = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
""")


@dataclass(frozen=True)
class Bucket:
    """A rate-limit bucket to take a token from: its key (no prefix), refill rate and size."""

    key: str
    rate: float
    burst: int


@dataclass(frozen=True)
class Lookup:
    """What a read found.

    ``generation`` is ``None`` when Redis was not asked or failed (nothing to fill then);
    ``payload`` is the entry stored under the current generation, if any; ``decision`` is the
    bucket's answer (from the in-process bucket without Redis), when a bucket was given.
    """

    generation: bytes | None
    payload: bytes | None
    decision: Decision | None


class FastReads:
    """Reads and fills of generation-checked entries, and buckets, on one event loop."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        generations: Generations,
        bucket_prefix: str,
        ttl_seconds: int,
        metrics: CacheMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._generations = generations
        self._bucket_prefix = bucket_prefix
        self._ttl_ms = ttl_seconds * 1000
        self._metrics = metrics
        self._batches = Batches(client)
        self._pause = Pause(metrics, clock=clock)
        self.limiter = MemoryRateLimiter()  # the buckets while Redis fails

    @classmethod
    def connect(cls, settings: Settings, generations: Generations) -> FastReads:
        """On ``settings.redis_url``, with the cache's short timeouts and metrics."""
        client = redis.asyncio.Redis.from_url(
            settings.redis_url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        return cls(
            client,
            generations=generations,
            bucket_prefix=settings.redis_key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            metrics=generations.metrics,
        )

    async def read(
        self, organization: str, kind: str, key: str, *, bucket: Bucket | None = None
    ) -> Lookup:
        """The entry ``key`` of ``kind`` in ``organization``, and a token from ``bucket``."""
        gen_key = self._generations.key(organization, kind)
        entry_key = self._generations.entry_key(organization, kind, key)
        if gen_key is None or entry_key is None or not await self._available():
            self._count(kind, "bypass")
            return self._without_redis(bucket)
        try:
            if bucket is None:
                reply = await self._batches.run(_READ, [gen_key, entry_key], [new_token()])
            else:
                reply = await self._batches.run(
                    _READ,
                    [gen_key, entry_key, self._bucket_prefix + bucket.key],
                    [new_token(), bucket.rate, bucket.burst],
                )
        except redis.RedisError as error:
            self._failed("read", error)
            self._count(kind, "error")
            return self._without_redis(bucket)
        payload = reply[1]
        self._count(kind, "miss" if payload is None else "hit")
        return Lookup(
            generation=reply[0],
            payload=payload,
            decision=None if bucket is None else decision(reply[2], reply[3]),
        )

    async def fill(
        self, organization: str, kind: str, key: str, lookup: Lookup, payload: bytes
    ) -> None:
        """Store ``payload`` if the generation ``lookup`` read is still current."""
        gen_key = self._generations.key(organization, kind)
        entry_key = self._generations.entry_key(organization, kind, key)
        if lookup.generation is None or gen_key is None or entry_key is None or not self._ttl_ms:
            return
        try:
            await self._batches.run(
                _FILL, [gen_key, entry_key], [lookup.generation, payload, self._ttl_ms]
            )
        except redis.RedisError as error:
            self._failed("fill", error)

    async def get_or_load(
        self, organization: str, kind: str, key: str, load: Callable[[], bytes]
    ) -> bytes:
        """The entry, or ``load()`` (run on a worker thread: it reads the database) stored."""
        lookup = await self.read(organization, kind, key)
        if lookup.payload is not None:
            return lookup.payload
        payload = await run_in_threadpool(load)
        await self.fill(organization, kind, key, lookup, payload)
        return payload

    async def get(self, name: str, kind: str) -> tuple[int, bytes] | None:
        """The version and JSON of the :mod:`control_api.cache` entry ``name``, on a hit."""
        if not await self._available():
            self._count(kind, "bypass")
            return None
        try:
            value = await self._batches.command("GET", name)
        except redis.RedisError as error:
            self._failed("get", error)
            self._count(kind, "error")
            return None
        found = entry_json(value) if isinstance(value, bytes) else None
        if found is not None:  # a miss is counted by the cache, which loads it
            self._count(kind, "hit")
        return found

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    def _without_redis(self, bucket: Bucket | None) -> Lookup:
        taken = None
        if bucket is not None:
            taken = self.limiter.hit(bucket.key, rate=bucket.rate, burst=bucket.burst)
        return Lookup(generation=None, payload=None, decision=taken)

    async def _available(self) -> bool:
        """Not paused, and no failed generation bump left to replay."""
        if self._pause.active:
            return False
        if not self._generations.pending:
            return True
        names = self._generations.take_pending()
        for index, name in enumerate(names):
            try:
                await self._batches.command("SET", name, new_token())
            except redis.RedisError as error:
                for left in names[index:]:
                    self._generations.remember(left)
                self._failed("bump", error)
                return False
        return True

    def _count(self, kind: str, outcome: str) -> None:
        self._metrics.lookups.labels(kind, outcome).inc()

    def _failed(self, operation: str, error: redis.RedisError) -> None:
        self._pause.failed(operation, error)
