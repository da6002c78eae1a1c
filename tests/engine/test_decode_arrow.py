"""Arrow IPC payloads decode like the columnar JSON envelope of the same values.

The Arrow path types columns without Python objects (engine.arrow_columns); the JSON
envelope goes value by value through engine.columns. For random typed columns (nulls,
NaN and infinities, empty and missing text, dictionary-encoded or plain text, timestamps
of several units, unknown deployments) both must accept the same rows with the same
values and refuse the same rows for the same reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import CategoryCodes, WindowSketch
from engine.decode import DecodeContext, Decoded, FeatureSchema, decode
from tests.engine.helpers import NOW, T0, profile

SCHEMAS = {
    "d": FeatureSchema(numeric=("x", "y"), categorical=("c",)),
    "h": FeatureSchema(numeric=("x",), categorical=()),
}


def context() -> DecodeContext:
    return DecodeContext(schemas=SCHEMAS, source="test", now_ms=NOW)


def ipc(table: pa.Table, *, file: bool = False) -> bytes:
    sink = pa.BufferOutputStream()
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=7):  # several record batches
            writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def envelope(columns: dict[str, list[Any]]) -> bytes:
    flat = {k: v for k, v in columns.items() if not k.startswith("features.")}
    features = {k[9:]: v for k, v in columns.items() if k.startswith("features.")}
    return orjson.dumps({"schema_version": 1, "columns": flat | {"features": features}})


def summary(decoded: Decoded) -> tuple[Any, ...]:
    predictions = []
    for rows in decoded.predictions:
        categorical = {
            k: v.tolist() for k, v in rows.categorical.items()
        }  # CategoryCodes or objects alike
        predictions.append(
            (
                rows.deployment,
                rows.event_id.tolist(),
                rows.ts_ms.tolist(),
                {k: v.tolist() for k, v in rows.numeric.items()},
                categorical,
                rows.prediction_value.tolist(),
                rows.latency_ms.tolist(),
                rows.error.tolist(),
                rows.request_id.tolist(),
            )
        )
    letters = sorted((str(d.reason), d.detail, d.deployment) for d in decoded.dead)
    return repr(predictions), letters


number = st.one_of(
    st.floats(-5, 5, allow_nan=False), st.none(), st.just(float("nan")), st.just(float("inf"))
)
ts_unit = st.sampled_from(["int", "float", "ms", "us", "ns", "s"])


@st.composite
def table_columns(draw: Any) -> tuple[dict[str, list[Any]], dict[str, pa.DataType], bool]:
    n = draw(st.integers(1, 30))
    unit = draw(ts_unit)
    offsets = draw(st.lists(st.integers(0, 600_000), min_size=n, max_size=n))
    ts: list[Any] = [T0 + o for o in offsets]
    if draw(st.booleans()):
        ts[draw(st.integers(0, n - 1))] = None
    columns: dict[str, list[Any]] = {
        "event_id": draw(
            st.lists(st.sampled_from(["e1", "e2", "e3", "", None]), min_size=n, max_size=n)
        ),
        "ts": ts,
        "deployment": draw(
            st.lists(st.sampled_from(["d", "d", "h", "zz", "", None]), min_size=n, max_size=n)
        ),
        "prediction": draw(
            st.lists(st.one_of(st.floats(-5, 5), st.none()), min_size=n, max_size=n)
        ),
        "latency_ms": draw(st.lists(st.sampled_from([1.5, -1.0, None]), min_size=n, max_size=n)),
        "error": draw(st.lists(st.sampled_from([True, False, None]), min_size=n, max_size=n)),
        "features.x": draw(st.lists(number, min_size=n, max_size=n)),
        "features.y": draw(
            st.lists(st.one_of(st.integers(-3, 3), st.none()), min_size=n, max_size=n)
        ),
        "features.c": draw(
            st.lists(st.sampled_from(["a", "b", "z", "", None]), min_size=n, max_size=n)
        ),
    }
    types = {
        "ts": {
            "int": pa.int64(),
            "float": pa.float64(),
            "ms": pa.timestamp("ms", "UTC"),
            "us": pa.timestamp("us"),
            "ns": pa.timestamp("ns", "UTC"),
            "s": pa.timestamp("s", "UTC"),
        }[unit],
        "features.y": pa.int32(),
    }
    if unit == "s":  # whole seconds, so that the JSON form holds the same instants
        columns["ts"] = [None if t is None else t // 1000 for t in ts]
    elif unit in ("us", "ns"):
        per_ms = 1_000 if unit == "us" else 1_000_000
        columns["ts"] = [None if t is None else t * per_ms + 7 for t in ts]  # truncated
    return columns, types, draw(st.booleans())


def as_json_ts(columns: dict[str, list[Any]], kind: pa.DataType) -> list[Any]:
    """Epoch milliseconds (an Arrow timestamp of a finer unit truncated, as the engine does)."""
    ts = columns["ts"]
    if pa.types.is_timestamp(kind):
        if kind.unit == "s":
            return [None if t is None else t * 1000 for t in ts]
        per_ms = {"ms": 1, "us": 1_000, "ns": 1_000_000}[kind.unit]
        return [None if t is None else t // per_ms for t in ts]
    return [None if t is None else (float(t) if pa.types.is_floating(kind) else t) for t in ts]


@settings(max_examples=150, deadline=None)
@given(drawn=table_columns(), dictionaries=st.booleans())
def test_an_arrow_payload_decodes_like_the_json_envelope_of_its_values(
    drawn: tuple[dict[str, list[Any]], dict[str, pa.DataType], bool], dictionaries: bool
) -> None:
    columns, types, file = drawn
    arrays = {k: pa.array(v, type=types.get(k)) for k, v in columns.items()}
    if dictionaries:
        for name in ("deployment", "features.c", "event_id"):
            arrays[name] = arrays[name].dictionary_encode()
    arrow = ipc(pa.table(arrays), file=file)
    json_columns = dict(columns) | {"ts": as_json_ts(columns, types["ts"])}
    # NaN and infinities are not JSON: that form sends a string, refused the same way
    json_columns["features.x"] = [
        v if v is None or np.isfinite(v) else "bad" for v in columns["features.x"]
    ]
    from_arrow = decode([arrow], context())
    from_json = decode([envelope(json_columns)], context())
    assert summary(from_arrow) == summary(from_json)


def test_a_float64_column_without_nulls_is_read_in_place() -> None:
    n = 1000
    table = pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "ts": pa.array([T0 + i for i in range(n)], pa.int64()),
            "deployment": pa.array(["d"] * n).dictionary_encode(),
            "features.x": np.linspace(0, 1, n),
            "features.y": np.linspace(1, 2, n),
            "features.c": pa.array(["a", "b"] * (n // 2)).dictionary_encode(),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    [rows] = decode([payload], context()).predictions
    start = np.frombuffer(payload, dtype=np.uint8).ctypes.data
    for column in (rows.numeric["x"], rows.ts_ms):
        assert start <= column.ctypes.data < start + len(payload)  # a view, no copy
    assert rows.numeric["x"].tolist() == np.linspace(0, 1, n).tolist()
    assert isinstance(rows.categorical["c"], CategoryCodes)
    assert rows.categorical["c"].tolist() == ["a", "b"] * (n // 2)


def test_category_codes_count_like_their_texts_in_a_sketch() -> None:
    reference = profile()
    texts = np.array(["a", None, "b", "zz", "a", "", None, "zz"], dtype=object)
    # a dictionary that repeats a text and holds a null entry, as Arrow allows
    codes = CategoryCodes(np.array([0, -1, 1, 2, 3, 4, -1, 2]), ("a", "b", "zz", "a", ""))
    numeric = {"x": np.arange(8.0), "y": np.ones(8)}
    by_text = WindowSketch.empty(reference).update(numeric | {"c": texts})
    by_code = WindowSketch.empty(reference).update(numeric | {"c": codes})
    assert by_code.to_dict() == by_text.to_dict()
    assert codes[np.array([True, False] * 4)].tolist() == ["a", "b", "a", None]


def test_a_refused_arrow_row_is_dead_lettered_with_its_values() -> None:
    table = pa.table(
        {
            "event_id": ["e1", "e2"],
            "ts": pa.array([T0, T0 + 1], pa.timestamp("ms", "UTC")),
            "deployment": ["d", "d"],
            "features.x": [1.0, float("inf")],
        }
    )
    decoded = decode([ipc(table)], context())
    [letter] = decoded.dead
    assert (str(letter.reason), letter.detail) == ("wrong_type", "features.x: expected a number")
    body = orjson.loads(letter.payload)
    assert body["event_id"] == "e2"
    assert body["ts"] == "2025-11-27T10:00:00.001000+00:00"
    assert [len(p) for p in decoded.predictions] == [1]
