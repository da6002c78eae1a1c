"""Event-time windows: which windows an event belongs to, and when a window may close.

Time windows are aligned to the epoch: a tumbling window of size ``S`` covers
``[k S, (k+1) S)``; hopping windows of size ``S`` and step ``P`` (``S`` a multiple of ``P``)
start every ``P``, so an event belongs to ``S / P`` of them. A window closes when the
watermark of its partition — the largest event time seen there — reaches its end plus
the allowed lateness. An event for a window that has already closed is *late*: counted and
dead-lettered with reason ``late``, never silently dropped.

Count windows close after ``N`` events of a deployment, in arrival order; they have no
lateness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from engine.monitor import WindowSpec


def window_starts(ts_ms: NDArray[np.int64], spec: WindowSpec) -> NDArray[np.int64]:
    """Start of every window each event belongs to: shape (events, windows per event).

    Tumbling windows give one column; hopping windows ``size / step`` columns, earliest first.
    """
    step, size = spec.step_ms, spec.size_ms
    last = (ts_ms // step) * step
    per_event = size // step
    offsets = np.arange(per_event - 1, -1, -1, dtype=np.int64) * step
    return last[:, None] - offsets[None, :]


@dataclass
class Watermarks:
    """Largest event time seen per partition (milliseconds); ``None`` before any event."""

    marks: dict[int, int] = field(default_factory=dict)

    def advance(self, partition: int, ts_ms: NDArray[np.int64]) -> int | None:
        """Raise partition's watermark to the batch's largest event time; return it."""
        if ts_ms.size:
            top = int(ts_ms.max())
            self.marks[partition] = max(self.marks.get(partition, top), top)
        return self.marks.get(partition)

    def get(self, partition: int) -> int | None:
        """The partition's watermark."""
        return self.marks.get(partition)
