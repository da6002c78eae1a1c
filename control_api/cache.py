"""A cache of hot reads in Redis: get-or-load per organization, invalidated after writes.

Keys are ``<prefix>cache:v<FORMAT>:<organization>:<kind>:<id>``. The organization is the
caller's (from its token, or the worker's binding), never read from the request, and is
part of every key: one organization cannot reach another's entry, even by naming the
same id. Ids that are not plain (letters, digits, ``-``, ``_``; at most 64) bypass the
cache, so a path cannot forge a key.

An entry is ``<version>|<JSON>``: the value as its pydantic type serialises it, under the
resource's own version (the column that grows at each update and is also its ETag; 0 for
values never rewritten, such as a reference profile). ``FORMAT`` is in the key, so a
release that changes a cached shape reads none of the old entries.

Invalidation happens after the write's commit: the key becomes a tombstone ``!<version>``
(the version just written) or ``!d`` (deleted) for the TTL. Filling after a miss is one
Lua script that stores the value only if it is newer than what the key holds: an empty
key takes anything; a live entry only a higher version; a tombstone at least its version,
and nothing after a delete. A read that loaded the row just before a write committed
brings the old version and is refused, so it cannot put a stale value back; the next read
after a write loads the new row and caches it.

Redis errors never fail a request: the value comes from the database, the error is
counted in ``driftline_cache_errors_total`` and Redis is left alone for a few seconds (a
Redis that is down costs one timeout per pause, not one per request). An invalidation that
failed is kept in the process and replayed once Redis answers; one lost with its process
leaves a stale entry for at most the TTL (``DRIFTLINE_CACHE_TTL_SECONDS``).

Without Redis (the embedded default) :class:`NoCache` loads every time: correct with any
number of processes, and the embedded SQLite database is as near as a cache would be.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import redis
from prometheus_client import CollectorRegistry, Counter
from pydantic import TypeAdapter, ValidationError

from driftline.settings import Settings

__all__ = [
    "Cache",
    "CacheMetrics",
    "Cached",
    "NoCache",
    "Pause",
    "RedisCache",
    "build_cache",
    "cache_key",
    "entry_json",
]

T = TypeVar("T")
FORMAT = 1
PAUSE_SECONDS = 5.0  # Redis is not called for this long after an error
TIMEOUT_SECONDS = 0.5  # connect and read timeout of the cache's Redis client
MAX_PENDING = 10_000  # failed invalidations remembered for replay
_PLAIN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_log = logging.getLogger("driftline.cache")

_FILL = """
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur == '!d' then return 0 end
  local held = tonumber(string.match(cur, '^!?(%d+)'))
  local new = tonumber(ARGV[1])
  if held then
    if string.sub(cur, 1, 1) == '!' then
      if new < held then return 0 end
    elseif new <= held then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

_INVALIDATE = """
local cur = redis.call('GET', KEYS[1])
if cur == '!d' then return 0 end
if cur and ARGV[1] ~= 'd' then
  local held = tonumber(string.match(cur, '^!?(%d+)'))
  if held and held > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], '!' .. ARGV[1], 'PX', ARGV[2])
return 1
"""


def entry_json(entry: bytes) -> tuple[int, bytes] | None:
    """The version and JSON of a stored entry, or ``None`` for a tombstone.

    >>> entry_json(b'3|{"id":"p"}'), entry_json(b"!4")
    ((3, b'{"id":"p"}'), None)
    """
    if entry.startswith(b"!"):
        return None
    version, _, body = entry.partition(b"|")
    return int(version), body


def cache_key(prefix: str, organization: str, kind: str, key: str) -> str | None:
    """``<prefix><organization>:<kind>:<key>``, or ``None`` when an id is not plain.

    >>> cache_key("dl:cache:v1:", "org-1", "project", "p-9")
    'dl:cache:v1:org-1:project:p-9'
    >>> cache_key("dl:cache:v1:", "org-1", "project", "a:b") is None
    True
    """
    if not (_PLAIN.match(organization) and _PLAIN.match(key)):
        return None
    return f"{prefix}{organization}:{kind}:{key}"


@dataclass(frozen=True)
class Cached(Generic[T]):
    """How one kind of value is cached: its name in keys, its JSON type, its version."""

    kind: str
    adapter: TypeAdapter[T]
    version: Callable[[T], int]


class CacheMetrics:
    """Lookups by kind and outcome, and failed Redis calls by operation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lookups = Counter(
            "driftline_cache_lookups",
            "Cache lookups by kind and outcome: hit, miss, stale (an older version than the "
            "reader needs), bypass (no Redis call: paused after an error, or an id that is "
            "not plain) or error (Redis failed; the database answered).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "driftline_cache_errors",
            "Redis calls that failed, by operation (get, fill, invalidate, publish, "
            "subscribe); the database answered instead.",
            ["operation"],
            registry=registry,
        )


class Pause:
    """Redis left alone for ``PAUSE_SECONDS`` after an error, which is counted and logged once.

    >>> now = [0.0]
    >>> pause = Pause(CacheMetrics(CollectorRegistry()), clock=lambda: now[0])
    >>> pause.failed("get", redis.ConnectionError("refused")); pause.active
    True
    >>> now[0] = PAUSE_SECONDS; pause.active
    False
    """

    def __init__(self, metrics: CacheMetrics, *, clock: Callable[[], float]) -> None:
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._until = 0.0

    @property
    def active(self) -> bool:
        """Whether Redis is being left alone now."""
        return self._clock() < self._until

    def failed(self, operation: str, error: redis.RedisError) -> None:
        """Count the failed ``operation`` and pause (log when a pause starts)."""
        self._metrics.errors.labels(operation).inc()
        with self._lock:
            first = self._clock() >= self._until
            self._until = self._clock() + PAUSE_SECONDS
        if first:
            _log.warning(
                "cache: Redis failed (%s: %s); reading the database for %.0f s",
                operation,
                error,
                PAUSE_SECONDS,
            )


class Cache(Protocol):
    """Get-or-load by organization, and invalidation after a committed write."""

    def key(self, organization: str, kind: str, key: str) -> str | None:
        """The Redis key of an entry, or ``None`` when there is none (no Redis, id not plain)."""
        ...

    @property
    def pending(self) -> bool:
        """Whether failed invalidations wait for replay (Redis may hold stale entries)."""
        ...

    def get_or_load(
        self,
        organization: str,
        cached: Cached[T],
        key: str,
        load: Callable[[], T],
        *,
        min_version: int = 0,
    ) -> T:
        """The cached value, or ``load()`` cached (one older than ``min_version`` is a miss)."""
        ...

    def invalidate(
        self, organization: str, cached: Cached[T], key: str, *, version: int | None
    ) -> None:
        """After a commit: ``version`` was written, or (``None``) the value was deleted."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


class NoCache:
    """No cache: every read loads (the embedded default, without Redis)."""

    def key(self, organization: str, kind: str, key: str) -> str | None:
        """No key: nothing is stored."""
        return None

    @property
    def pending(self) -> bool:
        """Nothing to replay."""
        return False

    def get_or_load(
        self,
        organization: str,
        cached: Cached[T],
        key: str,
        load: Callable[[], T],
        *,
        min_version: int = 0,
    ) -> T:
        """``load()``."""
        return load()

    def invalidate(
        self, organization: str, cached: Cached[T], key: str, *, version: int | None
    ) -> None:
        """Nothing to invalidate."""

    def close(self) -> None:
        """Nothing to release."""


class RedisCache:
    """The cache on Redis (module docstring); ``clock`` is injectable for tests."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        metrics: CacheMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}cache:v{FORMAT}:"
        self._ttl_ms = ttl_seconds * 1000
        self._metrics = metrics
        self._fill = client.register_script(_FILL)
        self._invalidate = client.register_script(_INVALIDATE)
        self._lock = threading.Lock()
        self._pause = Pause(metrics, clock=clock)
        self._pending: dict[str, str] = {}  # key -> version or "d", to replay

    def key(self, organization: str, kind: str, key: str) -> str | None:
        """The Redis key of ``key`` of ``organization`` (:func:`cache_key`)."""
        return cache_key(self._prefix, organization, kind, key)

    @property
    def pending(self) -> bool:
        """Whether failed invalidations wait for replay (by the next :meth:`get_or_load`)."""
        return bool(self._pending)

    def get_or_load(
        self,
        organization: str,
        cached: Cached[T],
        key: str,
        load: Callable[[], T],
        *,
        min_version: int = 0,
    ) -> T:
        """The cached value, or ``load()`` (then cached unless a newer write is known).

        The event loop reads the same entries with :meth:`control_api.fastpath.FastReads.get`
        and :func:`entry_json`.
        """
        name = self.key(organization, cached.kind, key)
        if name is None or not self._available():
            self._metrics.lookups.labels(cached.kind, "bypass").inc()
            return load()
        try:
            entry = self._client.get(name)
        except redis.RedisError as error:
            self._failed("get", error)
            self._metrics.lookups.labels(cached.kind, "error").inc()
            return load()
        found = self._decode(cached, entry) if isinstance(entry, bytes) else None
        if found is not None and cached.version(found) >= min_version:
            self._metrics.lookups.labels(cached.kind, "hit").inc()
            return found
        self._metrics.lookups.labels(cached.kind, "miss" if found is None else "stale").inc()
        value = load()
        version = cached.version(value)
        entry_bytes = f"{version}|".encode() + cached.adapter.dump_json(value)
        try:
            self._fill(keys=[name], args=[version, entry_bytes, self._ttl_ms])
        except redis.RedisError as error:
            self._failed("fill", error)
        return value

    def invalidate(
        self, organization: str, cached: Cached[T], key: str, *, version: int | None
    ) -> None:
        """Tombstone the key for the TTL; kept for replay when Redis fails."""
        name = self.key(organization, cached.kind, key)
        if name is None:
            return
        written = "d" if version is None else str(version)
        if not self._available() or not self._send_invalidation(name, written):
            self._remember(name, written)

    def close(self) -> None:
        """Close the Redis connections."""
        self._client.close()

    def _decode(self, cached: Cached[T], entry: bytes) -> T | None:
        if entry.startswith(b"!"):
            return None
        _, _, body = entry.partition(b"|")
        try:
            return cached.adapter.validate_json(body)
        except ValidationError:
            _log.warning("cache: an entry of kind %s does not parse; reloading", cached.kind)
            return None

    def _send_invalidation(self, name: str, written: str) -> bool:
        try:
            self._invalidate(keys=[name], args=[written, self._ttl_ms])
        except redis.RedisError as error:
            self._failed("invalidate", error)
            return False
        return True

    def _remember(self, name: str, written: str) -> None:
        with self._lock:
            if len(self._pending) >= MAX_PENDING and name not in self._pending:
                _log.error("cache: too many invalidations to replay; %s may be stale", name)
                return
            held = self._pending.get(name)
            if held != "d" and (held is None or written == "d" or int(written) > int(held)):
                self._pending[name] = written

    def _available(self) -> bool:
        """Not paused; replays the failed invalidations first once Redis is back."""
        with self._lock:
            if self._pause.active:
                return False
            pending, self._pending = self._pending, {}
        while pending:
            name, written = next(iter(pending.items()))
            if not self._send_invalidation(name, written):
                for left in pending.items():
                    self._remember(*left)
                return False
            del pending[name]
        return True

    def _failed(self, operation: str, error: redis.RedisError) -> None:
        self._pause.failed(operation, error)


def short_timeout_client(url: str) -> redis.Redis:
    """A Redis client with ``TIMEOUT_SECONDS`` connect and read timeouts.

    A Redis that hangs (rather than refusing connections) costs a call that long, then the
    caller's fallback answers. The cache, the rate limiter and the monitor-change publisher
    each hold one.
    """
    return redis.Redis.from_url(
        url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )


def build_cache(settings: Settings, metrics: CacheMetrics) -> Cache:
    """The Redis cache when ``redis_url`` is set and the TTL is positive; else :class:`NoCache`.

    The cache has its own client with short timeouts, so a Redis that hangs delays a
    read by at most ``TIMEOUT_SECONDS`` before the database answers.
    """
    if not settings.redis_url or settings.cache_ttl_seconds <= 0:
        return NoCache()
    client = short_timeout_client(settings.redis_url)
    return RedisCache(
        client,
        prefix=settings.redis_key_prefix,
        ttl_seconds=settings.cache_ttl_seconds,
        metrics=metrics,
    )
