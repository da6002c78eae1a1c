"""The client for threaded model servers (Flask, Django, gunicorn sync workers ...).

The sender runs on its own event loop in a daemon thread. ``close()`` flushes (within
``close_timeout_seconds``) and is registered with :mod:`atexit`, so a process that exits
normally sends what it queued.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from types import TracebackType
from typing import Self

from driftline.client.base import ClientBase
from driftline.client.config import ClientConfig
from driftline.client.transport import Transport

__all__ = ["DriftlineClient"]

logger = logging.getLogger("driftline.client")


class DriftlineClient(ClientBase):
    """Logs events from any thread; a background thread batches and sends them.

    >>> from driftline.client import DriftlineClient
    >>> client = DriftlineClient.http("http://127.0.0.1:9", key_id="k", key_secret="s",
    ...                               deployment="loans-prod")
    >>> client.log_prediction({"income": 5200.0}, 0.82, request_id="r-1")
    True
    >>> client.close(timeout=0.1), client.stats().dropped
    (False, 1)
    """

    def __init__(
        self,
        transport: Transport,
        *,
        deployment: str | None = None,
        config: ClientConfig | None = None,
        register_atexit: bool = True,
    ) -> None:
        super().__init__(transport, deployment=deployment, config=config)
        self._close_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="driftline-client", daemon=True)
        self._thread.start()
        self._loop.call_soon_threadsafe(self._sender.start)
        self._atexit = register_atexit
        if register_atexit:
            atexit.register(self.close)

    def _serve(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _wake(self) -> None:
        self._loop.call_soon_threadsafe(self._sender.wake)

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now; answer whether that finished within ``timeout`` seconds."""
        if self._closed:
            return len(self._queue) == 0
        future = asyncio.run_coroutine_threadsafe(self._sender.flush(), self._loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (at most ``timeout`` seconds, default ``close_timeout_seconds``) and stop.

        Events still queued after the timeout are dropped and counted. Idempotent; answers
        whether everything queued was handled.
        """
        with self._close_lock:
            if self._closed:
                return False
            self._closed = True
        if self._atexit:
            atexit.unregister(self.close)
        limit = self.config.close_timeout_seconds if timeout is None else timeout
        done = False
        try:
            future = asyncio.run_coroutine_threadsafe(self._sender.stop(limit), self._loop)
            done = future.result(limit + 5.0)
        except Exception:  # shutting down: report, never raise
            logger.warning("driftline client: close did not finish cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(limit + 5.0)
        return done

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
