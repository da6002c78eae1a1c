"""The pipeline every source feeds: decode -> dedup -> windows -> close -> sinks.

One :class:`Pipeline` serves one organization (the tenant comes from the API key or the
topic binding, never from the events). Sources call :meth:`Pipeline.ingest` with raw
payloads (HTTP ingest, Kafka batches) or :meth:`Pipeline.process` with decoded columns
(replay). Nothing here reads the wall clock directly: ``clock`` is injected.

Windows close in event time (see :mod:`engine.windows`); a closed window's results are
written to the sink, in groups of windows as the pipeline's :class:`~engine.writes.WritePolicy`
says, then handed to the listener (alert evaluation). A failed write keeps the group and
retries it before the next one, in order, so nothing accepted is lost.
With a label horizon, a window's performance is written in a second phase once the
watermark passes its end plus the horizon, so that late labels joined by ``request_id``
still count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine import snapshot as snapshots
from engine.close import close_window, performance_rows
from engine.deadletter import DeadLetter, DeadLetterSink
from engine.decode import (
    DecodeContext,
    Decoded,
    FeatureSchema,
    LabelColumns,
    PredictionColumns,
    ResourceColumns,
    decode,
)
from engine.dedup import SeenIds
from engine.events import Reason
from engine.metrics import EngineMetrics
from engine.monitor import Monitor
from engine.results import WindowResult
from engine.sinks import ResultSink, WindowListener
from engine.state import WindowState
from engine.windows import Watermarks, window_starts
from engine.writes import PendingWrites, WritePolicy

log = logging.getLogger("driftline.engine")


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, from the system clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class IngestReport:
    """What one call did: counts, and the reasons of refused events."""

    accepted: int
    rejected: int
    duplicates: int
    late: int
    reasons: tuple[tuple[str, str], ...]
    closed: tuple[WindowResult, ...]


_SEEN_PRUNE_MIN = 200_000
"""Event ids remembered per deployment before the first prune to the dedup horizon."""


@dataclass
class _Deployment:
    monitor: Monitor
    partition: int | None = None  # the partition its events last came from; None: none yet
    open: dict[int, WindowState] = field(default_factory=dict)
    awaiting_labels: dict[int, WindowState] = field(default_factory=dict)
    seen: SeenIds = field(default_factory=SeenIds)
    # ``seen`` is pruned to the dedup horizon when it grows past this size (see _dedup)
    prune_seen_at: int = field(default_factory=lambda: _SEEN_PRUNE_MIN)
    requests: dict[str, tuple[int, ...]] = field(default_factory=dict)


class Pipeline:
    """Windows, detectors and sinks for one organization's monitors (module docstring)."""

    def __init__(
        self,
        *,
        organization: str,
        monitors: Sequence[Monitor],
        sink: ResultSink,
        dead_letters: DeadLetterSink,
        listener: WindowListener | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        metrics: EngineMetrics | None = None,
        dedup_horizon_ms: int = 3_600_000,
        max_future_ms: int = 5 * 60 * 1000,
        writes: WritePolicy | None = None,
    ) -> None:
        self.organization = organization
        self.metrics = metrics or EngineMetrics()
        self._deployments = {m.deployment: _Deployment(m) for m in monitors}
        self._schemas = {m.deployment: FeatureSchema(m.numeric, m.categorical) for m in monitors}
        self._dead_letters = dead_letters
        self._clock = clock
        self._dedup_horizon_ms = dedup_horizon_ms
        self._max_future_ms = max_future_ms
        self._watermarks = Watermarks()
        self._pending = PendingWrites(
            writes or WritePolicy(),
            sink=sink,
            listener=listener,
            metrics=self.metrics,
            clock=clock,
        )
        self._closed: list[WindowResult] = []

    @property
    def monitors(self) -> list[Monitor]:
        """The monitors this pipeline runs, one per deployment."""
        return [d.monitor for d in self._deployments.values()]

    @property
    def pending(self) -> int:
        """Closed windows whose results are not yet durable (waiting, deferred, or failed)."""
        return len(self._pending)

    def write_pending(self, *, force: bool = False) -> int:
        """Write the closed windows whose write is due (all with ``force``); answers how many.

        For a pipeline with a deferred :class:`~engine.writes.WritePolicy`, the owner calls
        this once the snapshot holding them is stored; with write-behind, a timer calls it
        so that windows wait no longer than the policy's delay. A failure keeps them pending.
        """
        return self._pending.write(force=force)

    def ingest(
        self, payloads: Sequence[bytes], *, partition: int = 0, source: str = "http"
    ) -> IngestReport:
        """Decode and process raw payloads from one partition (or the HTTP endpoint)."""
        context = DecodeContext(
            schemas=self._schemas,
            source=source,
            now_ms=self._clock(),
            max_future_ms=self._max_future_ms,
        )
        return self.process(decode(payloads, context), partition=partition)

    def process(self, decoded: Decoded, *, partition: int = 0) -> IngestReport:
        """Window already-decoded events, close the windows the watermark passed, write."""
        dead = list(decoded.dead)
        self._closed = []
        before = self._watermarks.get(partition)
        duplicates = late = 0
        times: list[NDArray[np.int64]] = []
        for rows in decoded.predictions:
            d, l_, kept = self._predictions(rows, partition, before, dead)
            duplicates += d
            late += l_
            times.append(kept)
        for labels in decoded.labels:
            self._labels(labels, dead)
        for resources in decoded.resources:
            late += self._resources(resources, partition, before, dead)
            times.append(resources.ts_ms)
        watermark = self._watermarks.advance(
            partition, np.concatenate(times) if times else np.empty(0, dtype=np.int64)
        )
        if watermark is not None:
            self._close_ready(partition, watermark)
        self._pending.settle(force=False)
        closed, self._closed = self._closed, []
        self._write_dead(dead)
        accepted = decoded.accepted - duplicates - late
        windowed = sum(len(rows) for rows in decoded.predictions) - duplicates - late
        self.metrics.events.labels("prediction").inc(windowed)
        self.metrics.events.labels("label").inc(sum(len(x.ts_ms) for x in decoded.labels))
        self.metrics.events.labels("resource").inc(sum(len(x.ts_ms) for x in decoded.resources))
        self.metrics.duplicates.inc(duplicates)
        self.metrics.late.inc(late)
        return IngestReport(
            accepted=accepted,
            rejected=len(dead),
            duplicates=duplicates,
            late=late,
            reasons=tuple((str(d.reason), d.detail) for d in dead),
            closed=tuple(closed),
        )

    def snapshot(self, partition: int) -> bytes:
        """Everything this partition's deployments hold, as bytes (see :mod:`engine.snapshot`).

        Includes results closed but not yet written, in their groups (waiting ones are
        grouped now, see :mod:`engine.writes`), so that a restart cannot lose them nor
        write them twice.
        """
        names = {n for n, d in self._deployments.items() if d.partition == partition}
        return snapshots.encode(
            {
                "watermark": self._watermarks.get(partition),
                "deployments": {
                    name: {
                        "monitor": d.monitor.fingerprint,
                        "open": [snapshots.state_to_dict(s) for s in d.open.values()],
                        "awaiting": [
                            snapshots.state_to_dict(s) for s in d.awaiting_labels.values()
                        ],
                    }
                    for name, d in self._deployments.items()
                    if name in names
                },
                "pending": self._pending.to_snapshot(partition),
            }
        )

    def restore(self, partition: int, blob: bytes) -> None:
        """Replace this partition's state with a :meth:`snapshot` taken earlier.

        A deployment of the snapshot that no longer has a monitor is dropped. So are the
        open windows of a deployment whose monitor changed since the snapshot (another
        fingerprint): they were built under the old monitor (its reference bins, its
        window) and cannot go on under the new one; they are counted in
        ``driftline_windows_discarded`` and logged. A running worker closes and writes
        them at the change (:meth:`reconfigure`), so this happens only when the change
        reached the snapshot's owner too late (it was down, or the partition moved).
        """
        data = snapshots.decode(blob)
        if data["watermark"] is not None:
            self._watermarks.marks[partition] = int(data["watermark"])
        for name, saved in data["deployments"].items():
            deployment = self._deployments.get(name)
            if deployment is None:
                continue
            deployment.partition = partition
            monitor = deployment.monitor
            if saved.get("monitor", monitor.fingerprint) != monitor.fingerprint:
                self._discard(name, saved)
                continue
            deployment.open = {
                int(s["start_ms"]): snapshots.state_from_dict(monitor, s) for s in saved["open"]
            }
            deployment.awaiting_labels = {
                int(s["start_ms"]): snapshots.state_from_dict(monitor, s) for s in saved["awaiting"]
            }
            deployment.requests = {}
            for state in (*deployment.open.values(), *deployment.awaiting_labels.values()):
                for request_id, _, _ in state.request_ids:
                    known = deployment.requests.get(request_id, ())
                    deployment.requests[request_id] = (*known, state.start_ms)
        self._pending.restore(
            partition, data["pending"], known=lambda name: name in self._deployments
        )

    def flush(self) -> list[WindowResult]:
        """Close every open window now (end of a replay, shutdown) and write the results."""
        return self._flush(list(self._deployments.values()), cut=False)

    def reconfigure(self, monitors: Sequence[Monitor]) -> list[WindowResult]:
        """Run ``monitors`` from now on; answer the windows this closed.

        A deployment whose monitor is unchanged (same :attr:`Monitor.fingerprint`) keeps
        everything: open windows, windows waiting for labels, dedup memory. A deployment
        whose monitor changed or was removed has its open windows closed now, with what
        they hold, and written (as :meth:`flush` does: windows waiting for late labels
        are finished too), because their state was built under the old monitor and
        cannot go on under the new one. Such a window is written under a key of its own
        (:attr:`WindowResult.cut`): the deployment's next events open new windows under
        the new monitor, possibly with the same bounds, and both parts are stored, each
        event in exactly one. A new deployment starts empty.
        """
        wanted = {m.deployment: m for m in monitors}
        changed = [
            d
            for name, d in self._deployments.items()
            if name not in wanted or wanted[name].fingerprint != d.monitor.fingerprint
        ]
        closed = self._flush(changed, cut=True)
        kept: dict[str, _Deployment] = {}
        for name, monitor in wanted.items():
            old = self._deployments.get(name)
            if old is not None and old.monitor.fingerprint == monitor.fingerprint:
                kept[name] = old
            elif old is not None:  # the dedup memory does not depend on the monitor
                kept[name] = _Deployment(monitor, partition=old.partition, seen=old.seen)
            else:
                kept[name] = _Deployment(monitor)
        self._deployments = kept
        self._schemas = {m.deployment: FeatureSchema(m.numeric, m.categorical) for m in monitors}
        return closed

    def _flush(self, deployments: Sequence[_Deployment], *, cut: bool) -> list[WindowResult]:
        self._closed = []
        for deployment in deployments:
            mark = deployment.monitor.fingerprint[:12] if cut else ""
            for start in sorted(deployment.open):
                self._close(deployment, deployment.open.pop(start), final=True, cut=mark)
            for start in sorted(deployment.awaiting_labels):
                state = deployment.awaiting_labels.pop(start)
                self._finish_labels(deployment, state, cut=mark)
        self._pending.settle(force=True)
        closed, self._closed = self._closed, []
        return closed

    def _discard(self, name: str, saved: dict[str, Any]) -> None:
        windows = len(saved["open"]) + len(saved["awaiting"])
        events = sum(int(s["events"]) for s in (*saved["open"], *saved["awaiting"]))
        self.metrics.discarded.inc(windows)
        log.warning(
            "restore: %d open windows (%d events) of deployment %s discarded: its monitor "
            "changed since the snapshot",
            windows,
            events,
            name,
        )

    # -- predictions ------------------------------------------------------------------

    def _predictions(
        self, rows: PredictionColumns, partition: int, before: int | None, dead: list[DeadLetter]
    ) -> tuple[int, int, NDArray[np.int64]]:
        deployment = self._deployments[rows.deployment]
        deployment.partition = partition
        monitor = deployment.monitor
        fresh = self._dedup(deployment, rows)
        duplicates = len(rows) - int(fresh.size)
        if duplicates:
            rows = rows.take(fresh)
        if monitor.window.kind == "count":
            self._count_windows(deployment, rows)
            return duplicates, 0, rows.ts_ms
        starts = window_starts(rows.ts_ms, monitor.window)
        closes_at = starts + monitor.window.size_ms + monitor.lateness_ms
        open_ = (closes_at > before) if before is not None else np.ones(starts.shape, dtype=bool)
        late_rows = ~open_.any(axis=1)
        for i in np.flatnonzero(late_rows):
            dead.append(self._late_letter(rows, int(i)))
        for start in np.unique(starts[open_]):
            members = np.flatnonzero(((starts == start) & open_).any(axis=1))
            state = self._window(deployment, int(start))
            state.add(rows if members.size == len(rows) else rows.take(members), monitor)
            self._remember_requests(deployment, rows, members, int(start))
        for start in np.unique(starts[~open_]):
            waiting = deployment.open.get(int(start)) or deployment.awaiting_labels.get(int(start))
            if waiting is not None:
                waiting.late += int(((starts == start) & ~open_).any(axis=1).sum())
        return duplicates, int(late_rows.sum()), rows.ts_ms[~late_rows]

    def _dedup(self, deployment: _Deployment, rows: PredictionColumns) -> NDArray[np.intp]:
        """Rows whose event_id was not seen within the dedup horizon (first one wins)."""
        seen = deployment.seen
        fresh = seen.fresh(rows.event_id, rows.ts_ms)
        if len(seen) > deployment.prune_seen_at:
            seen.prune(self._dedup_horizon_ms)
            # next prune once it has doubled: O(1) amortised per event even when every id
            # is still inside the horizon (pruning at a fixed size would rescan every batch)
            deployment.prune_seen_at = max(_SEEN_PRUNE_MIN, 2 * len(deployment.seen))
        return fresh

    def _late_letter(self, rows: PredictionColumns, i: int) -> DeadLetter:
        return DeadLetter(
            reason=Reason.LATE,
            detail="the event's window had already closed",
            payload=rows.payload(i),
            source="pipeline",
            received_at_ms=self._clock(),
            deployment=rows.deployment,
        )

    def _window(self, deployment: _Deployment, start: int) -> WindowState:
        state = deployment.open.get(start)
        if state is None:
            end = start + deployment.monitor.window.size_ms
            state = deployment.open[start] = WindowState.open(deployment.monitor, start, end)
        return state

    def _count_windows(self, deployment: _Deployment, rows: PredictionColumns) -> None:
        """Fill the deployment's count window in arrival order; close it when full."""
        size = int(deployment.monitor.window.size)
        at = 0
        while at < len(rows):
            state = deployment.open.get(0)
            if state is None:
                state = deployment.open[0] = WindowState.open(deployment.monitor, 0, 0)
            room = size - state.events
            members = np.arange(at, min(at + room, len(rows)), dtype=np.intp)
            chunk = rows.take(members)
            first, last = int(chunk.ts_ms.min()), int(chunk.ts_ms.max())
            state.start_ms = first if state.events == 0 else min(state.start_ms, first)
            state.end_ms = max(state.end_ms, last + 1)
            state.add(chunk, deployment.monitor)
            at += members.size
            if state.events >= size:
                self._close(deployment, deployment.open.pop(0), final=False)

    def _remember_requests(
        self,
        deployment: _Deployment,
        rows: PredictionColumns,
        members: NDArray[np.intp],
        start: int,
    ) -> None:
        """Keep request ids of unlabelled predictions, so a later label finds its window."""
        if deployment.monitor.performance is None:
            return
        for i in members:
            request_id = rows.request_id[i]
            if request_id is not None and rows.label[i] is None:
                deployment.requests[request_id] = (*deployment.requests.get(request_id, ()), start)
                self._window(deployment, start).request_ids.append(
                    (request_id, float(rows.prediction_value[i]), rows.prediction_class[i])
                )

    # -- labels and resources ---------------------------------------------------------

    def _labels(self, labels: LabelColumns, dead: list[DeadLetter]) -> None:
        deployment = self._deployments[labels.deployment]
        for i, request_id in enumerate(labels.request_id):
            starts = deployment.requests.pop(request_id, ())
            matched = False
            for start in starts:
                state = deployment.open.get(start) or deployment.awaiting_labels.get(start)
                if state is None:
                    continue
                for rid, value, klass in state.request_ids:
                    if rid == request_id:
                        state.add_labels(
                            np.array([labels.label[i]], dtype=object),
                            np.array([value]),
                            np.array([klass], dtype=object),
                        )
                        matched = True
                        break
            if not matched:
                detail = (
                    "no open prediction with this request_id within the label horizon"
                    if deployment.monitor.performance is not None
                    else "the deployment's monitor computes no performance metrics"
                )
                dead.append(
                    DeadLetter(
                        reason=Reason.UNMATCHED_LABEL,
                        detail=detail,
                        payload=labels.payload(i),
                        source="pipeline",
                        received_at_ms=self._clock(),
                        deployment=labels.deployment,
                    )
                )

    def _resources(
        self, resources: ResourceColumns, partition: int, before: int | None, dead: list[DeadLetter]
    ) -> int:
        deployment = self._deployments[resources.deployment]
        deployment.partition = partition
        window = deployment.monitor.window
        if window.kind == "count":
            state = deployment.open.get(0) or self._window(deployment, 0)
            state.add_resources(resources.values)
            return 0
        starts = window_starts(resources.ts_ms, window)[:, -1]
        closes_at = starts + window.size_ms + deployment.monitor.lateness_ms
        late = closes_at <= before if before is not None else np.zeros(starts.shape, dtype=bool)
        for start in np.unique(starts[~late]):
            members = np.flatnonzero((starts == start) & ~late)
            self._window(deployment, int(start)).add_resources(
                {k: v[members] for k, v in resources.values.items()}
            )
        return int(late.sum())

    # -- closing ----------------------------------------------------------------------

    def _close_ready(self, partition: int, watermark: int) -> None:
        for deployment in self._deployments.values():
            if deployment.partition != partition:
                continue
            monitor = deployment.monitor
            if monitor.window.kind != "count":
                for start in sorted(deployment.open):
                    if start + monitor.window.size_ms + monitor.lateness_ms <= watermark:
                        self._close(deployment, deployment.open.pop(start), final=False)
            horizon = monitor.performance.label_horizon_ms if monitor.performance else 0
            for start in sorted(deployment.awaiting_labels):
                state = deployment.awaiting_labels[start]
                if state.end_ms + monitor.lateness_ms + horizon <= watermark:
                    del deployment.awaiting_labels[start]
                    self._finish_labels(deployment, state)

    def _close(
        self, deployment: _Deployment, state: WindowState, *, final: bool, cut: str = ""
    ) -> None:
        monitor = deployment.monitor
        waits = monitor.performance is not None and monitor.performance.label_horizon_ms > 0
        with self.metrics.close_seconds.time():
            result = close_window(
                state, monitor, organization=self.organization, with_performance=not waits
            )
        result = replace(result, cut=cut) if cut else result
        outcome = (
            "insufficient" if result.insufficient else "drift" if result.drifted_features else "ok"
        )
        self.metrics.windows.labels(outcome).inc()
        self._emit(deployment, result)
        if waits and not final:
            deployment.awaiting_labels[state.start_ms] = state
            return
        self._forget_requests(deployment, state)
        if waits:
            self._finish_labels(deployment, state, forget=False, cut=cut)

    def _finish_labels(
        self, deployment: _Deployment, state: WindowState, *, forget: bool = True, cut: str = ""
    ) -> WindowResult:
        """The second phase of a window: its performance, once the label horizon passed."""
        if forget:
            self._forget_requests(deployment, state)
        base = close_window(
            state, deployment.monitor, organization=self.organization, with_performance=False
        )
        result = replace(base, performance=performance_rows(state), phase="labels", cut=cut)
        self._emit(deployment, result)
        return result

    def _emit(self, deployment: _Deployment, result: WindowResult) -> None:
        self._pending.add(result, partition=deployment.partition or 0)
        self._closed.append(result)

    def _forget_requests(self, deployment: _Deployment, state: WindowState) -> None:
        for request_id, _, _ in state.request_ids:
            deployment.requests.pop(request_id, None)

    def _write_dead(self, dead: list[DeadLetter]) -> None:
        for letter in dead:
            self.metrics.dead_letters.labels(str(letter.reason)).inc()
        if dead:
            self._dead_letters.write(dead)
