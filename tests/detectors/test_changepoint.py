import numpy as np
import pytest
from river.drift import PageHinkley

from detectors.changepoint import cusum, page_hinkley
from detectors.errors import DetectorInputError


def river_page_hinkley(series, **params):
    """Indices (into ``series``) where River flags a change; NaN values are not fed."""
    detector = PageHinkley(**params)
    hits = []
    for i, value in enumerate(series):
        if np.isnan(value):
            continue
        detector.update(float(value))
        if detector.drift_detected:
            hits.append(i)
    return hits


def reference_cusum(series, target, sigma, k, h):
    """Per-element tabular CUSUM written from the documented formula."""
    upper = lower = 0.0
    hits = []
    for i, value in enumerate(series):
        if np.isnan(value):
            continue
        z = (value - target) / sigma
        upper = max(0.0, upper + z - k)
        lower = max(0.0, lower - z - k)
        if upper > h or lower > h:
            hits.append(i)
            upper = lower = 0.0
    return hits


def _stream(seed, *segments):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(mean, 1.0, size) for mean, size in segments])


UP = _stream(42, (0, 500), (3, 500))
DOWN = _stream(43, (5, 500), (1, 500))
SEVERAL = _stream(44, (0, 300), (4, 300), (-2, 300), (5, 300))


@pytest.mark.parametrize(
    ("series", "mode", "expected"),
    [
        (UP, "up", [513]),
        (UP, "down", []),
        (UP, "both", [513]),
        (DOWN, "up", []),
        (DOWN, "down", [511]),
        (DOWN, "both", [511]),
        (SEVERAL, "up", [312, 913]),
        (SEVERAL, "down", [611]),
        (SEVERAL, "both", [312, 607, 907]),
    ],
)
def test_page_hinkley_pinned_indices_agree_with_river(series, mode, expected):
    result = page_hinkley(series, mode=mode)
    assert result.detections[0].tolist() == expected
    assert river_page_hinkley(series, mode=mode) == expected


@pytest.mark.parametrize("seed", [45, 46, 47])
def test_page_hinkley_no_shift_no_detection(seed):
    series = np.random.default_rng(seed).normal(0.0, 1.0, 1000)
    assert page_hinkley(series).detections[0].size == 0
    assert river_page_hinkley(series) == []


def test_page_hinkley_constant_series():
    assert page_hinkley(np.full(500, 7.0)).detections[0].size == 0
    assert river_page_hinkley(np.full(500, 7.0)) == []


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": 20.0, "alpha": 0.99, "delta": 0.1, "min_instances": 5},
        {"threshold": 5.0, "alpha": 1.0, "delta": 0.0, "min_instances": 1, "mode": "up"},
        {"threshold": 10.0, "min_instances": 100, "mode": "down"},
        {"threshold": 3.0, "alpha": 0.9, "delta": 0.5},
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_page_hinkley_agrees_with_river_on_all_columns_at_once(params, seed):
    rng = np.random.default_rng(seed)
    columns = [
        rng.normal(0, 1, 800),
        np.r_[rng.normal(0, 1, 400), rng.normal(2, 1, 400)],
        np.r_[rng.normal(3, 2, 200), rng.normal(-1, 2, 300), rng.normal(4, 2, 300)],
        rng.integers(0, 5, 800).astype(float),
    ]
    X = np.column_stack(columns)
    result = page_hinkley(X, **params)
    assert len(result.detections) == 4
    for j, column in enumerate(columns):
        assert result.detections[j].tolist() == river_page_hinkley(column, **params)
    assert any(d.size for d in result.detections)


def test_page_hinkley_final_state_matches_river():
    params = {"threshold": 20.0, "alpha": 0.99, "delta": 0.1, "min_instances": 5}
    detector = PageHinkley(**params)
    for value in UP:
        detector.update(float(value))
    result = page_hinkley(UP, **params)
    assert result.n[0] == detector._x_mean.n
    assert result.mean[0] == detector._x_mean.get()
    assert result.sum_increase[0] == detector._sum_increase
    assert result.sum_decrease[0] == detector._sum_decrease


def test_page_hinkley_skips_missing_values():
    rng = np.random.default_rng(9)
    series = np.r_[rng.normal(0, 1, 300), rng.normal(3, 1, 300)]
    series[rng.choice(600, 60, replace=False)] = np.nan
    params = {"threshold": 10.0}
    result = page_hinkley(np.column_stack([series, np.nan_to_num(series)]), **params)
    assert result.detections[0].tolist() == river_page_hinkley(series, **params)
    assert result.detections[0].size
    assert not np.isnan(series[result.detections[0]]).any()
    assert result.n_missing.tolist() == [60, 0]


def test_page_hinkley_detection_at_the_last_value_is_reported_in_the_state():
    series = np.r_[np.zeros(50), 100.0]
    result = page_hinkley(series, min_instances=1, threshold=10.0)
    assert result.detections[0].tolist() == [50]
    assert result.test_increase[0] > 10.0


@pytest.mark.parametrize(
    "params",
    [
        {"mode": "sideways"},
        {"min_instances": 0},
        {"delta": -1.0},
        {"threshold": -1.0},
        {"alpha": 0.0},
        {"alpha": 1.5},
    ],
)
def test_page_hinkley_refuses_bad_parameters(params):
    with pytest.raises(ValueError, match=r"mode|need"):
        page_hinkley(UP, **params)


def test_cusum_pinned_indices():
    series = _stream(46, (0, 400), (1.5, 200))
    result = cusum(series, warmup=100)
    assert result.detections[0][:8].tolist() == [298, 403, 408, 412, 421, 425, 432, 438]
    assert result.detections[0].size == 37
    assert result.target[0] == pytest.approx(np.mean(series[:100]))
    assert result.sigma[0] == pytest.approx(np.std(series[:100], ddof=1))
    known = cusum(series, target=0.0, sigma=1.0)
    assert known.detections[0][:8].tolist() == [298, 403, 408, 412, 422, 426, 434, 439]


@pytest.mark.parametrize(("k", "h"), [(0.5, 5.0), (0.25, 8.0), (1.0, 2.0), (0.0, 10.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_cusum_agrees_with_reference(k, h, seed):
    rng = np.random.default_rng(seed)
    columns = [
        rng.normal(0, 1, 600),
        np.r_[rng.normal(10, 2, 300), rng.normal(13, 2, 300)],
        np.r_[rng.normal(0, 1, 200), rng.normal(-1, 1, 400)],
    ]
    columns[2][rng.choice(600, 50, replace=False)] = np.nan
    X = np.column_stack(columns)
    result = cusum(X, k=k, h=h, warmup=40)
    for j, column in enumerate(columns):
        head = column[~np.isnan(column)][:40]
        target, sigma = np.mean(head), np.std(head, ddof=1)
        assert result.target[j] == pytest.approx(target)
        assert result.sigma[j] == pytest.approx(sigma)
        assert result.detections[j].tolist() == reference_cusum(column, target, sigma, k, h)
    assert result.n_missing.tolist() == [0, 0, 50]


def test_cusum_per_series_target_and_sigma():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(0, 1, 300), rng.normal(50, 5, 300)])
    result = cusum(X, target=[0.0, 52.0], sigma=[1.0, 5.0])
    assert result.detections[0].tolist() == reference_cusum(X[:, 0], 0.0, 1.0, 0.5, 5.0)
    assert result.detections[1].tolist() == reference_cusum(X[:, 1], 52.0, 5.0, 0.5, 5.0)
    assert result.detections[1].size
    mixed = cusum(X, target=[0.0, 50.0])
    assert mixed.target.tolist() == [0.0, 50.0]
    assert mixed.sigma[1] == pytest.approx(np.std(X[:30, 1], ddof=1))


def test_cusum_constant_or_short_series_is_insufficient():
    X = np.column_stack([np.full(100, 3.0), np.r_[1.0, np.full(99, np.nan)], np.arange(100.0)])
    result = cusum(X)
    assert result.insufficient.tolist() == [True, True, False]
    assert result.detections[0].size == 0
    assert result.detections[1].size == 0
    assert np.isnan(result.upper[:2]).all()
    assert not np.isnan(result.upper[2])
    constant_known = cusum(np.full(100, 3.0), target=3.0, sigma=1.0)
    assert constant_known.detections[0].size == 0
    assert constant_known.upper[0] == 0.0


@pytest.mark.parametrize(
    ("params", "column"),
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": [1.0, 1.0, 1.0]}, "sigma"),
        ({"target": np.inf}, "target"),
        ({"target": "x"}, "target"),
    ],
)
def test_cusum_refuses_bad_target_or_sigma(params, column):
    with pytest.raises(DetectorInputError) as info:
        cusum(np.column_stack([UP, DOWN]), **params)
    assert info.value.column == column


@pytest.mark.parametrize("params", [{"k": -1.0}, {"h": 0.0}, {"warmup": 1}])
def test_cusum_refuses_bad_parameters(params):
    with pytest.raises(ValueError, match="need"):
        cusum(UP, **params)


@pytest.mark.parametrize("detector", [page_hinkley, cusum])
@pytest.mark.parametrize(
    ("series", "column"),
    [
        ([], None),
        (np.zeros((3, 2, 2)), None),
        ([1.0, np.inf, 2.0], "column 0"),
        (np.array([["1.0", "a"]] * 5, dtype=object), "column 0"),
    ],
)
def test_bad_series_are_refused(detector, series, column):
    with pytest.raises(DetectorInputError) as info:
        detector(series)
    assert info.value.column == column


def test_names_and_read_only_results_and_input_not_mutated():
    X = np.column_stack([UP, DOWN])
    X.setflags(write=False)
    before = X.copy()
    ph = page_hinkley(X, names=["a", "b"])
    cs = cusum(X, names=["a", "b"])
    np.testing.assert_array_equal(X, before)
    assert ph.names == cs.names == ("a", "b")
    for array in (*ph.detections, ph.n, ph.mean, ph.test_increase, *cs.detections, cs.upper):
        assert not array.flags.writeable
    for array in (cs.lower, cs.target, cs.sigma, cs.insufficient, ph.n_missing):
        assert not array.flags.writeable


def test_deterministic():
    first, second = page_hinkley(SEVERAL), page_hinkley(SEVERAL)
    assert [d.tolist() for d in first.detections] == [d.tolist() for d in second.detections]
    np.testing.assert_array_equal(first.sum_increase, second.sum_increase)
