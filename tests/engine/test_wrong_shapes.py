"""A wrong-shaped field costs its own event (or envelope), never the batch.

Every top-level field and every feature gets values of the wrong JSON shape (arrays,
objects, booleans, huge numbers, empty strings) in each wire form: one event per message,
a row envelope, a columnar envelope. The batch must be ingested without raising, the good
event beside the bad one accepted, and every event either accepted or dead-lettered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.deadletter import MemoryDeadLetters
from engine.pipeline import Pipeline
from engine.sinks import MemorySink
from tests.engine.helpers import NOW, T0, monitor

WRONG: list[Any] = [[1], {"a": 1}, [], {}, True, 1e308, -(2**70), "", "x" * 300, None]
FIELDS = (
    "type",
    "event_id",
    "ts",
    "deployment",
    "features",
    "prediction",
    "label",
    "latency_ms",
    "error",
    "request_id",
    "schema_version",
)


def dumps(value: Any) -> bytes:
    """JSON bytes; the standard library writes integers past 64 bits, orjson refuses them."""
    return json.dumps(value).encode()


def good(i: int) -> dict[str, Any]:
    return {
        "event_id": f"g{i}",
        "ts": T0 + i,
        "deployment": "d",
        "features": {"x": 0.5, "y": 1.0, "c": "a"},
        "prediction": 1.0,
        "latency_ms": 3.0,
    }


def ingest(messages: list[bytes]) -> tuple[int, int]:
    """(accepted, accepted + refused) of one batch; refused = dead letters + duplicates."""
    dead = MemoryDeadLetters()
    pipeline = Pipeline(
        organization="o",
        monitors=[monitor(min_samples=1)],
        sink=MemorySink(),
        dead_letters=dead,
        clock=lambda: NOW,
    )
    report = pipeline.ingest(messages)
    return report.accepted, report.accepted + report.rejected + report.duplicates


def wrong_events() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for field in FIELDS:
        for value in WRONG:
            cases.append((f"{field}={value!r:.20}", {**good(1), field: value}))
    for feature in ("x", "c"):
        for value in WRONG:
            bad = good(1)
            bad["features"] = {**bad["features"], feature: value}
            cases.append((f"features.{feature}={value!r:.20}", bad))
    return cases


CASES = wrong_events()


@pytest.mark.parametrize(("name", "bad"), CASES, ids=[name for name, _ in CASES])
def test_one_wrong_field_in_a_single_message_costs_that_event_only(
    name: str, bad: dict[str, Any]
) -> None:
    accepted, seen = ingest([dumps(good(0)), dumps(bad)])
    assert accepted >= 1, name
    assert seen == 2, name


@pytest.mark.parametrize(("name", "bad"), CASES, ids=[name for name, _ in CASES])
def test_one_wrong_field_in_a_row_envelope_costs_that_event_only(
    name: str, bad: dict[str, Any]
) -> None:
    envelope = dumps({"schema_version": 1, "events": [good(0), bad, good(2)]})
    accepted, seen = ingest([envelope])
    assert accepted >= 2, name
    assert seen == 3, name


@pytest.mark.parametrize("value", WRONG, ids=[f"{v!r:.20}" for v in WRONG])
@pytest.mark.parametrize("field", [*FIELDS, "columns", "events"])
def test_a_wrong_shaped_envelope_member_costs_that_envelope_only(field: str, value: Any) -> None:
    events = [good(0), good(1)]
    columns: dict[str, Any] = {
        name: [e[name] for e in events]
        for name in ("event_id", "ts", "deployment", "prediction", "latency_ms")
    }
    columns["features"] = {n: [e["features"][n] for e in events] for n in ("x", "y", "c")}
    columnar: dict[str, Any] = {"schema_version": 1, "columns": columns}
    if field in columns or field == "features":
        columns[field] = value  # a whole column of the wrong shape
    else:
        columnar[field] = value
    accepted, _ = ingest([dumps(good(5)), dumps(columnar)])
    assert accepted >= 1


@pytest.mark.parametrize("value", WRONG, ids=[f"{v!r:.20}" for v in WRONG])
@pytest.mark.parametrize("column", ["event_id", "ts", "deployment", "prediction", "x", "c"])
def test_a_wrong_shaped_value_inside_a_column_is_refused_or_taken_never_raised(
    column: str, value: Any
) -> None:
    events = [good(0), good(1), good(2)]
    columns: dict[str, Any] = {
        name: [e[name] for e in events]
        for name in ("event_id", "ts", "deployment", "prediction", "latency_ms")
    }
    columns["features"] = {n: [e["features"][n] for e in events] for n in ("x", "y", "c")}
    target = columns["features"] if column in ("x", "c") else columns
    target[column][1] = value
    accepted, _ = ingest([dumps({"schema_version": 1, "columns": columns})])
    assert accepted >= 0  # reached: the batch did not raise


@pytest.mark.parametrize("value", [1e308, -(2**70), 2.0**62, [1], {}, True, "", "x" * 300])
def test_a_time_that_is_no_time_is_refused_not_cast(value: Any) -> None:
    accepted, seen = ingest([dumps(good(0)), dumps({**good(1), "ts": value})])
    assert (accepted, seen) == (1, 2)


@pytest.mark.parametrize("value", [[1], {"a": 1}, 7, None])
def test_a_type_that_is_not_text_is_an_unknown_type(value: Any) -> None:
    dead = MemoryDeadLetters()
    pipeline = Pipeline(
        organization="o", monitors=[monitor()], sink=MemorySink(), dead_letters=dead
    )
    pipeline.ingest([dumps({**good(1), "type": value})])
    assert [d.reason for d in dead.letters] == ["unknown_type"]


def test_ids_and_deployments_that_differ_by_a_trailing_nul_stay_apart() -> None:
    """numpy text arrays drop trailing NULs: "e1" and "e1\\0" are two events, "d\\0" is not "d"."""
    batch = [
        {**good(0), "event_id": "e1"},
        {**good(1), "event_id": "e1\0"},
        {**good(2), "event_id": "e1"},  # a true repeat
        {**good(3), "event_id": "e9", "deployment": "d\0"},  # no such deployment
    ]
    for form in (
        [dumps(e) for e in batch],
        [dumps({"schema_version": 1, "events": batch})],
    ):
        dead = MemoryDeadLetters()
        report = Pipeline(
            organization="o", monitors=[monitor()], sink=MemorySink(), dead_letters=dead
        ).ingest(form)
        assert (report.accepted, report.duplicates) == (2, 1)
        assert [d.reason for d in dead.letters] == ["unknown_deployment"]
