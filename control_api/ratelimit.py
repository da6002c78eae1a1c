"""Token-bucket rate limits: atomic on Redis (one Lua script), or in the process.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a request
takes one token or is refused with the seconds until one is back (``Retry-After``). On
Redis the read-refill-take-write runs as one script, so concurrent API replicas share a
bucket without races, and the clock is Redis's own (``TIME``), so replicas' clocks do not
matter. When Redis fails, the limiter falls back to its in-process buckets rather than
refusing or waving through every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

__all__ = [
    "LUA_TOKEN_BUCKET_FUNCTION",
    "Decision",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "decision",
]

_log = logging.getLogger("driftline.api.ratelimit")

# the bucket as a Lua function, so another script (control_api.fastpath) can take a token in
# the same round trip as its own reads; returns {allowed (0/1), seconds to wait as a string}
LUA_TOKEN_BUCKET_FUNCTION = """
local function take_token(key, rate, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  local allowed = 0
  local wait = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  else
    wait = (1 - tokens) / rate
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  return {allowed, tostring(wait)}
end
"""
_LUA_TOKEN_BUCKET = (
    LUA_TOKEN_BUCKET_FUNCTION + "return take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"
)


@dataclass(frozen=True)
class Decision:
    """Whether the request may go on, and otherwise the seconds until it may."""

    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    """Takes one token from the bucket ``key`` (``rate`` per second, ``burst`` at most)."""

    def hit(self, key: str, *, rate: float, burst: int) -> Decision:
        """Take a token from ``key``'s bucket."""
        ...


class MemoryRateLimiter:
    """Buckets in this process (the embedded default); ``clock`` is injectable for tests.

    >>> now = [0.0]
    >>> limiter = MemoryRateLimiter(clock=lambda: now[0])
    >>> [limiter.hit("k", rate=1.0, burst=2).allowed for _ in range(3)]
    [True, True, False]
    >>> now[0] = 1.0
    >>> limiter.hit("k", rate=1.0, burst=2).allowed
    True
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, rate: float, burst: int) -> Decision:
        """Take a token from ``key``'s bucket."""
        with self._lock:
            now = self._clock()
            tokens, stamp = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, now - stamp) * rate)
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory: forget every bucket, start afresh
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return Decision(True)
            self._buckets[key] = (tokens, now)
            return Decision(False, (1.0 - tokens) / rate)


class RedisRateLimiter:
    """Buckets in Redis under ``prefix``; falls back to ``fallback`` when Redis fails."""

    def __init__(
        self, client: redis.Redis, *, prefix: str, fallback: RateLimiter | None = None
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_LUA_TOKEN_BUCKET)
        self._fallback = fallback or MemoryRateLimiter()

    def hit(self, key: str, *, rate: float, burst: int) -> Decision:
        """Take a token from ``key``'s bucket, atomically on Redis."""
        try:
            allowed, wait = self._script(keys=[self._prefix + key], args=[rate, burst])
        except redis.RedisError as error:
            _log.warning("rate limiter: Redis failed, using in-process buckets: %s", error)
            return self._fallback.hit(key, rate=rate, burst=burst)
        return decision(allowed, wait)


def decision(allowed: int | bytes, wait: bytes | str) -> Decision:
    """The :class:`Decision` of the Lua bucket's reply ``{allowed, wait}``.

    >>> decision(0, b"0.25")
    Decision(allowed=False, retry_after=0.25)
    """
    seconds = float(wait)
    return Decision(bool(int(allowed)), seconds if math.isfinite(seconds) else 1.0)
