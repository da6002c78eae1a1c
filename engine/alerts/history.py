"""Where alert transitions are kept for the long run: ClickHouse's ``alert_history``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from storage.clickhouse.client import MetricsClient
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch

__all__ = ["ClickHouseHistory", "HistoryWriter", "MemoryHistory", "Transition"]


@dataclass(frozen=True)
class Transition:
    """One alert series moving to ``state`` at ``changed_at_ms`` (event time, the window end)."""

    alert_id: str
    rule_id: str
    deployment: str
    fingerprint: str
    state: str
    changed_at_ms: int
    value: float
    message: str
    labels: dict[str, str]


class HistoryWriter(Protocol):
    """Keeps transitions; the same ``batch_id`` twice must not write them twice."""

    def write(self, batch_id: str, transitions: Sequence[Transition]) -> None:
        """Persist ``transitions`` durably."""


@dataclass
class ClickHouseHistory:
    """Writes transitions into ``alert_history`` in one idempotent batch."""

    client: MetricsClient
    organization: str

    def write(self, batch_id: str, transitions: Sequence[Transition]) -> None:
        """Insert the batch (deduplicated by ``batch_id``)."""
        if not transitions:
            return
        write_batch(
            self.client,
            MetricsTable.ALERT_HISTORY,
            organization=self.organization,
            batch_id=batch_id,
            columns={
                "alert_id": [t.alert_id for t in transitions],
                "rule_id": [t.rule_id for t in transitions],
                "deployment": [t.deployment for t in transitions],
                "fingerprint": [t.fingerprint for t in transitions],
                "state": [t.state for t in transitions],
                "changed_at": np.array([t.changed_at_ms for t in transitions], "datetime64[ms]"),
                "value": np.array([t.value for t in transitions], dtype=np.float64),
                "message": [t.message for t in transitions],
                "labels": [list(t.labels.items()) for t in transitions],
            },
        )


@dataclass
class MemoryHistory:
    """Keeps transitions in memory (tests, embedded runs without a metrics store)."""

    batches: dict[str, list[Transition]] = field(default_factory=dict)

    def write(self, batch_id: str, transitions: Sequence[Transition]) -> None:
        """Remember the batch (a second write of the same id replaces it)."""
        if transitions:
            self.batches[batch_id] = list(transitions)

    @property
    def transitions(self) -> list[Transition]:
        """Every transition, in write order."""
        return [t for batch in self.batches.values() for t in batch]
