"""Contiguous offsets per partition: records the consumer lost are read again, not skipped.

faust can lose records at the end of a rebalance. Its recovery resumes the stream
partitions, then seeks them to their committed offsets while its fetcher already runs,
then clears every stream buffer (``FlowControlEvent.resume`` clears its queues). Records
delivered in between are dropped, on the assumption that the seek rewound the partition
to them; but aiokafka's ``seek_to_committed`` leaves a partition with no committed offset
(or offset 0) where it is, so those records are never delivered again and the next commit
skips them. Seen here: a worker restarted after SIGKILL, its group never having committed,
consumed to the end of every partition and ingested nothing.

The worker's checkpoint is the truth about what it ingested (the offset of the last event
of each partition), so it guards against this with two checks:

* :class:`GapGuard` (every batch): a partition's records must follow on from the
  checkpoint. At a gap the batch is cut there and the partition is sought back to the
  first missing offset; the records after the gap come again. A gap that stays after
  ``confirm_after`` sightings over at least ``settle_seconds`` is real (offsets that do not
  exist: transaction markers, compaction; retention is told apart by the worker from the
  log start offset) and is accepted with a warning.
* :func:`behind` (a periodic watch in the worker): a partition whose consumer position is
  past the checkpoint while no batch of it arrived for a while, found so twice in a row
  with nothing changed, had its records dropped with nothing after them to reveal a gap;
  the worker seeks it back.

Seeking back is always safe: records at or below the checkpoint are skipped
(:class:`~engine.kafka.partitions.PartitionRunner`), so a needless seek costs a re-read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Admission", "GapGuard", "behind"]


@dataclass(frozen=True)
class Admission:
    """What to do with one partition's batch.

    ``records`` go to the runner (the batch up to its first gap, or all of it);
    ``rewind_to`` is the offset to seek the partition back to (``None``: no gap), and
    ``dropped`` counts the records after the gap, which will come again.
    ``accepted_gap`` is ``(first missing, first present)`` when a gap was taken as real.
    """

    records: list[tuple[int, bytes]]
    rewind_to: int | None = None
    dropped: int = 0
    accepted_gap: tuple[int, int] | None = None


@dataclass
class _Sighting:
    missing: int
    present: int
    first_seen: float
    count: int


class GapGuard:
    """Cuts batches at gaps in their offsets (module docstring); one per worker."""

    def __init__(
        self,
        *,
        confirm_after: int = 3,
        settle_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if confirm_after < 1 or settle_seconds < 0:
            raise ValueError("confirm_after must be >= 1 and settle_seconds >= 0")
        self._confirm_after = confirm_after
        self._settle_seconds = settle_seconds
        self._clock = clock
        self._sightings: dict[int, _Sighting] = {}

    def admit(
        self, partition: int, records: Sequence[tuple[int, bytes]], expected: int
    ) -> Admission:
        """Check ``records`` (offset order) of ``partition`` against ``expected``.

        ``expected`` is the next offset the worker must see: the checkpoint's offset + 1,
        or the partition's start when it has no checkpoint. Records below it are kept
        (the runner skips them as already counted).
        """
        following = expected
        accepted = None
        for index, (offset, _) in enumerate(records):
            if offset <= following:  # the next one, or one already counted
                following = max(following, offset + 1)
                continue
            if not self._confirmed(partition, following, offset):
                return Admission(
                    records=list(records[:index]),
                    rewind_to=following,
                    dropped=len(records) - index,
                )
            accepted = (following, offset)
            following = offset + 1
        if accepted is not None or following > expected:
            self._sightings.pop(partition, None)  # accepted, or the gap filled
        return Admission(records=list(records), accepted_gap=accepted)

    def forget(self, partition: int) -> None:
        """Drop what is remembered of ``partition``'s gaps (it was revoked)."""
        self._sightings.pop(partition, None)

    def _confirmed(self, partition: int, missing: int, present: int) -> bool:
        """Record a sighting of the gap; whether it is now taken as real."""
        now = self._clock()
        sighting = self._sightings.get(partition)
        if sighting is None or (sighting.missing, sighting.present) != (missing, present):
            self._sightings[partition] = _Sighting(missing, present, now, 1)
            return self._confirm_after <= 1 and self._settle_seconds <= 0
        sighting.count += 1
        settled = now - sighting.first_seen >= self._settle_seconds
        return sighting.count >= self._confirm_after and settled


def behind(position: int | None, expected: int, *, idle: bool) -> bool:
    """Whether a partition lost records: consumed past ``expected`` while idle.

    ``position`` is the consumer's next offset to deliver (``None``: unknown), ``expected``
    the next offset the worker must ingest, ``idle`` whether no batch of the partition
    arrived for the watch's period (records on their way would show up as batches).
    """
    return idle and position is not None and position > expected
