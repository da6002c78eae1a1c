"""One mixed stream, every wire form and every fast path: the same windows and dead letters.

The stream holds what the decoder and the pipeline must sort out: malformed messages, null
and missing features, values of the wrong type, unseen and numeric categories, duplicate
ids (inside a batch and across batches), late and future events, bad timestamps, an unknown
deployment, two deployments with different windows, events on both sides of window bounds.
It is sent in the same batches as single-event messages, as row envelopes and as columnar
envelopes, and once more as single-event messages with the decoder's and pipeline's fast
paths switched off (each then takes its per-value way, the reference): the written results
and the dead letters (reason, detail, deployment, event) must be identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import detectors.binning
import engine.decode
import engine.dedup
from engine.deadletter import MemoryDeadLetters
from engine.pipeline import Pipeline
from engine.sinks import MemorySink
from tests.engine.helpers import NOW, T0, monitor

MINUTE = 60_000
FEATURES = ("x", "y", "c")

number = st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 6))
x_value = st.one_of(
    number,
    number,
    number,
    st.integers(-3, 3),
    st.none(),
    st.sampled_from(["1.5", True, [1.0]]),  # wrong types
)
c_value = st.one_of(
    st.sampled_from(["a", "b"]),
    st.sampled_from(["a", "b"]),
    st.sampled_from(["z", "", 3, 2.5, False, None]),  # unseen, empty, numbers, booleans, null
    st.just({"k": 1}),  # wrong type
)
ts_value = st.one_of(
    st.integers(0, 6 * MINUTE - 1).map(lambda t: T0 + t),
    st.integers(0, 6 * MINUTE - 1).map(lambda t: T0 + t),
    st.just(T0 - 10 * MINUTE),  # late once a window has closed
    st.just(NOW + 3_600_000),  # future
    st.sampled_from(["2025-11-27T10:01:30Z", "yesterday", None, 1.5e12]),
)


@st.composite
def events(draw: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": draw(st.one_of(st.integers(0, 40).map(lambda i: f"e{i}"), st.just(""))),
        "ts": draw(ts_value),
        "deployment": draw(st.sampled_from(["d", "d", "d", "h", "zz", None])),
        "prediction": draw(st.one_of(number, st.none(), st.just("yes"))),
        "latency_ms": draw(st.one_of(st.floats(0, 50), st.just(-1.0), st.none())),
    }
    features = {}
    for name in FEATURES:
        if draw(st.integers(0, 9)):  # one in ten: the feature is absent
            features[name] = draw(c_value if name == "c" else x_value)
    event["features"] = features
    if draw(st.integers(0, 5)) == 0:
        event["error"] = draw(st.sampled_from([True, False, None, "no"]))
    if draw(st.integers(0, 5)) == 0:
        event["request_id"] = draw(st.sampled_from(["r1", None, ""]))
    return event


message = st.one_of(
    events(),
    events(),
    events(),
    events(),
    st.sampled_from([b"{not json", b"[1, 2]", b'"text"']),
)


def pipeline() -> tuple[Pipeline, MemorySink, MemoryDeadLetters]:
    sink, dead = MemorySink(), MemoryDeadLetters()
    monitors = [
        monitor(min_samples=3),
        monitor(
            deployment="h",
            window={"kind": "hopping", "size": "2m", "step": "1m"},
            allowed_lateness="30s",
            min_samples=3,
        ),
    ]
    p = Pipeline(
        organization="o", monitors=monitors, sink=sink, dead_letters=dead, clock=lambda: NOW
    )
    return p, sink, dead


def single(batch: list[Any]) -> list[bytes]:
    return [m if isinstance(m, bytes) else orjson.dumps(m) for m in batch]


def row_envelope(batch: list[Any]) -> list[bytes]:
    events_ = [m for m in batch if not isinstance(m, bytes)]
    raw = [m for m in batch if isinstance(m, bytes)]
    return [*raw, orjson.dumps({"schema_version": 1, "events": events_})] if events_ else raw


def columnar(batch: list[Any]) -> list[bytes]:
    events_ = [m for m in batch if not isinstance(m, bytes)]
    raw = [m for m in batch if isinstance(m, bytes)]
    if not events_:
        return raw
    fields = ("event_id", "ts", "deployment", "prediction", "latency_ms", "error", "request_id")
    columns: dict[str, Any] = {f: [e.get(f) for e in events_] for f in fields}
    columns["features"] = {n: [e["features"].get(n) for e in events_] for n in FEATURES}
    return [*raw, orjson.dumps({"schema_version": 1, "columns": columns})]


def run(batches: list[list[Any]], form: Any) -> tuple[Any, ...]:
    """Counts, results as comparable bytes, dead letters as (reason, detail, deployment, event)."""
    p, sink, dead = pipeline()
    counts = np.zeros(4, dtype=np.int64)
    for batch in batches:
        report = p.ingest(form(batch))
        counts += (report.accepted, report.rejected, report.duplicates, report.late)
    p.flush()
    results = [
        orjson.dumps(r.tables(), option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        for r in sink.results
    ]
    letters = sorted(
        (str(d.reason), d.detail, d.deployment, _event_of(d.payload)) for d in dead.letters
    )
    return counts.tolist(), results, letters


def _event_of(payload: bytes) -> str:
    """The refused event, the same whatever its wire form (columnar payloads are flattened)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode()
    if not isinstance(body, dict):
        return payload.decode()
    features = {k[9:]: v for k, v in body.items() if k.startswith("features.")}
    features |= body.get("features") or {}
    flat = {k: v for k, v in body.items() if v is not None and not k.startswith("features")}
    features = {k: v for k, v in features.items() if v is not None}
    return orjson.dumps(flat | {"features": features}, option=orjson.OPT_SORT_KEYS).decode()


def slow_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the fast paths off: each decoder and pipeline step takes its per-value way."""

    def no_itemgetter(*_: str) -> Any:
        def lookup(_: dict[str, Any]) -> Any:
            raise KeyError("fast path off")

        return lookup

    monkeypatch.setattr(engine.decode, "itemgetter", no_itemgetter)  # and the number block
    monkeypatch.setattr(engine.decode, "_single_predictions", lambda *_: None)
    monkeypatch.setattr(engine.dedup, "_all_new", lambda *_: None)
    monkeypatch.setattr(detectors.binning._Grid, "MAX_ROWS", 0)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    stream=st.lists(message, min_size=1, max_size=120),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=8),
)
def test_every_wire_form_and_the_per_value_paths_give_the_same_windows_and_dead_letters(
    stream: list[Any], cuts: list[int]
) -> None:
    batches, at = [], 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        if at >= len(stream):
            break
        batches.append(stream[at : at + size])
        at += size
    expected = run(batches, single)
    assert run(batches, row_envelope) == expected
    assert run(batches, columnar) == expected
    with pytest.MonkeyPatch.context() as monkeypatch:
        slow_paths(monkeypatch)
        assert run(batches, single) == expected


def test_the_mixed_stream_reaches_every_case() -> None:
    """The cases the property test relies on do occur: late, duplicate, each refusal."""
    rng = np.random.default_rng(0)
    stream: list[Any] = []
    for i in range(400):
        ts = T0 + int(rng.integers(0, 6 * MINUTE))
        stream.append(
            {
                "event_id": f"e{i % 300}",  # repeats of the same deployment's ids
                "ts": ts if i < 380 else T0 - 10 * MINUTE,  # 20 late
                "deployment": ["d", "h", "zz"][i % 3],
                "prediction": 0.5,
                "features": {"x": float(rng.normal()), "y": 1.0, "c": ["a", "z", 3][i % 3]},
            }
        )
    stream[7] = b"{not json"
    stream[9]["features"]["x"] = "1.5"
    batches = [stream[i : i + 100] for i in range(0, 400, 100)]
    counts, results, letters = run(batches, single)
    reasons = {reason for reason, *_ in letters}
    assert {"malformed", "late", "wrong_type", "unknown_deployment"} <= reasons
    assert counts[2] > 0  # duplicates
    assert len(results) >= 4
    assert run(batches, columnar) == (counts, results, letters)


# -- the column converters' fast paths against their per-value rules ----------------------

json_value = st.one_of(
    st.text(max_size=3),
    st.just(""),
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just({"k": 1}),  # not a list: numpy would make a column of lists 2-D
)


def strings_per_value(values: list[Any], required: bool) -> tuple[list[Any], list[bool]]:
    """The rule, value by value: non-empty text, or None if optional; anything else is bad
    (an empty string too, whether or not the column also holds None)."""
    bad = [not (isinstance(v, str) and v) and (v is not None or required) for v in values]
    return [None if b else v for v, b in zip(values, bad, strict=True)], bad


@settings(max_examples=300, deadline=None)
@given(
    values=st.one_of(
        st.lists(json_value, min_size=1, max_size=12),
        st.lists(st.one_of(st.text(max_size=2), st.none()), min_size=1, max_size=12),
        st.lists(st.one_of(st.booleans(), st.none()), min_size=1, max_size=12),
    ),
    required=st.booleans(),
)
def test_column_converters_fast_paths_follow_the_per_value_rules(
    values: list[Any], required: bool
) -> None:
    from engine import columns as col

    out, bad = col.strings(values, required=required)
    expected_out, expected_bad = strings_per_value(values, required)
    assert out.tolist() == expected_out
    assert bad.tolist() == expected_bad
    flags, bad = col.flags(values)
    assert flags.tolist() == [v is True for v in values]
    assert bad.tolist() == [not (v is None or isinstance(v, bool)) for v in values]
    assert col.is_none(values).tolist() == [v is None for v in values]
    assert col.is_none(np.array([*values, None], dtype=object)[:-1]).tolist() == [
        v is None for v in values
    ]
