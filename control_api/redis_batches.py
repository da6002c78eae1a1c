"""Redis commands issued during one turn of the event loop, sent together as one pipeline.

Under load many requests reach their Redis call in the same turn of the loop; sent one by
one, each pays a connection checkout, a write and a read of its own, in the client, the
kernel and Redis. :class:`Batches` queues the commands issued during a turn and sends them
as one pipeline (not a transaction: each command stands alone, as if sent by itself) once
the turn ends, then hands each caller its own reply or error. A lone request waits one turn
of the loop, no more.

Scripts run by SHA (``EVALSHA``); one that Redis does not know (after a restart or a
``SCRIPT FLUSH``) is loaded and run again, once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import redis
import redis.asyncio

__all__ = ["Batches", "Script"]


class Script:
    """A Lua script and its SHA-1, as Redis names it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class Batches:
    """Sends the commands of each turn of the event loop as one pipeline."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []

    async def command(self, *args: Any) -> Any:
        """The reply to ``args`` (raises its :class:`redis.RedisError`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((args, future))
        return await future

    async def run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """The reply of ``script`` run on ``keys`` and ``args``."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.command(*command)
        except redis.exceptions.NoScriptError:
            await self.command("SCRIPT", "LOAD", script.source)
            return await self.command(*command)

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        task = asyncio.ensure_future(self._send(queue))
        task.add_done_callback(_retrieve)

    async def _send(self, queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for args, _ in queue:
            pipe.execute_command(*args)
        replies: list[Any] = []
        try:
            replies = await pipe.execute(raise_on_error=False)
        except redis.RedisError as error:
            replies = [error] * len(queue)
        finally:  # every caller gets an answer, even when this task is cancelled
            for index, (_, future) in enumerate(queue):
                if future.done():  # its caller was cancelled
                    continue
                reply = replies[index] if index < len(replies) else _NOT_SENT
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)


_NOT_SENT = redis.ConnectionError("the batch was not sent")
_log = logging.getLogger("driftline.cache")


def _retrieve(task: asyncio.Future[None]) -> None:
    """Log a failure of the sending task itself (its callers got ``_NOT_SENT``)."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("redis batch: sending failed", exc_info=task.exception())
