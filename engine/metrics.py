"""Prometheus metrics of the engine, on a registry of their own (one per pipeline)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class EngineMetrics:
    """Counters every pipeline keeps; ``registry`` is what ``/metrics`` exposes."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter("driftline_events", "Events accepted, by type", ["type"], registry=r)
        self.dead_letters = Counter(
            "driftline_dead_letters", "Events refused, by reason", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "driftline_duplicate_events", "Events dropped as duplicates", registry=r
        )
        self.late = Counter(
            "driftline_late_events", "Events that arrived after their window closed", registry=r
        )
        self.windows = Counter(
            "driftline_windows_closed", "Windows closed, by outcome", ["outcome"], registry=r
        )
        self.close_seconds = Histogram(
            "driftline_window_close_seconds", "Time to compute and write a window", registry=r
        )
        self.discarded = Counter(
            "driftline_windows_discarded",
            "Open windows dropped at a restore because their monitor changed since the snapshot",
            registry=r,
        )
        self.sink_failures = Counter(
            "driftline_sink_failures", "Result writes that failed and will be retried", registry=r
        )
