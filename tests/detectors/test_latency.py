import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from detectors.errors import DetectorInputError
from detectors.latency import ErrorRate, LatencyHistogram, error_rate

# The guarantee holds up to floating-point rounding of the bucket index and of gamma**i.
ROUNDING = 1e-9

positive_latencies = arrays(
    np.float64,
    st.integers(1, 300),
    elements=st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=200, deadline=None)
@given(
    values=positive_latencies,
    qs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10),
    accuracy=st.sampled_from([0.01, 0.02, 0.05]),
)
def test_quantile_within_relative_accuracy_of_numpy_lower(values, qs, accuracy):
    histogram = LatencyHistogram.empty(accuracy).update(values)
    exact = np.quantile(values, qs, method="lower")
    estimate = histogram.quantile(np.array(qs))
    assert estimate.shape == exact.shape
    assert (np.abs(estimate - exact) <= (accuracy + ROUNDING) * exact).all()
    for q, value in zip(qs, exact, strict=True):
        assert abs(histogram.quantile(q) - value) <= (accuracy + ROUNDING) * value


@settings(max_examples=100, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.integers(1, 200),
        elements=st.one_of(st.just(0.0), st.just(-0.0), st.floats(1e-3, 1e3)),
    ),
    q=st.floats(0.0, 1.0),
)
def test_quantile_with_zero_latencies(values, q):
    histogram = LatencyHistogram.empty().update(values)
    exact = float(np.quantile(values, q, method="lower"))
    estimate = histogram.quantile(q)
    if exact == 0.0:
        assert estimate == 0.0
    else:
        assert abs(estimate - exact) <= (0.01 + ROUNDING) * exact


def test_seeded_quantiles_over_six_orders_of_magnitude():
    rng = np.random.default_rng(0)
    values = 10.0 ** rng.uniform(-3, 3, size=20_000)
    histogram = LatencyHistogram.empty().update(values)
    qs = np.linspace(0, 1, 101)
    exact = np.quantile(values, qs, method="lower")
    np.testing.assert_array_less(np.abs(histogram.quantile(qs) - exact), 0.01 * exact * 1.000001)
    assert histogram.count == 20_000
    assert histogram.counts.size < 700


def test_merge_of_two_halves_equals_the_whole():
    rng = np.random.default_rng(1)
    values = np.r_[rng.lognormal(3, 2, size=5000), np.zeros(30)]
    rng.shuffle(values)
    empty = LatencyHistogram.empty()
    merged = empty.update(values[:2500]).merge(empty.update(values[2500:]))
    whole = empty.update(values)
    assert merged.to_dict() == whole.to_dict()
    reversed_merge = empty.update(values[2500:]).merge(empty.update(values[:2500]))
    assert reversed_merge.to_dict() == whole.to_dict()
    stepwise = empty.update(values[:2500]).update(values[2500:])
    assert stepwise.to_dict() == whole.to_dict()


def test_merge_with_empty_and_zero_only_histograms():
    full = LatencyHistogram.empty().update([1.0, 10.0])
    zeros = LatencyHistogram.empty().update([0.0, 0.0])
    assert full.merge(LatencyHistogram.empty()).to_dict() == full.to_dict()
    assert LatencyHistogram.empty().merge(full).to_dict() == full.to_dict()
    both = zeros.merge(full)
    assert (both.count, both.zero_count) == (4, 2)
    assert both.quantile(0.0) == 0.0
    assert zeros.update([0.0]).count == 3


def test_merge_requires_the_same_accuracy():
    with pytest.raises(DetectorInputError, match="merge"):
        LatencyHistogram.empty(0.01).merge(LatencyHistogram.empty(0.02))


def test_empty_histogram_gives_nan():
    histogram = LatencyHistogram.empty()
    assert histogram.count == 0
    assert np.isnan(histogram.quantile(0.5))
    assert np.isnan(histogram.quantile([0.1, 0.9])).all()


def test_array_quantile_keeps_shape_and_is_read_only():
    histogram = LatencyHistogram.empty().update([1.0, 2.0, 3.0, 4.0])
    result = histogram.quantile(np.array([[0.0, 0.5], [0.75, 1.0]]))
    assert result.shape == (2, 2)
    assert not result.flags.writeable


@pytest.mark.parametrize("q", [-0.1, 1.5, np.nan])
def test_quantile_outside_unit_interval_is_refused(q):
    with pytest.raises(DetectorInputError) as info:
        LatencyHistogram.empty().update([1.0]).quantile(q)
    assert info.value.column == "q"


@pytest.mark.parametrize(
    "values",
    [[1.0, -1.0], [1.0, np.nan], [1.0, np.inf], ["a"], [], [[1.0]], np.array([1 + 0j])],
)
def test_bad_latencies_are_refused_naming_the_column(values):
    with pytest.raises(DetectorInputError, match="latency_ms") as info:
        LatencyHistogram.empty().update(values)
    assert info.value.column == "latency_ms"


def test_input_is_not_mutated_and_state_is_read_only():
    values = np.array([5.0, 0.0, -0.0, 120.0])
    values.setflags(write=False)
    histogram = LatencyHistogram.empty().update(values)
    np.testing.assert_array_equal(values, [5.0, 0.0, -0.0, 120.0])
    assert histogram.zero_count == 2
    assert not histogram.counts.flags.writeable


def test_json_round_trip():
    histogram = LatencyHistogram.empty(0.02).update([0.0, 0.5, 3.0, 3000.0])
    restored = LatencyHistogram.from_dict(json.loads(json.dumps(histogram.to_dict())))
    assert restored.to_dict() == histogram.to_dict()
    assert restored.quantile(0.7) == histogram.quantile(0.7)
    empty = LatencyHistogram.from_dict(json.loads(json.dumps(LatencyHistogram.empty().to_dict())))
    assert empty.count == 0


@pytest.mark.parametrize(
    "data",
    [
        {"relative_accuracy": 0.01},
        {"relative_accuracy": 0.01, "offset": 0, "counts": [1.5], "zero_count": 0},
        {"relative_accuracy": 0.01, "offset": 0, "counts": [-1], "zero_count": 0},
        {"relative_accuracy": 0.01, "offset": 0, "counts": [1], "zero_count": -1},
        {"relative_accuracy": 1.5, "offset": 0, "counts": [1], "zero_count": 0},
        {"relative_accuracy": "a", "offset": 0, "counts": [1], "zero_count": 0},
        None,
    ],
)
def test_from_dict_refuses_malformed_data(data):
    with pytest.raises(DetectorInputError):
        LatencyHistogram.from_dict(data)


def test_error_rate():
    assert error_rate(3, 200) == ErrorRate(rate=0.015, errors=3, n=200, insufficient=False)
    assert error_rate(np.int64(0), np.int64(5)).rate == 0.0
    empty = error_rate(0, 0)
    assert empty.insufficient
    assert np.isnan(empty.rate)


@pytest.mark.parametrize(
    ("errors", "total", "column"),
    [
        (-1, 5, "errors"),
        (1, -5, "total"),
        (6, 5, "errors"),
        (1.5, 5, "errors"),
        (True, 5, "errors"),
    ],
)
def test_error_rate_refuses_bad_counts(errors, total, column):
    with pytest.raises(DetectorInputError) as info:
        error_rate(errors, total)
    assert info.value.column == column
