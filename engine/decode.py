"""Decode payloads in batches into typed columns; refuse bad events with a reason.

A batch of raw messages (any mix of wire forms, see :mod:`engine.events`) becomes, per
deployment, one :class:`PredictionColumns` (and label / resource columns): numpy arrays, one
entry per accepted event. Each message is parsed on its own (a malformed message is refused
alone, never its neighbours); values are then converted column by column in bulk
(:mod:`engine.columns`). Features are typed by the deployment's monitor: features it does
not monitor are ignored, a monitored feature absent from an event is a missing value.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa
from numpy.typing import NDArray

from detectors import CategoryCodes
from engine import arrow_columns
from engine import columns as col
from engine.deadletter import DeadLetter
from engine.events import MAX_EVENT_BYTES, SCHEMA_VERSION, EventType, Reason


@dataclass(frozen=True)
class FeatureSchema:
    """The features a deployment's monitor watches, by type."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]


@dataclass(frozen=True)
class DecodeContext:
    """What decoding needs to know besides the payloads."""

    schemas: Mapping[str, FeatureSchema]
    source: str
    now_ms: int
    max_future_ms: int = 5 * 60 * 1000
    max_event_bytes: int = MAX_EVENT_BYTES

    @cached_property
    def numeric_names(self) -> tuple[str, ...]:
        """Features numeric for every monitor watching them (sorted): decoded as one block."""
        categorical = {name for schema in self.schemas.values() for name in schema.categorical}
        numeric = {name for schema in self.schemas.values() for name in schema.numeric}
        return tuple(sorted(numeric - categorical))

    @cached_property
    def feature_names(self) -> frozenset[str]:
        """Every feature some monitor watches: the only ones worth decoding."""
        return frozenset(
            name
            for schema in self.schemas.values()
            for name in (*schema.numeric, *schema.categorical)
        )


@dataclass
class PredictionColumns:
    """Accepted prediction events of one deployment, as columns."""

    deployment: str
    event_id: NDArray[np.object_]
    ts_ms: NDArray[np.int64]
    numeric: dict[str, NDArray[np.float64]]
    categorical: dict[str, NDArray[np.object_] | CategoryCodes]
    prediction_value: NDArray[np.float64]
    prediction_class: NDArray[np.object_]
    label: NDArray[np.object_]
    latency_ms: NDArray[np.float64]
    request_id: NDArray[np.object_]
    error: NDArray[np.bool_]
    metrics: dict[str, NDArray[np.float64]]
    payload: Callable[[int], bytes]

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    def take(self, rows: NDArray[np.intp]) -> PredictionColumns:
        """The same columns restricted to ``rows``."""
        payload = self.payload
        return PredictionColumns(
            deployment=self.deployment,
            event_id=self.event_id[rows],
            ts_ms=self.ts_ms[rows],
            numeric={k: v[rows] for k, v in self.numeric.items()},
            categorical={k: v[rows] for k, v in self.categorical.items()},
            prediction_value=self.prediction_value[rows],
            prediction_class=self.prediction_class[rows],
            label=self.label[rows],
            latency_ms=self.latency_ms[rows],
            request_id=self.request_id[rows],
            error=self.error[rows],
            metrics={k: v[rows] for k, v in self.metrics.items()},
            payload=lambda i: payload(int(rows[i])),
        )


@dataclass
class LabelColumns:
    """Accepted label events of one deployment."""

    deployment: str
    request_id: NDArray[np.object_]
    label: NDArray[np.object_]
    ts_ms: NDArray[np.int64]
    payload: Callable[[int], bytes]


@dataclass
class ResourceColumns:
    """Accepted resource events of one deployment."""

    deployment: str
    ts_ms: NDArray[np.int64]
    values: dict[str, NDArray[np.float64]]


@dataclass
class Decoded:
    """Everything one batch of payloads decoded into."""

    predictions: list[PredictionColumns] = field(default_factory=list)
    labels: list[LabelColumns] = field(default_factory=list)
    resources: list[ResourceColumns] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """Events accepted, of every type."""
        return (
            sum(len(p) for p in self.predictions)
            + sum(len(label.ts_ms) for label in self.labels)
            + sum(len(r.ts_ms) for r in self.resources)
        )


@dataclass
class _Chunk:
    """Raw values of one event type, column by column, before typing."""

    columns: dict[str, col.Column]
    payload: Callable[[int], bytes]
    n: int


_ROW_FIELDS = {
    EventType.PREDICTION: (
        "event_id", "ts", "deployment", "prediction", "label", "latency_ms", "request_id", "error",
    ),
    EventType.LABEL: ("deployment", "request_id", "label", "ts"),
    EventType.RESOURCE: ("deployment", "ts", "cpu", "memory_mb", "gpu", "replicas"),
}  # fmt: skip
_RESOURCES = ("cpu", "memory_mb", "gpu", "replicas")
_ARROW_MAGIC = (b"ARROW1", b"\xff\xff\xff\xff")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is decoded.

    Parsing allocates about a million small, acyclic objects per 50,000 events; each
    allocation burst would trigger collections that re-scan every one of them (measured:
    decoding ran 3-5x slower). Nothing decoded here forms a cycle, so pausing is safe.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode(payloads: Sequence[bytes], context: DecodeContext) -> Decoded:
    """Decode ``payloads`` (any wire forms) into accepted columns and dead letters."""
    with _collector_paused():
        return _decode(payloads, context)


def _decode(payloads: Sequence[bytes], context: DecodeContext) -> Decoded:
    out = Decoded()
    rows: dict[EventType, list[tuple[dict[str, Any], bytes | None]]] = {t: [] for t in EventType}
    chunks: dict[EventType, list[_Chunk]] = {t: [] for t in EventType}
    singles = _single_predictions(payloads, context)
    if singles is not None:
        rows[EventType.PREDICTION] = singles
    else:
        for payload in payloads:
            _split(payload, context, rows, chunks, out.dead)
    for kind in EventType:
        if rows[kind]:
            chunks[kind].append(_rows_chunk(kind, rows[kind], context))
        for chunk in chunks[kind]:
            _type_chunk(kind, chunk, context, out)
    return out


def _single_predictions(
    payloads: Sequence[bytes], context: DecodeContext
) -> list[tuple[dict[str, Any], bytes | None]] | None:
    """``[(event, payload), ...]`` when every payload is one prediction event, else ``None``.

    The usual batch of a single-event producer, parsed and routed in a few C-level passes
    instead of :func:`_split`'s per-message Python. Any payload that is not JSON, not an
    object, oversized, an envelope or another event type answers ``None``: the batch then
    goes message by message, which refuses exactly those messages.
    """
    if not payloads or max(map(len, payloads)) > context.max_event_bytes:
        return None
    try:
        events = list(map(orjson.loads, payloads))
    except orjson.JSONDecodeError:
        return None
    if not _all_predictions(events):
        return None
    for key in ("events", "columns"):
        if any(map(dict.__contains__, events, repeat(key))):
            return None
    return list(zip(events, payloads, strict=True))


def _all_predictions(events: list[Any]) -> bool:
    """Whether every item is a JSON object of type prediction (by default or explicitly)."""
    if set(map(type, events)) != {dict}:
        return False
    try:
        kinds = set(map(dict.get, events, repeat("type"), repeat(EventType.PREDICTION)))
    except TypeError:  # an unhashable type (a list, an object): refused event by event
        return False
    return kinds == {EventType.PREDICTION}  # an explicit null type is refused, too


def _letter(
    context: DecodeContext, reason: Reason, detail: str, payload: bytes, deployment: Any = ""
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        detail=detail,
        payload=payload,
        source=context.source,
        received_at_ms=context.now_ms,
        deployment=deployment if isinstance(deployment, str) else "",
    )


def _split(
    payload: bytes,
    context: DecodeContext,
    rows: dict[EventType, list[tuple[dict[str, Any], bytes | None]]],
    chunks: dict[EventType, list[_Chunk]],
    dead: list[DeadLetter],
) -> None:
    """Route one message: a single event, a row envelope, a columnar envelope or Arrow IPC."""
    if payload.startswith(_ARROW_MAGIC):  # file or stream format
        chunk = _arrow_chunk(payload, context, dead)
        if chunk is not None:
            chunks[EventType.PREDICTION].append(chunk)
        return
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        dead.append(_letter(context, Reason.MALFORMED, f"not JSON: {error}", payload))
        return
    if not isinstance(message, dict):
        dead.append(_letter(context, Reason.MALFORMED, "an event is a JSON object", payload))
        return
    if "events" in message or "columns" in message:
        _envelope(message, payload, context, rows, chunks, dead)
        return
    if len(payload) > context.max_event_bytes:
        detail = f"{len(payload)} bytes, limit {context.max_event_bytes}"
        dead.append(_letter(context, Reason.OVERSIZED, detail, payload, message.get("deployment")))
        return
    _route_row(message, payload, context, rows, dead)


def _route_row(
    event: Any,
    payload: bytes | None,
    context: DecodeContext,
    rows: dict[EventType, list[tuple[dict[str, Any], bytes | None]]],
    dead: list[DeadLetter],
) -> None:
    if not isinstance(event, dict):
        raw = payload if payload is not None else orjson.dumps(event)
        dead.append(_letter(context, Reason.MALFORMED, "an event is a JSON object", raw))
        return
    kind = event.get("type", EventType.PREDICTION)
    if not isinstance(kind, str) or kind not in _ROW_FIELDS:
        raw = payload if payload is not None else orjson.dumps(event)
        detail = f"type {kind!r} is not one of {', '.join(EventType)}"
        dead.append(_letter(context, Reason.UNKNOWN_TYPE, detail, raw, event.get("deployment")))
        return
    rows[cast("EventType", kind)].append((event, payload))  # a StrEnum key: the text finds it


def _envelope(
    message: dict[str, Any],
    payload: bytes,
    context: DecodeContext,
    rows: dict[EventType, list[tuple[dict[str, Any], bytes | None]]],
    chunks: dict[EventType, list[_Chunk]],
    dead: list[DeadLetter],
) -> None:
    version = message.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        detail = f"schema_version {version!r}, this engine reads {SCHEMA_VERSION}"
        dead.append(_letter(context, Reason.SCHEMA_VERSION, detail, payload))
        return
    if "events" in message:
        events = message["events"]
        if not isinstance(events, list):
            dead.append(_letter(context, Reason.MALFORMED, "events must be a list", payload))
            return
        if events and len(payload) > context.max_event_bytes * len(events):
            dead.append(_letter(context, Reason.OVERSIZED, "envelope too large", payload))
            return
        if _all_predictions(events):  # the usual envelope: no per-event routing
            rows[EventType.PREDICTION].extend(zip(events, repeat(None)))
            return
        for event in events:
            _route_row(event, None, context, rows, dead)
        return
    chunk = _columnar_chunk(message, payload, context, dead)
    if chunk is not None:
        kind = message.get("type", EventType.PREDICTION)
        if not isinstance(kind, str) or kind not in _ROW_FIELDS:
            detail = f"type {kind!r} is not one of {', '.join(EventType)}"
            dead.append(_letter(context, Reason.UNKNOWN_TYPE, detail, payload))
            return
        chunks[EventType(kind)].append(chunk)


def _columnar_chunk(
    message: dict[str, Any], payload: bytes, context: DecodeContext, dead: list[DeadLetter]
) -> _Chunk | None:
    columns = message.get("columns")
    if not isinstance(columns, dict):
        dead.append(_letter(context, Reason.MALFORMED, "columns must be an object", payload))
        return None
    flat: dict[str, col.Column] = {}
    for name, values in columns.items():
        if isinstance(values, dict) and name in ("features", "metrics"):
            flat.update({f"{name}.{k}": v for k, v in values.items()})
        else:
            flat[name] = values
    lengths = {len(v) if isinstance(v, list) else -1 for v in flat.values()}
    if len(lengths) != 1 or -1 in lengths:
        dead.append(
            _letter(context, Reason.MALFORMED, "columns must be lists of one length", payload)
        )
        return None
    n = lengths.pop()
    if n and len(payload) > context.max_event_bytes * n:
        dead.append(_letter(context, Reason.OVERSIZED, "envelope too large", payload))
        return None
    return _Chunk(flat, lambda i: orjson.dumps({k: v[i] for k, v in flat.items()}), n)


def _arrow_chunk(payload: bytes, context: DecodeContext, dead: list[DeadLetter]) -> _Chunk | None:
    try:
        reader = (
            pa.ipc.open_file(pa.BufferReader(payload))
            if payload[:6] == b"ARROW1"
            else pa.ipc.open_stream(pa.BufferReader(payload))
        )
        table = reader.read_all()
    except (pa.ArrowInvalid, OSError) as error:
        dead.append(_letter(context, Reason.MALFORMED, f"unreadable Arrow IPC: {error}", payload))
        return None
    if any(c.num_chunks > 1 for c in table.columns):  # several record batches: one array each
        table = table.unify_dictionaries()
    flat: dict[str, col.Column] = {
        # combine_chunks copies even a single chunk: take that one as it is, in place
        name: column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        for name, column in zip(table.column_names, table.columns, strict=True)
    }

    def payload_of(i: int) -> bytes:
        event = {k: cast("pa.Array", v)[i].as_py() for k, v in flat.items()}
        return orjson.dumps(event, default=str)  # decimals, bytes: as text

    return _Chunk(flat, payload_of, table.num_rows)


def _rows_chunk(
    kind: EventType, items: list[tuple[dict[str, Any], bytes | None]], context: DecodeContext
) -> _Chunk:
    """Columns from row events: only the fields and monitored features anyone reads."""
    events = [event for event, _ in items]
    flat: dict[str, col.Column] = {
        name: list(map(dict.get, events, repeat(name))) for name in _ROW_FIELDS[kind]
    }
    if kind is EventType.PREDICTION:
        for nested in ("features", "metrics"):
            maps = list(map(dict.get, events, repeat(nested), repeat(_NO_VALUES)))
            if not set(map(type, maps)) <= {dict}:
                maps = [m if isinstance(m, dict) else {} for m in maps]
            if nested == "metrics":
                flat.update(_transpose(maps, tuple(set().union(*maps)), "metrics."))
                continue
            numeric = context.numeric_names
            block = _number_block(maps, numeric, "features.")
            if block is None:
                flat.update(_transpose(maps, tuple(context.feature_names), "features."))
            else:
                flat.update(block)
                others = tuple(context.feature_names - set(numeric))
                flat.update(_transpose(maps, others, "features."))

    def payload(i: int) -> bytes:
        raw = items[i][1]
        return raw if raw is not None else orjson.dumps(items[i][0])

    return _Chunk(flat, payload, len(events))


def _transpose(
    maps: list[dict[str, Any]], names: tuple[str, ...], prefix: str
) -> dict[str, Sequence[Any]]:
    """``{prefix + name: [m.get(name) for m in maps]}`` for every name.

    When every map holds every name (events carrying all their features, the usual case)
    one C-level lookup per event takes them all and ``zip`` turns rows into columns;
    otherwise each name is looked up on its own, a missing one giving ``None``.
    """
    if not names:
        return {}
    try:
        rows = list(map(itemgetter(*names), maps))
    except KeyError:
        return {prefix + name: list(map(dict.get, maps, repeat(name))) for name in names}
    columns = [rows] if len(names) == 1 else list(zip(*rows, strict=True))
    return {prefix + name: column for name, column in zip(names, columns, strict=True)}


_NO_VALUES: dict[str, Any] = {}  # an event's absent "features" or "metrics" (only read)
_NUMBER_KINDS = {float, int, type(None)}


def _number_block(
    maps: list[dict[str, Any]], names: tuple[str, ...], prefix: str
) -> dict[str, col.Column] | None:
    """The ``names`` of every map as float64 columns (NaN for null), in one conversion.

    For events that carry every one of these features as a JSON number or null (the usual
    case): one C-level lookup per event, one type scan and one conversion for the whole
    block instead of one per feature. JSON has no NaN, so a NaN here is exactly a null
    (see :func:`engine.columns.numbers`). ``None`` when a feature is absent from an event or
    a value is of another type: then the features go column by column.
    """
    if not names:
        return {}
    try:
        rows = list(map(itemgetter(*names), maps))
    except KeyError:
        return None
    values = rows if len(names) == 1 else chain.from_iterable(rows)
    kinds = set(map(type, values))
    if not kinds <= _NUMBER_KINDS:
        return None
    if type(None) in kinds:
        matrix = np.array(rows, dtype=np.float64)  # None -> NaN
    else:  # a third cheaper than numpy.array on nested tuples
        flat = rows if len(names) == 1 else chain.from_iterable(rows)
        matrix = np.fromiter(flat, dtype=np.float64, count=len(maps) * len(names))
    matrix = matrix.reshape(len(maps), len(names))
    columns = np.ascontiguousarray(matrix.T)
    return {prefix + name: columns[j] for j, name in enumerate(names)}


class _Rows:
    """Tracks which rows of a chunk are still accepted, dead-lettering the others once."""

    def __init__(
        self, chunk: _Chunk, context: DecodeContext, deployments: NDArray[np.object_]
    ) -> None:
        self.chunk, self.context, self.deployments = chunk, context, deployments
        self.ok = np.ones(chunk.n, dtype=bool)
        self.dead: list[DeadLetter] = []

    def refuse(self, bad: NDArray[np.bool_], reason: Reason, detail: str) -> None:
        if not bad.any():  # the usual case: one cheap pass
            return
        for i in np.flatnonzero(bad & self.ok):
            self.dead.append(
                _letter(
                    self.context, reason, detail, self.chunk.payload(int(i)), self.deployments[i]
                )
            )
        self.ok &= ~bad


def _column(chunk: _Chunk, name: str) -> col.Column:
    """The chunk's column ``name``; an absent one is all nulls (an Arrow null array: free)."""
    values = chunk.columns.get(name)
    return pa.nulls(chunk.n) if values is None or len(values) == 0 else values


def _type_chunk(kind: EventType, chunk: _Chunk, context: DecodeContext, out: Decoded) -> None:
    if chunk.n == 0:
        return
    deployment, bad_deployment = col.strings(
        _column(chunk, "deployment"), required=True, repeated=True
    )
    rows = _Rows(chunk, context, deployment)
    rows.refuse(bad_deployment, Reason.MISSING_FIELD, "deployment: a non-empty string is required")
    if context.schemas.keys() >= set(deployment.tolist()):
        known = np.ones(chunk.n, dtype=bool)
    else:
        known = np.array([d in context.schemas for d in deployment], dtype=bool)
    rows.refuse(~known, Reason.UNKNOWN_DEPLOYMENT, "no monitor for this deployment")
    ts, bad_ts = col.timestamps(_column(chunk, "ts"))
    rows.refuse(bad_ts, Reason.BAD_TIMESTAMP, "ts: RFC 3339 text or epoch milliseconds required")
    future = ts > context.now_ms + context.max_future_ms
    rows.refuse(future, Reason.FUTURE_TIMESTAMP, "ts is too far in the future")
    if kind is EventType.PREDICTION:
        _predictions(chunk, rows, deployment, ts, out)
    elif kind is EventType.LABEL:
        request_id, bad = col.strings(_column(chunk, "request_id"), required=True)
        rows.refuse(bad, Reason.MISSING_FIELD, "request_id: a non-empty string is required")
        label = col.objects(_column(chunk, "label"))
        rows.refuse(col.is_none(label), Reason.MISSING_FIELD, "label is required")
        for name, where in _groups(deployment, rows.ok):
            out.labels.append(
                LabelColumns(name, request_id[where], label[where], ts[where], _sub(chunk, where))
            )
    else:
        values = {}
        for resource in _RESOURCES:
            values[resource], bad = col.numbers(
                _column(chunk, resource), required=resource in ("cpu", "memory_mb")
            )
            rows.refuse(bad, Reason.WRONG_TYPE, f"{resource}: expected a number")
        for name, where in _groups(deployment, rows.ok):
            out.resources.append(
                ResourceColumns(name, ts[where], {k: v[where] for k, v in values.items()})
            )
    out.dead.extend(rows.dead)


def _sub(chunk: _Chunk, where: NDArray[np.intp]) -> Callable[[int], bytes]:
    payload = chunk.payload  # not the chunk: its raw columns can go once typed
    return lambda i: payload(int(where[i]))


def _groups(
    deployment: NDArray[np.object_], ok: NDArray[np.bool_]
) -> list[tuple[str, NDArray[np.intp]]]:
    accepted = np.flatnonzero(ok)
    if accepted.size == 0:
        return []
    one = set(deployment[accepted].tolist())
    if len(one) == 1:  # one deployment: no sort
        (name,) = one
        return [(str(name), accepted)]
    # on the object array: numpy text ("U") would drop trailing NULs and merge deployments
    names, inverse = np.unique(deployment[accepted], return_inverse=True)
    return [(str(name), accepted[inverse == g]) for g, name in enumerate(names)]


def _predictions(
    chunk: _Chunk, rows: _Rows, deployment: NDArray[np.object_], ts: NDArray[np.int64], out: Decoded
) -> None:
    event_id, bad = col.strings(_column(chunk, "event_id"), required=True)
    rows.refuse(bad, Reason.MISSING_FIELD, "event_id: a non-empty string is required")
    latency, bad = col.numbers(_column(chunk, "latency_ms"), required=False)
    rows.refuse(bad | (latency < 0), Reason.WRONG_TYPE, "latency_ms: expected a number >= 0")
    request_id, bad = col.strings(_column(chunk, "request_id"), required=False)
    rows.refuse(bad, Reason.WRONG_TYPE, "request_id: expected a string")
    error, bad = col.flags(_column(chunk, "error"))
    rows.refuse(bad, Reason.WRONG_TYPE, "error: expected true or false")
    value, klass, bad = _prediction_column(_column(chunk, "prediction"))
    rows.refuse(bad, Reason.WRONG_TYPE, "prediction: a number, a class or class probabilities")
    label = col.objects(_column(chunk, "label"))
    metric_names = sorted(k[8:] for k in chunk.columns if k.startswith("metrics."))
    metrics = {}
    for name in metric_names:
        metrics[name], bad = col.numbers(chunk.columns[f"metrics.{name}"], required=False)
        rows.refuse(bad, Reason.WRONG_TYPE, f"metrics.{name}: expected a number")
    groups = _groups(deployment, rows.ok)
    typed: list[tuple[str, NDArray[np.intp], dict[str, Any], dict[str, Any]]] = []
    for name, where in groups:
        schema = rows.context.schemas[name]
        numeric: dict[str, NDArray[np.float64]] = {}
        categorical: dict[str, NDArray[np.object_] | CategoryCodes] = {}
        whole = where.size == chunk.n
        for feature in schema.numeric:
            values = _column(chunk, f"features.{feature}")
            subset = values if whole else col.subset(values, where)
            numeric[feature], bad = col.numbers(subset, required=False)
            rows.refuse(
                _spread(bad, where, chunk.n),
                Reason.WRONG_TYPE,
                f"features.{feature}: expected a number",
            )
        for feature in schema.categorical:
            values = _column(chunk, f"features.{feature}")
            categorical[feature], bad = col.categories(
                values if whole else col.subset(values, where)
            )
            rows.refuse(
                _spread(bad, where, chunk.n),
                Reason.WRONG_TYPE,
                f"features.{feature}: expected a category",
            )
        typed.append((name, where, numeric, categorical))
    for name, where, numeric, categorical in typed:
        keep = rows.ok[where]
        rows_kept = where[keep]
        # every row kept: views, not copies (an Arrow payload's columns stay in its buffer)
        pick: slice | NDArray[np.intp] = slice(None) if rows_kept.size == chunk.n else rows_kept
        if not keep.all():
            numeric = {k: v[keep] for k, v in numeric.items()}
            categorical = {k: v[keep] for k, v in categorical.items()}
        out.predictions.append(
            PredictionColumns(
                deployment=name,
                event_id=event_id[pick],
                ts_ms=ts[pick],
                numeric=numeric,
                categorical=categorical,
                prediction_value=value[pick],
                prediction_class=klass[pick],
                label=label[pick],
                latency_ms=latency[pick],
                request_id=request_id[pick],
                error=error[pick],
                metrics={k: v[pick] for k, v in metrics.items()},
                payload=_sub(chunk, rows_kept),
            )
        )


def _spread(bad: NDArray[np.bool_], where: NDArray[np.intp], n: int) -> NDArray[np.bool_]:
    if where.size == n:  # every row: ``where`` is 0 .. n-1
        return bad
    full = np.zeros(n, dtype=bool)
    full[where] = bad
    return full


def _prediction_column(
    values: col.Column,
) -> tuple[NDArray[np.float64], NDArray[np.object_], NDArray[np.bool_]]:
    """Split predictions into a score (numbers; top probability) and a class (text; argmax)."""
    if isinstance(values, pa.Array):
        n = len(values)
        if pa.types.is_null(values.type) or arrow_columns.is_number(values.type):
            score = arrow_columns.floats(values)
            return score, np.full(n, None, dtype=object), np.zeros(n, bool)
        values = values.to_pylist()
    kinds = set(map(type, values))
    n = len(values)
    if kinds <= {float, int, type(None)}:
        return np.array(values, dtype=np.float64), np.full(n, None, dtype=object), np.zeros(n, bool)
    score = np.full(n, np.nan)
    klass = np.full(n, None, dtype=object)
    bad = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool):
            klass[i] = "true" if v else "false"
        elif isinstance(v, int | float):
            score[i] = v
        elif isinstance(v, str):
            klass[i] = v
        elif (
            isinstance(v, dict)
            and v
            and all(isinstance(p, int | float) and not isinstance(p, bool) for p in v.values())
        ):
            best = max(v, key=v.__getitem__)
            klass[i], score[i] = str(best), float(v[best])
        else:
            bad[i] = True
    return score, klass, bad
