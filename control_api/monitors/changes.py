"""Monitor changes reach every running engine within seconds: notify, subscribe, poll.

:class:`MonitorChanges` is the writer's side. After a monitor is created, changed or
deleted (after the commit), it calls this process's listeners at once (the embedded
engine's :meth:`~engine.embedded.EngineHub.reload`: the in-process notification, all there
is without Redis) and publishes ``{"org": <organization id>}`` on the Redis channel
``<prefix>monitors:changed`` for the other processes: API replicas hosting an engine, and
Kafka workers.

:class:`MonitorWatch` is an engine's side: one daemon thread that subscribes to the
channel (reconnecting with a growing pause up to 5 s when Redis fails) and, every
``poll_seconds``, polls. Both lead to the same check: for each organization the engine
runs, compare the monitors' ``id -> version`` in the control database with the one its
monitors were built from (:meth:`MonitorService.changed`) and call ``on_change`` when they
differ. A message is thus only a hint, and repeated or stale ones cost one small query; a
message lost (Redis down, the subscriber reconnecting) is caught by the check made at each
(re)subscription, and anything else by the poll. Errors in a check are logged and the
thread goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from control_api.cache import CacheMetrics, short_timeout_client
from control_api.monitors.source import MonitorService
from driftline.settings import Settings

__all__ = ["MonitorChanges", "MonitorWatch", "channel_name"]

_log = logging.getLogger("driftline.monitors")
MAX_BACKOFF_SECONDS = 5.0
SUBSCRIBE_WAIT_SECONDS = 5.0  # longest wait for Redis to confirm a subscription


def channel_name(prefix: str) -> str:
    """The Redis channel of monitor changes under the key prefix.

    >>> channel_name("driftline:")
    'driftline:monitors:changed'
    """
    return f"{prefix}monitors:changed"


class MonitorChanges:
    """Tells the engines that an organization's monitors changed (module docstring)."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        channel: str = "",
        metrics: CacheMetrics | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._metrics = metrics
        self._listeners: list[Callable[[str], None]] = []

    @classmethod
    def from_settings(cls, settings: Settings, metrics: CacheMetrics) -> MonitorChanges:
        """The notifier of these settings: Redis when ``redis_url`` is set.

        Its client has the cache's short timeouts: a Redis that hangs delays a monitor
        write by at most that, and never blocks it.
        """
        client = short_timeout_client(settings.redis_url) if settings.redis_url else None
        return cls(client, channel=channel_name(settings.redis_key_prefix), metrics=metrics)

    def close(self) -> None:
        """Close the Redis client."""
        if self._client is not None:
            self._client.close()

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(organization)`` in this process at every change."""
        self._listeners.append(listener)

    def published(self, organization: str) -> None:
        """After a committed change: this process's listeners, then Redis; never raises.

        A listener's failure or Redis's is logged (and Redis's counted): the poll of each
        engine catches the change later.
        """
        for listener in self._listeners:
            try:
                listener(organization)
            except Exception:  # the write is committed; the engine catches up by polling
                _log.exception("monitor change of %s: a listener failed", organization)
        if self._client is None:
            return
        try:
            self._client.publish(self._channel, json.dumps({"org": organization}))
        except redis.RedisError as error:
            if self._metrics is not None:
                self._metrics.errors.labels("publish").inc()
            _log.warning("monitor change of %s not published: %s", organization, error)


class MonitorWatch:
    """Calls ``on_change(organization)`` when an engine's monitors changed (module docstring).

    ``organizations`` answers the organizations the engine runs now; ``client`` is
    ``None`` without Redis (poll only); ``poll_seconds`` 0 turns the poll off.
    """

    def __init__(
        self,
        *,
        service: MonitorService,
        organizations: Callable[[], Iterable[str]],
        on_change: Callable[[str], None],
        client: redis.Redis | None,
        channel: str,
        poll_seconds: float,
        metrics: CacheMetrics,
    ) -> None:
        self._service = service
        self._organizations = organizations
        self._on_change = on_change
        self._client = client
        self._channel = channel
        self._poll_seconds = poll_seconds
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()  # set while the subscription is confirmed

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        service: MonitorService,
        organizations: Callable[[], Iterable[str]],
        on_change: Callable[[str], None],
        metrics: CacheMetrics,
    ) -> MonitorWatch | None:
        """The watch an engine runs: pub/sub with ``redis_url``, the poll unless 0.

        ``None`` when there is neither (the in-process notification is then all there
        is). The subscription has its own client, pinging every 10 s so a silently dead
        connection is noticed.
        """
        if not settings.redis_url and settings.monitor_poll_seconds <= 0:
            return None
        client = (
            redis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=2.0, health_check_interval=10
            )
            if settings.redis_url
            else None
        )
        return cls(
            service=service,
            organizations=organizations,
            on_change=on_change,
            client=client,
            channel=channel_name(settings.redis_key_prefix),
            poll_seconds=settings.monitor_poll_seconds,
            metrics=metrics,
        )

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="monitor-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within about a second) and close the subscription."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=SUBSCRIBE_WAIT_SECONDS + 2)
        if self._client is not None:
            self._client.close()

    def check(self, organizations: Iterable[str] | None = None) -> None:
        """Rebuild each organization (all the engine runs by default) whose monitors changed."""
        running = set(self._organizations())
        for organization in running if organizations is None else organizations:
            if organization not in running:
                continue
            try:
                if self._service.changed(organization):
                    _log.info("monitors of %s changed: rebuilding", organization)
                    self._on_change(organization)
            except Exception:  # the database or the store failed: the next check retries
                _log.exception("monitor check of %s failed", organization)

    def _run(self) -> None:
        poll = self._poll_seconds
        next_poll = time.monotonic() + poll if poll > 0 else float("inf")
        pubsub: Any = None
        retry_at, backoff = 0.0, 0.5
        while not self._stop.is_set():
            if self._client is not None and pubsub is None and time.monotonic() >= retry_at:
                pubsub = self._subscribe()
                if pubsub is None:
                    retry_at, backoff = time.monotonic() + backoff, min(2 * backoff, 5.0)
                else:
                    backoff = 0.5
                    self.check()  # whatever changed while no message could arrive
            wait = max(0.0, min(next_poll - time.monotonic(), 1.0))
            if pubsub is not None:
                try:
                    message = pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                except (redis.RedisError, OSError) as error:
                    self._lost(pubsub, error)
                    pubsub, retry_at = None, time.monotonic() + backoff
                else:
                    if message is not None:
                        self.check(_organizations_in(message))
            else:
                self._stop.wait(wait)
            if time.monotonic() >= next_poll:
                self.check()
                next_poll = time.monotonic() + poll
        if pubsub is not None:
            pubsub.close()
        self.subscribed.clear()

    def _subscribe(self) -> Any:
        """A confirmed subscription to the channel, or ``None`` (counted and logged)."""
        assert self._client is not None
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel)
            deadline = time.monotonic() + SUBSCRIBE_WAIT_SECONDS
            while time.monotonic() < deadline and not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] == "subscribe":
                    self.subscribed.set()
                    _log.info("monitor changes: subscribed to %s", self._channel)
                    return pubsub
            raise redis.TimeoutError("the subscription was not confirmed")
        except (redis.RedisError, OSError) as error:
            self._lost(pubsub, error)
            return None

    def _lost(self, pubsub: Any, error: BaseException) -> None:
        self.subscribed.clear()
        self._metrics.errors.labels("subscribe").inc()
        _log.warning("monitor changes: subscription lost (%s); checking and retrying", error)
        with contextlib.suppress(redis.RedisError, OSError):  # the connection may be gone
            pubsub.close()


def _organizations_in(message: dict[str, Any]) -> list[str]:
    """The organization a change message names (nothing if it is not one of ours)."""
    try:
        body = json.loads(message["data"])
        return [str(body["org"])]
    except (ValueError, KeyError, TypeError):
        _log.warning("monitor changes: a message that is not ours: %r", message.get("data"))
        return []
