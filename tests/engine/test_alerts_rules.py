"""Conditions and the lifecycle, pure."""

import math
from dataclasses import replace

import pytest
from pydantic import TypeAdapter, ValidationError

from engine.alerts.fingerprint import fingerprint
from engine.alerts.lifecycle import Series, Timing, step
from engine.alerts.rules import Condition, evaluate
from engine.alerts.templates import render
from tests.engine.alerts_support import MINUTE, T0, window

COND = TypeAdapter(Condition)


def _eval(spec, result):
    return evaluate(COND.validate_python(spec), result)


def test_drift_statistic_uses_the_rows_threshold_unless_given():
    samples = _eval({"kind": "drift_statistic", "statistic": "psi"}, window(0, psi=0.25))
    assert [(s.labels["feature"], s.value, s.threshold, s.active) for s in samples] == [
        ("x", 0.25, 0.2, True),
        ("y", 0.01, 0.2, False),
    ]
    only_x = _eval(
        {"kind": "drift_statistic", "statistic": "psi", "features": ["x"], "threshold": 0.3},
        window(0, psi=0.25),
    )
    assert [(s.value, s.threshold, s.active) for s in only_x] == [(0.25, 0.3, False)]


def test_p_value_share_latency_error_rate_throughput_no_data():
    (x, y) = _eval({"kind": "p_value", "statistic": "ks", "alpha": 0.01}, window(0, p=0.001))
    assert (x.value, x.threshold, x.active, y.active) == (0.001, 0.01, True, False)
    (share,) = _eval({"kind": "drifted_share", "threshold": 0.5}, window(0, psi=0.3))
    assert (share.value, share.active) == (0.5, True)
    (lat,) = _eval(
        {"kind": "latency", "quantile": "p99", "slo_ms": 100}, window(0, latency_p99=120)
    )
    assert (lat.value, lat.threshold, lat.active) == (120, 100, True)
    assert _eval({"kind": "latency", "slo_ms": 100}, window(0, latency_p99=math.nan)) is None
    (err,) = _eval({"kind": "error_rate", "threshold": 0.01}, window(0, events=200, errors=4))
    assert (err.value, err.active) == (0.02, True)
    (tp,) = _eval(
        {"kind": "throughput_drop", "baseline_events": 1000, "max_drop": 0.4}, window(0, events=500)
    )
    assert (tp.value, tp.active) == (500, True)
    (nd,) = _eval({"kind": "no_data", "min_events": 10}, window(0, events=3))
    assert (nd.value, nd.active) == (3, True)


def test_performance_absolute_relative_and_error_metrics():
    labelled = window(0, phase="labels", performance=(("accuracy", 0.8, 100), ("mae", 2.5, 100)))
    (acc,) = _eval(
        {"kind": "performance", "metric": "accuracy", "baseline": 0.9, "max_drop": 0.05}, labelled
    )
    assert (acc.value, acc.active) == (0.8, True)  # 0.9 - 0.8 = 0.1 > 0.05
    (rel,) = _eval(
        {
            "kind": "performance",
            "metric": "accuracy",
            "baseline": 0.9,
            "max_drop": 0.2,
            "relative": True,
        },
        labelled,
    )
    assert rel.active is False  # 0.1 / 0.9 = 0.11 <= 0.2
    (mae,) = _eval(
        {
            "kind": "performance",
            "metric": "mae",
            "baseline": 2.0,
            "max_drop": 0.2,
            "relative": True,
        },
        labelled,
    )
    assert mae.active is True  # errors grow: (2.5 - 2.0) / 2.0 = 0.25 > 0.2
    # a drift rule ignores the label phase; a performance rule ignores windows without labels
    assert _eval({"kind": "drift_statistic", "statistic": "psi"}, labelled) is None
    assert (
        _eval(
            {"kind": "performance", "metric": "accuracy", "baseline": 0.9, "max_drop": 0.1},
            window(0),
        )
        is None
    )


def test_condition_validation():
    with pytest.raises(ValidationError):
        COND.validate_python({"kind": "error_rate", "threshold": 2})
    with pytest.raises(ValidationError):
        COND.validate_python({"kind": "nope"})


def _run(timing, actives):
    series, moves = None, []
    for i, active in enumerate(actives):
        series, moved = step(
            series,
            active=active,
            value=float(active),
            start_ms=i * MINUTE,
            end_ms=(i + 1) * MINUTE,
            timing=timing,
        )
        moves.append(moved)
    return series, moves


def test_for_windows_pending_then_firing_then_resolved():
    series, moves = _run(Timing(for_windows=3), [True, True, True, True, False])
    assert moves == ["pending", None, "firing", None, "resolved"]
    assert series.fired_at_ms == 3 * MINUTE
    assert series.resolved_at_ms == 5 * MINUTE


def test_pending_falls_back_to_inactive_and_the_streak_restarts():
    _, moves = _run(Timing(for_windows=2), [True, False, True, True])
    assert moves == ["pending", "inactive", "pending", "firing"]


def test_for_as_a_duration_in_event_time():
    _, moves = _run(Timing(for_ms=3 * MINUTE), [True, True, True, True])
    assert moves == ["pending", None, "firing", None]  # 3 minutes after the first start


def test_keep_firing_for_is_hysteresis():
    _, moves = _run(Timing(keep_firing_for_ms=2 * MINUTE), [True, False, True, False, False, False])
    assert moves == ["firing", None, None, None, "resolved", None]


def test_a_replayed_window_changes_nothing():
    series, _ = _run(Timing(), [True])
    again, moved = step(series, active=False, value=0.0, start_ms=0, end_ms=MINUTE, timing=Timing())
    assert again is series
    assert moved is None
    fresh = replace(Series(), evaluated_at_ms=-1)
    assert step(fresh, active=True, value=1, start_ms=0, end_ms=1, timing=Timing())[1] == "firing"


def test_fingerprint_and_templates():
    assert fingerprint("r", {"a": "1"}) != fingerprint("r", {"a": "2"})
    assert len(fingerprint("r", {})) == 16
    assert (
        render("{{ value | round(2) }} at {{ deployment }}", {"value": 0.1234, "deployment": "d"})
        == "0.12 at d"
    )
    assert "template error" in render("{{ value | nosuchfilter }}", {"value": 1})
    assert T0 > 0
