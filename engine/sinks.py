"""Where window results and dead letters go: the metrics store, a JSONL file, memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import orjson

from engine.deadletter import DeadLetter
from engine.results import WindowResult
from storage.clickhouse.client import MetricsClient
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch


class ResultSink(Protocol):
    """Receives each closed window's results; raises if they could not be kept."""

    def write(self, result: WindowResult) -> None:
        """Persist ``result`` durably (idempotently: the same window may come again)."""


class WindowListener(Protocol):
    """Told about every closed window after its results are durable (alert evaluation)."""

    def on_window_closed(self, result: WindowResult) -> None:
        """React to ``result``."""


@dataclass
class MetricsStoreSink:
    """Writes each window as one batch per metrics table, idempotently by window key."""

    client: MetricsClient
    organization: str

    def write(self, result: WindowResult) -> None:
        """Insert the window's rows; a retry of the same window leaves no duplicate."""
        for table, columns in result.tables().items():
            write_batch(
                self.client,
                table,
                organization=self.organization,
                batch_id=result.key,
                columns=columns,
            )


@dataclass
class MetricsStoreDeadLetters:
    """Writes dead letters into the metrics store's dead-letter table."""

    client: MetricsClient
    organization: str

    def write(self, letters: Sequence[DeadLetter]) -> None:
        """Insert ``letters`` in one batch."""
        if not letters:
            return
        write_batch(
            self.client,
            MetricsTable.DEAD_LETTERS,
            organization=self.organization,
            batch_id=_letters_key(letters),
            columns={
                "received_at": [d.received_at_ms for d in letters],
                "source": [d.source for d in letters],
                "reason": [f"{d.reason}: {d.detail}" for d in letters],
                "payload": [d.payload for d in letters],
                "deployment": [d.deployment for d in letters],
            },
        )


def _letters_key(letters: Sequence[DeadLetter]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for letter in letters:
        digest.update(letter.payload)
        digest.update(str(letter.received_at_ms).encode())
    return digest.hexdigest()


@dataclass
class JsonlSink:
    """Writes one JSON line per (window, feature, statistic) to a text stream."""

    stream: IO[bytes]

    @classmethod
    def open(cls, path: str | Path) -> JsonlSink:
        """A sink writing to ``path`` (truncated)."""
        return cls(Path(path).open("wb"))

    def write(self, result: WindowResult) -> None:
        """Append the window's lines."""
        for line in result.report_lines():
            self.stream.write(orjson.dumps(line) + b"\n")
        self.stream.flush()


@dataclass
class MemorySink:
    """Keeps results in memory (tests, summaries)."""

    results: list[WindowResult] = field(default_factory=list)

    def write(self, result: WindowResult) -> None:
        """Append ``result``."""
        self.results.append(result)


@dataclass
class FanOut:
    """Writes every result to several sinks, in order."""

    sinks: Sequence[ResultSink]

    def write(self, result: WindowResult) -> None:
        """Write to each sink."""
        for sink in self.sinks:
            sink.write(result)
