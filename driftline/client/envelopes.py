"""Batches of encoded events as the engine's envelopes: row-wise, or columnar when large.

Row envelope: ``{"schema_version": 1, "events": [...]}`` built by joining the events' bytes.
Columnar envelope (one event type): ``{"schema_version": 1, "type": ..., "columns": {...}}``
with ``features`` and ``metrics`` as objects of columns; a field an event lacks is null.
An envelope above the byte limit is split in halves until each part fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from driftline.client.events import EncodedEvent
from driftline.client.transport import Envelope
from engine.events import SCHEMA_VERSION

__all__ = ["columnar_body", "envelopes", "rows_body"]

_NESTED = ("features", "metrics")


def rows_body(events: Sequence[EncodedEvent]) -> bytes:
    """The row envelope of ``events``.

    >>> rows_body([EncodedEvent("label", "d", b'{"a":1}')])
    b'{"schema_version":1,"events":[{"a":1}]}'
    """
    head = b'{"schema_version":%d,"events":[' % SCHEMA_VERSION
    return head + b",".join(e.payload for e in events) + b"]}"


def columnar_body(kind: str, events: Sequence[EncodedEvent]) -> bytes:
    """The columnar envelope of ``events``, all of type ``kind``.

    >>> columnar_body("label", [EncodedEvent("label", "d", b'{"type":"label","a":1}'),
    ...                         EncodedEvent("label", "d", b'{"type":"label","b":2}')])
    b'{"schema_version":1,"type":"label","columns":{"a":[1,null],"b":[null,2]}}'
    """
    rows: list[dict[str, Any]] = [orjson.loads(e.payload) for e in events]
    names: dict[str, None] = {}
    nested: dict[str, dict[str, None]] = {n: {} for n in _NESTED}
    for row in rows:
        for name, value in row.items():
            if name in nested and isinstance(value, dict):
                nested[name].update(dict.fromkeys(value))
            elif name != "type":
                names[name] = None
    columns: dict[str, Any] = {name: [row.get(name) for row in rows] for name in names}
    for name, keys in nested.items():
        if keys:
            maps = [row.get(name) or {} for row in rows]
            columns[name] = {key: [m.get(key) for m in maps] for key in keys}
    return orjson.dumps({"schema_version": SCHEMA_VERSION, "type": kind, "columns": columns})


def envelopes(
    events: Sequence[EncodedEvent],
    *,
    keyed: bool,
    columnar_threshold: int,
    max_bytes: int,
) -> list[Envelope]:
    """The envelopes that carry ``events``; one key (deployment) per envelope when ``keyed``.

    Within a key, the events of one type go columnar when they are at least
    ``columnar_threshold``; the others go in one row envelope. Order within a key and type
    is kept.
    """
    groups: dict[str | None, list[EncodedEvent]] = {}
    for event in events:
        groups.setdefault(event.deployment if keyed else None, []).append(event)
    out: list[Envelope] = []
    for key, group in groups.items():
        by_kind: dict[str, list[EncodedEvent]] = {}
        for event in group:
            by_kind.setdefault(event.kind, []).append(event)
        rows: list[EncodedEvent] = []
        for kind, same in by_kind.items():
            if len(same) >= columnar_threshold:
                out.extend(_fit(same, key, max_bytes, lambda part, k=kind: columnar_body(k, part)))
            else:
                rows.extend(same)
        if rows:
            out.extend(_fit(rows, key, max_bytes, rows_body))
    return out


def _fit(
    events: Sequence[EncodedEvent], key: str | None, max_bytes: int, encode: Any
) -> list[Envelope]:
    body: bytes = encode(events)
    if len(body) <= max_bytes or len(events) == 1:
        return [Envelope(key=key, body=body, count=len(events))]
    half = len(events) // 2
    return _fit(events[:half], key, max_bytes, encode) + _fit(events[half:], key, max_bytes, encode)
