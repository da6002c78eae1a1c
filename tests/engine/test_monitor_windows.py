import json

import numpy as np
import pytest
from pydantic import ValidationError

from engine.monitor import Monitor, WindowSpec, load_monitors, parse_duration_ms
from engine.windows import Watermarks, window_starts
from tests.engine.helpers import monitor, profile


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250ms", 250),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1.5h", 5_400_000),
        ("1d", 86_400_000),
        (2, 2000),
    ],
)
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


def test_bad_duration_is_refused():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ms("soon")


def test_tumbling_windows_are_aligned_to_the_epoch():
    spec = WindowSpec(kind="tumbling", size="1m")
    starts = window_starts(np.array([0, 59_999, 60_000, 125_000]), spec)
    assert starts[:, 0].tolist() == [0, 0, 60_000, 120_000]


def test_an_event_belongs_to_size_over_step_hopping_windows():
    spec = WindowSpec(kind="hopping", size="1m", step="20s")
    starts = window_starts(np.array([65_000]), spec)
    assert starts[0].tolist() == [20_000, 40_000, 60_000]
    assert all(s <= 65_000 < s + 60_000 for s in starts[0])


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "hopping", "size": "1m"},
        {"kind": "hopping", "size": "1m", "step": "25s"},
        {"kind": "tumbling", "size": "1m", "step": "10s"},
        {"kind": "count", "size": 0},
        {"kind": "count", "size": "1h"},
        {"kind": "count", "size": 10, "step": "1s"},
        {"kind": "tumbling", "size": "0s"},
    ],
)
def test_window_specs_that_make_no_sense_are_refused(spec):
    with pytest.raises(ValidationError):
        WindowSpec.model_validate(spec)


def test_watermarks_only_move_forward_per_partition():
    marks = Watermarks()
    assert marks.advance(0, np.array([5, 9])) == 9
    assert marks.advance(0, np.array([3])) == 9
    assert marks.advance(1, np.empty(0, dtype=np.int64)) is None
    assert marks.get(1) is None


def test_monitor_defaults_watch_every_profile_feature_with_the_default_policy():
    m = monitor()
    assert (m.numeric, m.categorical) == (("x", "y"), ("c",))
    assert m.drift.numeric == ("ks", "wasserstein_normed")
    assert m.drift.threshold("ks") == 0.05
    assert m.drift.threshold("wasserstein_normed") == 0.1
    assert m.drift.effect_floor == {
        "numeric": "wasserstein_normed",
        "categorical": "jensen_shannon",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"drift": {"numeric": ["chi2"]}}, "does not take numeric"),
        ({"drift": {"numeric": ["kl"]}}, "unknown statistic"),
        ({"drift": {"numeric": ["ks"]}}, "effect floor"),
        ({"features": {"numeric": ["nope"]}}, "not in the reference"),
        ({"reference": None}, "reference profile"),
        ({"performance": {"task": "classification"}}, "class labels"),
        ({"allowed_lateness": "later"}, "not a duration"),
        ({"window": {"kind": "tumbling", "size": "1m"}, "surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_monitors_are_refused_with_a_reason(overrides, message):
    with pytest.raises(ValidationError, match=message):
        monitor(**overrides)


def test_monitors_load_from_yaml_with_a_relative_profile_path(tmp_path):
    (tmp_path / "ref.json").write_text(json.dumps(profile().to_dict()))
    (tmp_path / "monitors.yaml").write_text(
        "- deployment: a\n  reference: ref.json\n  window: {kind: count, size: 500}\n"
        "- deployment: b\n  reference: ref.json\n  features: {numeric: [x], categorical: []}\n"
        "  performance: {task: regression, label_horizon: 1h}\n"
    )
    a, b = load_monitors(tmp_path / "monitors.yaml")
    assert isinstance(a, Monitor)
    assert a.window.kind == "count"
    assert (b.numeric, b.categorical) == (("x",), ())
    assert b.performance is not None
    assert b.performance.label_horizon_ms == 3_600_000
