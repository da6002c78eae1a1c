"""The client for asyncio model servers (FastAPI, aiohttp ...): the sender is a task.

``log_*`` stay plain (non-async) methods: they only queue. The sender task starts with
``async with`` / :meth:`AsyncDriftlineClient.start`, or at the first event logged while a
loop runs. Close it with ``await client.aclose()`` (in a FastAPI lifespan, say).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any, Self

from driftline.client.base import ClientBase
from driftline.client.config import ClientConfig
from driftline.client.transport import Transport

__all__ = ["AsyncDriftlineClient"]


class AsyncDriftlineClient(ClientBase):
    """Logs events from coroutines of one event loop; a task batches and sends them."""

    def __init__(
        self,
        transport: Transport,
        *,
        deployment: str | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        super().__init__(transport, deployment=deployment, config=config)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the sender task on the running loop (idempotent)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._sender.start()

    def _submit(self, build: Any) -> bool:
        if self._loop is None and not self._closed:
            # no running loop yet: start() or a later call starts the sender
            with contextlib.suppress(RuntimeError):
                self.start()
        return super()._submit(build)

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._sender.wake()
        else:
            loop.call_soon_threadsafe(self._sender.wake)

    async def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now; answer whether that finished within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._sender.flush()
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush (at most ``timeout`` seconds, default ``close_timeout_seconds``) and stop.

        Idempotent; answers whether everything queued was handled.
        """
        if self._closed:
            return False
        self._closed = True
        limit = self.config.close_timeout_seconds if timeout is None else timeout
        return await self._sender.stop(limit)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
