"""The engine inside the API process (the embedded default): one pipeline per organization.

``POST /v1/ingest`` hands each request's payloads to :meth:`EngineHub.ingest` with the
caller's organization (from its API key, never from the events). Pipelines are built on
first use from the monitors a :class:`MonitorSource` gives for that organization; results
and dead letters go to the metrics store. Calls for one organization are serialised by a
lock (a pipeline is single-threaded state); organizations do not wait for each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.metrics import EngineMetrics
from engine.monitor import Monitor, load_monitors
from engine.pipeline import IngestReport, Pipeline, wall_clock_ms
from engine.sinks import MetricsStoreDeadLetters, MetricsStoreSink, WindowListener
from storage.clickhouse.client import MetricsClient


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
    (its alert evaluator) when its pipeline is built.
    """

    connect: Callable[[], MetricsClient]
    monitors: MonitorSource
    listener_for: Callable[[str, MetricsClient], WindowListener] | None = None
    clock: Callable[[], int] = wall_clock_ms
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    _client: MetricsClient | None = None
    _pipelines: dict[str, Pipeline] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

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

    def close(self) -> None:
        """Flush every pipeline, then close the metrics-store client."""
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
                )
                self._pipelines[organization] = pipeline
                self._locks[organization] = threading.Lock()
            return pipeline, self._locks[organization]
