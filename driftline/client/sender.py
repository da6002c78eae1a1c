"""The background half of a client: a bounded queue and the loop that drains it.

The queue is a lock-guarded deque shared by the caller's threads (which only append) and
the sender (which takes batches on its event loop). The sender wakes when a batch is full
or ``flush_interval_seconds`` has passed, encodes envelopes and delivers each with retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable

from driftline.client.config import ClientConfig
from driftline.client.counters import Counters
from driftline.client.envelopes import envelopes
from driftline.client.events import EncodedEvent
from driftline.client.transport import Envelope, PermanentError, TransientError, Transport

__all__ = ["EventQueue", "Sender"]

logger = logging.getLogger("driftline.client")


class EventQueue:
    """A bounded FIFO of encoded events, safe across threads; never blocks."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[EncodedEvent] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()

    def put(self, item: EncodedEvent) -> int | None:
        """Append ``item``; answer the new length, or ``None`` when full (item not added)."""
        with self._lock:
            if len(self._items) >= self._capacity:
                return None
            self._items.append(item)
            return len(self._items)

    def take(self, most: int) -> list[EncodedEvent]:
        """Remove and answer up to ``most`` of the oldest events."""
        with self._lock:
            count = min(most, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def clear(self) -> int:
        """Drop every event; answer how many there were."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count

    def __len__(self) -> int:
        return len(self._items)


class Sender:
    """Drains an :class:`EventQueue` through a :class:`Transport` on one event loop.

    ``sleep`` is injectable so tests can observe backoff without waiting.
    """

    def __init__(
        self,
        transport: Transport,
        queue: EventQueue,
        counters: Counters,
        config: ClientConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._transport = transport
        self._queue = queue
        self._counters = counters
        self._config = config
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the drain loop on the running event loop (once)."""
        if self._task is None and not self._stopping:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """Ask the loop to drain now (call on the sender's event loop)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.flush_interval_seconds)
            self._wake.clear()
            if not self._stopping:
                await self.flush()

    async def flush(self) -> None:
        """Send everything queued now; failures are counted, never raised."""
        async with self._lock:
            while batch := self._queue.take(self._config.batch_size):
                await self._send_batch(batch)

    async def stop(self, timeout: float) -> bool:
        """Stop the loop, flush within ``timeout`` seconds, close the transport.

        Answers whether everything queued was handled in time; what was left is dropped
        and counted.
        """
        self._stopping = True
        self._wake.set()
        done = True
        try:
            async with asyncio.timeout(timeout):
                if self._task is not None:
                    await self._task
                await self.flush()
        except TimeoutError:
            done = False
        finally:
            left = self._queue.clear()
            self._counters.drop("dropped", left, "client closed before they were sent")
            try:
                async with asyncio.timeout(max(1.0, timeout)):
                    await self._transport.aclose()
            except Exception:  # closing must not raise into shutdown
                logger.warning("driftline client: closing the transport failed", exc_info=True)
        return done and left == 0

    async def _send_batch(self, batch: list[EncodedEvent]) -> None:
        try:
            parts = envelopes(
                batch,
                keyed=self._transport.keyed,
                columnar_threshold=self._config.columnar_threshold,
                max_bytes=self._config.max_envelope_bytes,
            )
        except Exception:  # a bug, never the caller's problem: count the batch as failed
            logger.exception("driftline client: could not encode a batch")
            self._counters.add("failed_batches")
            self._counters.add("failed_events", len(batch))
            return
        handled = 0
        try:
            for envelope in parts:
                await self._deliver(envelope)
                handled += envelope.count
        except asyncio.CancelledError:  # close() ran out of time in the middle of a batch
            why = "client closed while they were being sent"
            self._counters.drop("dropped", len(batch) - handled, why)
            raise

    def _backoff(self, attempt: int, hint: float | None) -> float:
        delay = self._config.backoff_seconds * 2 ** (attempt - 1)
        delay = min(self._config.max_backoff_seconds, delay) * random.uniform(0.5, 1.0)
        delay = float(delay)
        if hint is not None:
            delay = max(delay, min(hint, self._config.max_backoff_seconds))
        return delay

    async def _deliver(self, envelope: Envelope) -> None:
        attempt = 0
        while True:
            try:
                delivery = await self._transport.send(envelope)
            except TransientError as error:
                if attempt >= self._config.max_retries:
                    self._fail(envelope, f"gave up after {attempt} retries: {error}")
                    return
                attempt += 1
                self._counters.add("retries")
                logger.debug("driftline client: retry %d after %s", attempt, error)
                await self._sleep(self._backoff(attempt, error.retry_after))
            except PermanentError as error:
                self._fail(envelope, str(error))
                return
            except Exception as error:  # an unexpected transport bug: count, never crash
                logger.exception("driftline client: transport failed unexpectedly")
                self._fail(envelope, repr(error))
                return
            else:
                self._counters.add("sent", envelope.count)
                if delivery.rejected:
                    self._counters.drop(
                        "rejected",
                        delivery.rejected,
                        f"refused by the engine: {delivery.first_rejection}",
                    )
                return

    def _fail(self, envelope: Envelope, why: str) -> None:
        batches = self._counters.add("failed_batches")
        self._counters.add("failed_events", envelope.count)
        logger.warning(
            "driftline client: %d event(s) not delivered (%d failed batches so far): %s",
            envelope.count,
            batches,
            why,
        )
