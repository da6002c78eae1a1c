"""Per-partition pipelines with checkpoints: how a Kafka worker counts each event once.

A :class:`Checkpoint` is the pair the worker stores after every batch of one partition: the
offset of the last event it reflects and :meth:`engine.pipeline.Pipeline.snapshot` of that
partition (open windows, results closed but not yet written, watermark). The worker keeps
it in a faust table backed by a changelog topic, keyed by partition number.

:class:`PartitionRunner` holds one :class:`~engine.pipeline.Pipeline` per partition, so
that restoring one partition can never touch the state of another (a pipeline's snapshot
also lists the deployments it has not seen yet under partition 0). Before a batch it
compares the stored checkpoint with what it holds: when they differ (first batch after an
assignment, or another worker advanced the partition meanwhile) it rebuilds the partition's
pipeline from the checkpoint. Then it drops the events at or below the checkpoint's offset
(already counted: redelivered because offsets are committed after checkpoints) and ingests
the rest. No Kafka here: the worker feeds it offsets and payloads.

With a deferred write policy (the worker's, :mod:`engine.writes`), the windows a batch
closes are grouped, kept in the checkpoint, and written by :meth:`PartitionRunner.write_pending`
once the worker has stored that checkpoint.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.monitor import Monitor
from engine.pipeline import IngestReport, Pipeline

__all__ = ["BatchOutcome", "Checkpoint", "CheckpointError", "PartitionRunner"]

_MAGIC = b"DLCK"
_HEADER = struct.Struct(">4sq")  # magic, last offset (signed 64-bit, big-endian)


class CheckpointError(ValueError):
    """Bytes that are not a checkpoint written by :meth:`Checkpoint.encode`."""


@dataclass(frozen=True)
class Checkpoint:
    """A partition's pipeline state and the offset of the last event it reflects."""

    offset: int
    snapshot: bytes

    def encode(self) -> bytes:
        """``DLCK`` + the offset (8 bytes, big-endian) + the snapshot bytes."""
        return _HEADER.pack(_MAGIC, self.offset) + self.snapshot

    @staticmethod
    def offset_of(blob: bytes) -> int:
        """The offset of an encoded checkpoint, without copying its snapshot."""
        if len(blob) < _HEADER.size or blob[:4] != _MAGIC:
            raise CheckpointError("not a Driftline checkpoint")
        offset: int = _HEADER.unpack_from(blob)[1]
        return offset

    @classmethod
    def decode(cls, blob: bytes) -> Checkpoint:
        """Inverse of :meth:`encode`."""
        return cls(offset=cls.offset_of(blob), snapshot=blob[_HEADER.size :])


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch of one partition did.

    ``checkpoint`` is ``None`` when every event was skipped (nothing new to store);
    ``skipped`` counts the events at or below the stored offset.
    """

    partition: int
    first_offset: int
    last_offset: int
    skipped: int
    checkpoint: Checkpoint | None
    report: IngestReport | None


class PartitionRunner:
    """One pipeline per partition, restored from checkpoints (module docstring)."""

    def __init__(self, new_pipeline: Callable[[], Pipeline], *, topic: str) -> None:
        self._new_pipeline = new_pipeline
        self._topic = topic
        self._live: dict[int, tuple[Pipeline, int]] = {}

    def offset(self, partition: int) -> int | None:
        """The last offset this runner ingested for ``partition`` (``None``: not held)."""
        live = self._live.get(partition)
        return live[1] if live is not None else None

    def process(
        self,
        partition: int,
        records: Sequence[tuple[int, bytes]],
        stored: Checkpoint | None,
    ) -> BatchOutcome:
        """Ingest ``records`` (offset, payload) of ``partition`` given its stored checkpoint.

        Records must be in offset order (as Kafka delivers one partition). The returned
        checkpoint must be made durable before the records' offsets are committed.
        """
        if not records:
            raise ValueError("a batch needs at least one record")
        pipeline, last = self._current(partition, stored)
        fresh = [(offset, value) for offset, value in records if offset > last]
        skipped = len(records) - len(fresh)
        first_offset, last_offset = records[0][0], records[-1][0]
        if not fresh:
            self._live[partition] = (pipeline, last)
            return BatchOutcome(partition, first_offset, last_offset, skipped, None, None)
        report = pipeline.ingest(
            [value for _, value in fresh],
            partition=partition,
            source=f"kafka:{self._topic}/{partition}",
        )
        newest = fresh[-1][0]
        self._live[partition] = (pipeline, newest)
        checkpoint = Checkpoint(offset=newest, snapshot=pipeline.snapshot(partition))
        return BatchOutcome(partition, first_offset, last_offset, skipped, checkpoint, report)

    def forget(self, partition: int) -> None:
        """Drop what this runner holds for ``partition`` (it will restore from the store)."""
        self._live.pop(partition, None)

    def partitions(self) -> list[int]:
        """The partitions this runner holds a pipeline for."""
        return sorted(self._live)

    def reconfigure(self, partition: int, monitors: Sequence[Monitor]) -> Checkpoint:
        """Run ``monitors`` in ``partition``'s pipeline (:meth:`Pipeline.reconfigure`).

        Answers the checkpoint to store: the same offset (no event was read), the new
        state. Until it is stored, a restore would bring back the old state, whose windows
        of changed monitors are then discarded (:meth:`Pipeline.restore`).
        """
        pipeline, last = self._live[partition]
        pipeline.reconfigure(monitors)
        return Checkpoint(offset=last, snapshot=pipeline.snapshot(partition))

    def write_pending(self, partition: int) -> Checkpoint | None:
        """Write ``partition``'s closed windows; call it once its checkpoint is stored.

        Answers the checkpoint to store next (same offset, the windows written gone from
        it), or ``None`` when nothing was written (none pending, or the store failed: they
        stay pending, in their groups, for the next call).
        """
        live = self._live.get(partition)
        if live is None or not live[0].pending:
            return None
        pipeline, last = live
        if not pipeline.write_pending(force=True):
            return None
        return Checkpoint(offset=last, snapshot=pipeline.snapshot(partition))

    def _current(self, partition: int, stored: Checkpoint | None) -> tuple[Pipeline, int]:
        stored_offset = stored.offset if stored is not None else -1
        live = self._live.get(partition)
        if live is not None and live[1] == stored_offset:
            return live
        # Nothing held, or the store moved on without us (another worker had the
        # partition): the stored checkpoint is the truth.
        pipeline = self._new_pipeline()
        if stored is not None:
            pipeline.restore(partition, stored.snapshot)
        return pipeline, stored_offset
