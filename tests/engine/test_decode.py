import io

import numpy as np
import orjson
import pyarrow as pa
import pytest

from engine.decode import DecodeContext, FeatureSchema, decode
from engine.events import Reason
from tests.engine.helpers import NOW, T0

SCHEMAS = {"d": FeatureSchema(numeric=("x", "y"), categorical=("c",))}


def context(**kw):
    return DecodeContext(schemas=SCHEMAS, source="test", now_ms=NOW, **kw)


def good(i=0, **extra):
    body = {"event_id": f"e{i}", "ts": T0 + i, "deployment": "d", "features": {"x": 1.5, "c": "a"}}
    return body | extra


def reasons(decoded):
    return [(str(d.reason), d.detail) for d in decoded.dead]


def test_single_events_become_typed_columns():
    decoded = decode(
        [
            orjson.dumps(good(0, prediction=0.8, latency_ms=12, request_id="r0", error=True)),
            orjson.dumps(good(1, features={"x": None, "y": 2, "c": 7}, prediction="yes")),
        ],
        context(),
    )
    assert decoded.dead == []
    [rows] = decoded.predictions
    assert rows.event_id.tolist() == ["e0", "e1"]
    assert rows.ts_ms.tolist() == [T0, T0 + 1]
    np.testing.assert_array_equal(rows.numeric["x"], [1.5, np.nan])
    np.testing.assert_array_equal(rows.numeric["y"], [np.nan, 2.0])
    assert rows.categorical["c"].tolist() == ["a", "7"]
    np.testing.assert_array_equal(rows.prediction_value, [0.8, np.nan])
    assert rows.prediction_class.tolist() == [None, "yes"]
    assert rows.error.tolist() == [True, False]
    assert rows.request_id.tolist() == ["r0", None]


def test_timestamps_as_rfc3339_text_or_epoch_milliseconds():
    decoded = decode(
        [
            orjson.dumps(good(0, ts="2025-11-27T10:00:00Z")),
            orjson.dumps(good(1, ts="2025-11-27T11:00:00.250+01:00")),
            orjson.dumps(good(2, ts=T0 + 7)),
        ],
        context(),
    )
    assert decoded.predictions[0].ts_ms.tolist() == [T0, T0 + 250, T0 + 7]


def test_class_probabilities_give_the_top_class_and_its_score():
    decoded = decode([orjson.dumps(good(0, prediction={"no": 0.2, "yes": 0.8}))], context())
    rows = decoded.predictions[0]
    assert rows.prediction_class.tolist() == ["yes"]
    assert rows.prediction_value.tolist() == [0.8]


def test_row_envelope_columnar_envelope_and_arrow_decode_alike():
    events = [good(i, features={"x": float(i), "c": "b"}) for i in range(3)]
    row = orjson.dumps({"schema_version": 1, "events": events})
    columnar = orjson.dumps(
        {
            "schema_version": 1,
            "columns": {
                "event_id": [e["event_id"] for e in events],
                "ts": [e["ts"] for e in events],
                "deployment": ["d"] * 3,
                "features": {"x": [0.0, 1.0, 2.0], "c": ["b"] * 3},
            },
        }
    )
    table = pa.table(
        {
            "event_id": [e["event_id"] for e in events],
            "ts": [e["ts"] for e in events],
            "deployment": ["d"] * 3,
            "features.x": [0.0, 1.0, 2.0],
            "features.c": ["b"] * 3,
        }
    )
    stream, file = io.BytesIO(), io.BytesIO()
    with pa.ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    with pa.ipc.new_file(file, table.schema) as writer:
        writer.write_table(table)
    for payload in (row, columnar, stream.getvalue(), file.getvalue()):
        decoded = decode([payload], context())
        assert decoded.dead == []
        [rows] = decoded.predictions
        assert rows.event_id.tolist() == ["e0", "e1", "e2"]
        assert rows.numeric["x"].tolist() == [0.0, 1.0, 2.0]
        assert rows.categorical["c"].tolist() == ["b"] * 3


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"{not json", Reason.MALFORMED, "not JSON"),
        (b"[1, 2]", Reason.MALFORMED, "JSON object"),
        (orjson.dumps({"schema_version": 9, "events": []}), Reason.SCHEMA_VERSION, "9"),
        (orjson.dumps(good(0, type="weather")), Reason.UNKNOWN_TYPE, "weather"),
        (orjson.dumps(good(0, deployment="other")), Reason.UNKNOWN_DEPLOYMENT, "no monitor"),
        (orjson.dumps(good(0, deployment=None)), Reason.MISSING_FIELD, "deployment"),
        (orjson.dumps(good(0, event_id="")), Reason.MISSING_FIELD, "event_id"),
        (orjson.dumps(good(0, ts="yesterday")), Reason.BAD_TIMESTAMP, "ts"),
        (orjson.dumps(good(0, ts=None)), Reason.BAD_TIMESTAMP, "ts"),
        (orjson.dumps(good(0, ts=NOW + 3_600_000)), Reason.FUTURE_TIMESTAMP, "future"),
        (orjson.dumps(good(0, features={"x": "12"})), Reason.WRONG_TYPE, "features.x"),
        (orjson.dumps(good(0, features={"x": True})), Reason.WRONG_TYPE, "features.x"),
        (orjson.dumps(good(0, features={"c": [1]})), Reason.WRONG_TYPE, "features.c"),
        (orjson.dumps(good(0, latency_ms=-1)), Reason.WRONG_TYPE, "latency_ms"),
        (orjson.dumps(good(0, prediction=[0.1])), Reason.WRONG_TYPE, "prediction"),
        (orjson.dumps(good(0, error="no")), Reason.WRONG_TYPE, "error"),
        (orjson.dumps(good(0, metrics={"tokens": "many"})), Reason.WRONG_TYPE, "metrics.tokens"),
    ],
)
def test_a_bad_event_is_refused_with_its_reason_and_its_neighbours_are_kept(
    payload, reason, detail
):
    decoded = decode([orjson.dumps(good(1)), payload, orjson.dumps(good(2))], context())
    assert [r for r, _ in reasons(decoded)] == [str(reason)]
    assert detail in decoded.dead[0].detail
    assert decoded.dead[0].payload == payload or reason is Reason.SCHEMA_VERSION
    assert decoded.predictions[0].event_id.tolist() == ["e1", "e2"]


def test_a_bad_event_inside_an_envelope_is_refused_alone_with_its_own_payload():
    events = [good(0), good(1, features={"x": "oops"}), good(2)]
    decoded = decode([orjson.dumps({"events": events})], context())
    assert [r for r, _ in reasons(decoded)] == ["wrong_type"]
    assert orjson.loads(decoded.dead[0].payload)["event_id"] == "e1"
    assert decoded.dead[0].deployment == "d"
    assert decoded.predictions[0].event_id.tolist() == ["e0", "e2"]


def test_oversized_events_and_envelopes_are_refused():
    big = orjson.dumps(good(0, padding="x" * 200))
    decoded = decode([big], context(max_event_bytes=100))
    assert [r for r, _ in reasons(decoded)] == ["oversized"]
    envelope = orjson.dumps({"events": [good(0, padding="x" * 500)]})
    assert [r for r, _ in reasons(decode([envelope], context(max_event_bytes=100)))] == [
        "oversized"
    ]


def test_malformed_envelopes():
    cases = [
        orjson.dumps({"events": 3}),
        orjson.dumps({"columns": []}),
        orjson.dumps({"columns": {"event_id": ["a"], "ts": [1, 2]}}),
        orjson.dumps({"columns": {"event_id": ["a"]}, "type": "weather"}),
        b"ARROW1 not really",
    ]
    decoded = decode(cases, context())
    assert [r for r, _ in reasons(decoded)] == [
        "malformed",
        "malformed",
        "malformed",
        "unknown_type",
        "malformed",
    ]


def test_labels_and_resources():
    decoded = decode(
        [
            orjson.dumps(
                {"type": "label", "deployment": "d", "request_id": "r1", "label": 1, "ts": T0}
            ),
            orjson.dumps({"type": "label", "deployment": "d", "request_id": "r2", "ts": T0}),
            orjson.dumps(
                {"type": "resource", "deployment": "d", "ts": T0, "cpu": 0.5, "memory_mb": 900}
            ),
            orjson.dumps({"type": "resource", "deployment": "d", "ts": T0, "cpu": "high"}),
        ],
        context(),
    )
    assert [r for r, _ in reasons(decoded)] == ["missing_field", "wrong_type"]
    [labels] = decoded.labels
    assert labels.request_id.tolist() == ["r1"]
    assert labels.label.tolist() == [1]
    [resources] = decoded.resources
    assert resources.values["cpu"].tolist() == [0.5]
    assert np.isnan(resources.values["gpu"]).all()
    assert decoded.accepted == 2


def test_deployments_are_split_into_their_own_columns():
    schemas = SCHEMAS | {"e": FeatureSchema(numeric=("x",), categorical=())}
    decoded = decode(
        [orjson.dumps(good(0)), orjson.dumps(good(1, deployment="e")), orjson.dumps(good(2))],
        DecodeContext(schemas=schemas, source="t", now_ms=NOW),
    )
    by_name = {rows.deployment: rows.event_id.tolist() for rows in decoded.predictions}
    assert by_name == {"d": ["e0", "e2"], "e": ["e1"]}
    assert decoded.predictions[1].take(np.array([0])).event_id.tolist() in (["e0"], ["e1"])
