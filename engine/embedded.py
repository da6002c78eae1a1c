"""The engine inside the API process (the embedded default): one pipeline per organization.

``POST /v1/ingest`` hands each request's payloads to :meth:`EngineHub.ingest` with the
caller's organization (from its API key, never from the events). Pipelines are built on
first use from the monitors a :class:`MonitorSource` gives for that organization; results
and dead letters go to the metrics store. Calls for one organization are serialised by a
lock (a pipeline is single-threaded state); organizations do not wait for each other.

The windows one call closes, of every deployment, are written together: one insert per
table (:func:`~engine.writes.write_policy`). With a write-behind delay, closed windows
wait up to that long across calls and are written together then, and told to the alert
listener; a background thread writes those whose delay ran out while no request came, and
shutdown writes everything. Grouping is safe here because an embedded pipeline is never restored
from a snapshot (:mod:`engine.writes`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.metrics import EngineMetrics
from engine.monitor import Monitor, load_monitors
from engine.pipeline import IngestReport, Pipeline, wall_clock_ms
from engine.sinks import MetricsStoreDeadLetters, MetricsStoreSink, WindowListener
from engine.writes import WritePolicy, write_policy
from storage.clickhouse.client import MetricsClient

log = logging.getLogger("driftline.engine")


class MonitorSource(Protocol):
    """Where an organization's monitors come from (a file, or the control plane)."""

    def monitors_for(self, organization: str) -> list[Monitor]:
        """The monitors of ``organization`` (empty when it has none)."""


class NoMonitors:
    """No monitors at all: every event is dead-lettered as ``unknown_deployment``."""

    def monitors_for(self, organization: str) -> list[Monitor]:
        """Nothing, for every organization."""
        return []


@dataclass
class FileMonitors:
    """Monitors from a YAML/JSON file, for every organization or for one.

    With ``organization`` set, other organizations have no monitors (their events are
    dead-lettered as ``unknown_deployment``); without it (single-tenant embedded use),
    every organization shares the file's monitors.
    """

    path: Path
    organization: str | None = None
    _cache: list[Monitor] | None = None

    def monitors_for(self, organization: str) -> list[Monitor]:
        """The file's monitors when ``organization`` may use them."""
        if self.organization is not None and organization != self.organization:
            return []
        if self._cache is None:
            self._cache = load_monitors(self.path)
        return list(self._cache)


@dataclass
class EngineHub:
    """Pipelines per organization over one metrics-store client (module docstring).

    ``connect`` opens the client at the first ingest, so an API that never ingests never
    opens the metrics store for it. ``listener_for`` makes an organization's window listener
    (its alert evaluator) when its pipeline is built. ``writes`` is the pipelines' write
    policy; with a delay, a thread started with the first pipeline writes what is due every
    half delay (wall time) until :meth:`close`.
    """

    connect: Callable[[], MetricsClient]
    monitors: MonitorSource
    listener_for: Callable[[str, MetricsClient], WindowListener] | None = None
    clock: Callable[[], int] = wall_clock_ms
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    writes: WritePolicy = field(default_factory=write_policy)
    _client: MetricsClient | None = None
    _pipelines: dict[str, Pipeline] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _writer: threading.Thread | None = None

    def ingest(self, organization: str, payloads: Sequence[bytes], *, source: str) -> IngestReport:
        """Decode, window and (when due) close windows for ``organization``'s events."""
        pipeline, lock = self._pipeline(organization)
        with lock:
            return pipeline.ingest(payloads, source=source)

    def flush(self) -> None:
        """Close every open window of every organization (shutdown)."""
        with self._guard:
            pipelines = list(self._pipelines.items())
        for organization, pipeline in pipelines:
            with self._locks[organization]:
                pipeline.flush()

    def write_due(self) -> int:
        """Write the closed windows whose delay ran out, in every organization; answers how many."""
        with self._guard:
            pipelines = list(self._pipelines.items())
        written = 0
        for organization, pipeline in pipelines:
            with self._locks[organization]:
                written += pipeline.write_pending()
        return written

    def close(self) -> None:
        """Stop the writer thread, flush every pipeline, then close the metrics-store client."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        self.flush()
        if self._client is not None:
            self._client.close()
            self._client = None

    def organizations(self) -> list[str]:
        """The organizations whose pipeline is built (the ones a monitor change concerns)."""
        with self._guard:
            return list(self._pipelines)

    def running(self, organization: str) -> list[Monitor]:
        """The monitors ``organization``'s pipeline runs now (none before it is built)."""
        with self._guard:
            pipeline = self._pipelines.get(organization)
        return pipeline.monitors if pipeline is not None else []

    def reload(self, organization: str) -> None:
        """Give ``organization``'s pipeline its monitors anew, after they changed.

        The monitors are read under the organization's lock, so concurrent reloads apply
        in order and never leave an older set in place. Windows of unchanged monitors go
        on; those of changed or removed monitors are closed and written now
        (:meth:`Pipeline.reconfigure`), so nothing accepted is lost. An organization
        without a pipeline yet has nothing to do: it is built from the current monitors.
        """
        with self._guard:
            pipeline = self._pipelines.get(organization)
            lock = self._locks.get(organization)
        if pipeline is not None and lock is not None:
            with lock:
                pipeline.reconfigure(self.monitors.monitors_for(organization))

    def _pipeline(self, organization: str) -> tuple[Pipeline, threading.Lock]:
        with self._guard:
            pipeline = self._pipelines.get(organization)
            if pipeline is None:
                if self._client is None:
                    self._client = self.connect()
                pipeline = Pipeline(
                    organization=organization,
                    monitors=self.monitors.monitors_for(organization),
                    sink=MetricsStoreSink(self._client, organization),
                    dead_letters=MetricsStoreDeadLetters(self._client, organization),
                    listener=(
                        self.listener_for(organization, self._client)
                        if self.listener_for is not None
                        else None
                    ),
                    clock=self.clock,
                    metrics=self.metrics,
                    writes=self.writes,
                )
                self._pipelines[organization] = pipeline
                self._locks[organization] = threading.Lock()
                if self._writer is None and self.writes.max_delay_ms > 0:
                    self._writer = threading.Thread(
                        target=self._write_behind, name="driftline-write-behind", daemon=True
                    )
                    self._writer.start()
            return pipeline, self._locks[organization]

    def _write_behind(self) -> None:
        period = self.writes.max_delay_ms / 2000
        while not self._stopping.wait(period):
            try:
                self.write_due()
            except Exception:  # a listener's bug: the windows stay pending, the thread goes on
                log.exception("writing the closed windows that were due failed")
