"""How closed windows reach the result sink: in groups, in order, each window once.

Every insert into the metrics store costs about the same whatever its size (in chDB some
25-30 ms of CPU for one window of 20 features: planning the roll-ups' views and writing a
part per table and per roll-up, plus merging those parts later), so windows are written in
*groups*: one insert per table for all the windows of a group (:mod:`engine.sinks`).

A group's writes are idempotent under one token named after its members
(:func:`engine.sinks.group_key`); a window written in two different groups would be
stored twice. So a window's group is fixed before its first write attempt and never
changes: a failed group is retried as the same group, before anything else; a snapshot
holds the groups not yet written as they are, and a restore brings them back as they
were. The one way to regroup a window is to close it again after a restart from a
snapshot taken *before* its group was formed; :class:`WritePolicy` says when that cannot
follow a write attempt:

- ``max_windows = 1`` (the default): every window is a group of one, written at the end
  of the call that closed it, under its window key. Safe everywhere, whatever the batches
  a redelivery cuts;
- ``max_windows > 1`` groups the windows closed by one call (ingest, flush, reconfigure)
  - up to that many per group. A source whose batches are redelivered after a crash (the
  Kafka worker) may cut them differently and so close the same windows in other groups: it
  must also set ``deferred`` and store the snapshot holding the new groups before writing
  them (:meth:`engine.pipeline.Pipeline.write_pending`): a crash after a write then
  restores the very group that was written. Sources whose pipeline is never restored
  (embedded, replay) need not;
- ``max_delay_ms > 0`` adds write-behind: closed windows wait across calls, ungrouped,
  until ``max_windows`` of them wait, the oldest has waited ``max_delay_ms`` (pipeline
  clock), or the pipeline is flushed or reconfigured; a timer calls ``write_pending`` so
  that a quiet pipeline keeps the bound. A snapshot groups the waiting windows first, so
  that it holds every window's group.

The listener (alert evaluation) hears about each window after its group is stored, in
the order the windows closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from engine import snapshot as snapshots
from engine.metrics import EngineMetrics
from engine.results import WindowResult
from engine.sinks import ResultSink, WindowListener
from storage.errors import StorageError

__all__ = ["MAX_GROUP", "PendingWrites", "ResultGroup", "WritePolicy", "write_policy"]

MAX_GROUP = 256
"""Windows written together at most (one insert per table carries all their rows)."""


@dataclass(frozen=True)
class WritePolicy:
    """How many closed windows one write carries, and how long they may wait (module doc)."""

    max_windows: int = 1
    max_delay_ms: int = 0
    deferred: bool = False

    def __post_init__(self) -> None:
        if self.max_windows < 1:
            raise ValueError("max_windows must be at least 1")
        if self.max_delay_ms < 0:
            raise ValueError("max_delay_ms must not be negative")


def write_policy(delay_ms: int = 0) -> WritePolicy:
    """Groups of up to :data:`MAX_GROUP` windows, waiting up to ``delay_ms`` (pipeline clock).

    ``0``: the windows a call closes are written before it returns. For pipelines that are
    never restored from a snapshot (embedded, replay, benchmarks).
    """
    return WritePolicy(max_windows=MAX_GROUP, max_delay_ms=delay_ms)


@dataclass(frozen=True)
class ResultGroup:
    """Windows written together; ``partition`` is the one their events came from."""

    partition: int
    results: tuple[WindowResult, ...]


class PendingWrites:
    """Closed windows not yet durable: the ungrouped ones waiting, then the groups, in order."""

    def __init__(
        self,
        policy: WritePolicy,
        *,
        sink: ResultSink,
        listener: WindowListener | None,
        metrics: EngineMetrics,
        clock: Callable[[], int],
    ) -> None:
        self.policy = policy
        self._sink, self._listener, self._metrics, self._clock = sink, listener, metrics, clock
        self._groups: list[ResultGroup] = []
        self._waiting: list[tuple[int, WindowResult]] = []
        self._waiting_since = 0

    def __len__(self) -> int:
        """Windows not yet durable (grouped or waiting)."""
        return len(self._waiting) + sum(len(g.results) for g in self._groups)

    def add(self, result: WindowResult, *, partition: int) -> None:
        """Take a window just closed; it waits until :meth:`settle` or :meth:`write`."""
        if not self._waiting:
            self._waiting_since = self._clock()
        self._waiting.append((partition, result))

    def settle(self, *, force: bool) -> None:
        """End of a pipeline call: group what is due (all with ``force``); write unless deferred."""
        self._group(force=force)
        if not self.policy.deferred:
            self._write()

    def write(self, *, force: bool) -> int:
        """Group what is due (all with ``force``) and write every group; answers windows written."""
        self._group(force=force)
        return self._write()

    def _due(self) -> bool:
        policy = self.policy
        return (
            policy.max_delay_ms == 0
            or len(self._waiting) >= policy.max_windows
            or self._clock() - self._waiting_since >= policy.max_delay_ms
        )

    def _group(self, *, force: bool) -> None:
        if not self._waiting or not (force or self._due()):
            return
        waiting, self._waiting = self._waiting, []
        self._groups.extend(_chunks(waiting, self.policy.max_windows))

    def _write(self) -> int:
        """Write the groups in order; stop at the first failure (retried next time)."""
        written = 0
        while self._groups:
            group = self._groups[0]
            try:
                self._sink.write(group.results)
            except StorageError:
                self._metrics.sink_failures.inc()
                break
            self._groups.pop(0)
            written += len(group.results)
            if self._listener is not None:
                for result in group.results:
                    self._listener.on_window_closed(result)
        return written

    # -- snapshots ----------------------------------------------------------------------

    def to_snapshot(self, partition: int) -> list[Any]:
        """The partition's groups, its waiting windows grouped first.

        Grouping them here commits them: a restore brings back exactly the groups a write
        after this snapshot may have used. A group of one is saved as the result's plain
        data (the form snapshots had before groups existed), a larger group as a list.
        """
        mine = [(p, r) for p, r in self._waiting if p == partition]
        if mine:
            self._waiting = [(p, r) for p, r in self._waiting if p != partition]
            self._groups.extend(_chunks(mine, self.policy.max_windows))
        return [
            snapshots.result_to_dict(g.results[0])
            if len(g.results) == 1
            else [snapshots.result_to_dict(r) for r in g.results]
            for g in self._groups
            if g.partition == partition
        ]

    def restore(self, partition: int, saved: list[Any], *, known: Callable[[str], bool]) -> None:
        """Replace the partition's pending windows with those of :meth:`to_snapshot`.

        A group is restored whole, as long as one of its deployments is still ``known``
        (has a monitor): dropping a member would rename the group and let a window that
        was written with it be written again.
        """
        self._groups = [g for g in self._groups if g.partition != partition]
        self._waiting = [(p, r) for p, r in self._waiting if p != partition]
        for item in saved:
            members = [item] if isinstance(item, dict) else item
            results = tuple(snapshots.result_from_dict(r) for r in members)
            if any(known(r.deployment) for r in results):
                self._groups.append(ResultGroup(partition, results))


def _chunks(waiting: list[tuple[int, WindowResult]], size: int) -> Iterator[ResultGroup]:
    """Consecutive windows of one partition, at most ``size`` per group, order kept."""
    group: list[WindowResult] = []
    partition = waiting[0][0]
    for p, result in waiting:
        if group and (p != partition or len(group) == size):
            yield ResultGroup(partition, tuple(group))
            group = []
        partition = p
        group.append(result)
    yield ResultGroup(partition, tuple(group))
