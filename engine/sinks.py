"""Where window results and dead letters go: the metrics store, a JSONL file, memory.

A sink receives closed windows as *groups* (:mod:`engine.writes`): a group is written as a
whole, and when it fails, it is retried as the same group, never split or merged with
other windows. The metrics store relies on it: a group is one insert per table, made
idempotent by one deduplication token (:func:`group_key`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from engine.deadletter import DeadLetter
from engine.results import WindowResult
from storage.clickhouse.client import MetricsClient
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch


class ResultSink(Protocol):
    """Receives groups of closed windows' results; raises if they could not be kept."""

    def write(self, results: Sequence[WindowResult]) -> None:
        """Persist one group of ``results`` durably, in order.

        Idempotently: the same group may come again (a retry after a failure, or after a
        restart from a snapshot that still holds it), always with the same members.
        """


class WindowListener(Protocol):
    """Told about every closed window after its results are durable (alert evaluation)."""

    def on_window_closed(self, result: WindowResult) -> None:
        """React to ``result``."""


def group_key(results: Sequence[WindowResult]) -> str:
    """The identity of a group of windows, which names its writes (the dedup token).

    A group of one window is named by the window's own key, as every window was before
    groups existed: a window written alone, then or now, is the same write. A larger group
    is named by a digest of its members' keys and phases, in order: the same members
    always give the same name, so a retried group leaves no duplicate. A window must never
    be written in two different groups (the two names differ, and both writes would
    land): :mod:`engine.writes` fixes a window's group before its first write attempt.
    """
    if len(results) == 1:
        return results[0].key
    digest = hashlib.sha256("\n".join(f"{r.key}#{r.phase}" for r in results).encode())
    return f"group/{len(results)}/{digest.hexdigest()[:32]}"


def group_tables(results: Sequence[WindowResult]) -> dict[MetricsTable, dict[str, list[Any]]]:
    """The group's rows for each metrics table: every member's rows, in order."""
    merged: dict[MetricsTable, dict[str, list[Any]]] = {}
    for result in results:
        for table, columns in result.tables().items():
            into = merged.setdefault(table, {name: [] for name in columns})
            for name, values in columns.items():
                into[name].extend(values)
    return merged


@dataclass
class MetricsStoreSink:
    """Writes a group of windows as one batch per metrics table, idempotently by group.

    One insert per table for the whole group (ClickHouse: few, large inserts; an insert
    costs about as much for one window as for hundreds, see ``benchmarks/engine.py``).
    """

    client: MetricsClient
    organization: str

    def write(self, results: Sequence[WindowResult]) -> None:
        """Insert the group's rows; a retry of the same group leaves no duplicate."""
        key = group_key(results)
        for table, columns in group_tables(results).items():
            write_batch(
                self.client, table, organization=self.organization, batch_id=key, columns=columns
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

    def write(self, results: Sequence[WindowResult]) -> None:
        """Append the windows' lines."""
        for result in results:
            for line in result.report_lines():
                self.stream.write(orjson.dumps(line) + b"\n")
        self.stream.flush()


@dataclass
class MemorySink:
    """Keeps results in memory (tests, summaries)."""

    results: list[WindowResult] = field(default_factory=list)

    def write(self, results: Sequence[WindowResult]) -> None:
        """Append ``results``."""
        self.results.extend(results)


@dataclass
class FanOut:
    """Writes every result to several sinks, in order."""

    sinks: Sequence[ResultSink]

    def write(self, results: Sequence[WindowResult]) -> None:
        """Write to each sink."""
        for sink in self.sinks:
            sink.write(results)
