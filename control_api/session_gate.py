"""At most as many requests hold a database session as the pool has connections.

A route's session holds its pooled connection from the first query until the request ends,
across several hops between the event loop and FastAPI's worker threads. Without a bound,
more concurrent requests than connections deadlock: every worker thread blocks in the
pool's checkout while the requests holding the connections wait for a free thread to go on
(with the default pool of 5 + 10 and 40 threads, 64 concurrent requests stalled for the
pool's 30-second timeout). The gate makes the surplus wait on the event loop instead,
holding no thread, so the requests that hold connections always find a thread.
"""

from __future__ import annotations

import anyio
from anyio.lowlevel import RunVar

__all__ = ["SessionGate"]


class SessionGate:
    """``size`` request sessions at once per event loop; the others wait their turn.

    >>> SessionGate(15).size
    15
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # a limiter belongs to one event loop: one per loop that serves this application
        self._limiter: RunVar[anyio.CapacityLimiter] = RunVar("driftline_session_gate")

    def limiter(self) -> anyio.CapacityLimiter:
        """The running event loop's limiter (made at its first request)."""
        try:
            return self._limiter.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.size)
            self._limiter.set(limiter)
            return limiter
